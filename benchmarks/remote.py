"""Remote triage by byte ranges against downloading every object in full, side by side in one run.

Run: python benchmarks/remote.py [--images 200] [--latency-ms 20] [--raw-mib 16]

The objects live on the HTTP server of tests/remote_servers.py (127.0.0.1, a thread of this process) with
--latency-ms added to every request. Half are small qcow2 images made by qemu-img, half raw images of
--raw-mib MiB (their bytes matter only to the download). Two ways to triage them all:

1. ranged: ``workbench triage URL...`` (the parent reads ranges and serves them to sandboxed children);
2. download: fetch each object in full (as many downloads at once as triage keeps inspections in flight),
   then ``workbench triage FOLDER`` on the local copies;
3. the same download, then ``qemu-img info --output=json`` on each copy in turn (the unsandboxed habit).

Printed per way: wall seconds, images per second and the bytes the server sent (from its own log).
Figures: docs/remote.md and docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.remote_servers import RangeServer  # noqa: E402
from workbench.host.sources import Limits, open_url  # noqa: E402
from workbench.triage.jobs import remote_jobs  # noqa: E402

MiB = 1 << 20


def make_objects(server: RangeServer, count: int, raw_mib: int, work: Path) -> list[str]:
    qcow2 = work / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "1G"], check=True)
    small = qcow2.read_bytes()
    raw = os.urandom(raw_mib * MiB)
    paths = []
    for index in range(count):
        path = f"/img/{index:05}.qcow2" if index % 2 == 0 else f"/img/{index:05}.raw"
        server.state.objects[path] = small if index % 2 == 0 else raw
        paths.append(path)
    return [server.url(path) for path in paths]


def triage(*targets: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "triage", "-q", *targets], capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - started
    print(f"  {result.stdout.strip().splitlines()[0] if result.stdout.strip() else result.stderr[-300:]}")
    return wall


def download_all(urls: list[str], folder: Path, jobs: int) -> None:
    def fetch(url: str) -> None:
        with open_url(url, Limits(max_read=1 << 30)) as image:
            (folder / url.rsplit("/", 1)[1]).write_bytes(image.read(0, image.size))

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(fetch, urls))


def qemu_img_info_all(folder: Path) -> float:
    started = time.perf_counter()
    for path in sorted(folder.iterdir()):
        fmt = "qcow2" if path.suffix == ".qcow2" else "raw"
        subprocess.run(["qemu-img", "info", "--output=json", "-f", fmt, str(path)], check=True, capture_output=True)
    return time.perf_counter() - started


def row(name: str, wall: float, count: int, sent: int) -> None:
    print(f"{name:34s} {wall:7.2f} s {count / wall:7.1f} images/s {sent / MiB:9.2f} MiB sent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--raw-mib", type=int, default=16)
    args = parser.parse_args()
    jobs = remote_jobs()
    server = RangeServer()
    server.state.latency = args.latency_ms / 1000
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            urls = make_objects(server, args.images, args.raw_mib, work)
            small = len(server.state.objects["/img/00000.qcow2"])
            print(
                f"{args.images} objects (qcow2 of {small} bytes and raw of {args.raw_mib} MiB, alternating), "
                f"{args.latency_ms:g} ms per request, {os.cpu_count()} cores, {jobs} in flight"
            )
            server.state.log.clear()
            wall = triage(*urls)
            row("ranged (workbench triage URL...)", wall, args.images, server.state.body_bytes())
            server.state.log.clear()
            local = work / "local"
            local.mkdir()
            started = time.perf_counter()
            download_all(urls, local, jobs)
            fetched = time.perf_counter() - started
            wall = triage(str(local))
            row("download in full, then triage", fetched + wall, args.images, server.state.body_bytes())
            print(f"  (of which downloading {fetched:.2f} s, local triage {wall:.2f} s)")
            info = qemu_img_info_all(local)
            row("download in full, then qemu-img info", fetched + info, args.images, server.state.body_bytes())
            print(f"  (of which downloading {fetched:.2f} s, qemu-img info {info:.2f} s)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
