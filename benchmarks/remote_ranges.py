"""Cost of one ranged read per S3 client, against moto's S3 server started on 127.0.0.1 (a subprocess).

Run: python benchmarks/remote_ranges.py [--reads N]   (needs the test extra; obstore is measured if installed)
Prints, per client, the wall time and this process's CPU time per conditional 4 KiB range of an 8 MiB
object: boto3 as S3Source uses it, obstore (the alternative considered), and HTTPSource on a presigned URL.
The server is in its own process, so the CPU column is the client's alone. Figures: docs/remote.md.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402

from workbench.host.sources import HTTPSource, S3Source  # noqa: E402

SIZE = 8 << 20
RANGE = 4096
BUCKET = "bench"


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}"


def measure(name: str, read: Callable[[int], bytes], data: bytes, offsets: list[int]) -> None:
    read(0)  # connection and client set up outside the figures
    wall, cpu = time.perf_counter(), time.process_time()
    for offset in offsets:
        assert read(offset) == data[offset : offset + RANGE]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:44s} {wall / len(offsets) * 1000:6.2f} ms wall {cpu / len(offsets) * 1000:6.2f} ms client CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    server, endpoint = start_moto()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        data = os.urandom(SIZE)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="disk.raw", Body=data)
        rng = random.Random(1)
        offsets = [rng.randrange(0, SIZE - RANGE) for _ in range(args.reads)]
        print(f"{args.reads} conditional {RANGE}-byte ranges of an {SIZE >> 20} MiB object, per range:")
        obj = S3Source(endpoint_url=endpoint).open(f"s3://{BUCKET}/disk.raw")
        measure("boto3 (S3Source: Range, If-Match)", lambda offset: obj.read(offset, RANGE), data, offsets)
        measure_obstore(endpoint, str(obj.identity.etag), data, offsets)
        presigned = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "disk.raw"})
        web = HTTPSource().open(presigned)
        measure("http.client (HTTPSource, presigned URL)", lambda offset: web.read(offset, RANGE), data, offsets)
    finally:
        server.terminate()
        server.wait()


def measure_obstore(endpoint: str, etag: str, data: bytes, offsets: list[int]) -> None:
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        print("obstore: not installed (pip install obstore to compare)")
        return
    store = S3Store(
        BUCKET,
        endpoint=endpoint,
        region="us-east-1",
        access_key_id="bench",
        secret_access_key="bench",
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )

    def read(offset: int) -> bytes:
        options = {"range": (offset, offset + RANGE), "if_match": etag}
        return bytes(obstore.get(store, "disk.raw", options=options).bytes())  # type: ignore[arg-type]

    measure(f"obstore {obstore.__version__} (get: range, if_match)", read, data, offsets)


if __name__ == "__main__":
    main()
