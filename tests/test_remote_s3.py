"""s3:// sources against moto's S3 server on 127.0.0.1: exact ranges, pinning, listing, and every fault."""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.remote_servers import S3Server
from workbench.host.sources import (
    AccessDenied,
    BadURL,
    ImageChanged,
    Limits,
    NotFound,
    RangeIgnored,
    S3Source,
    TimedOut,
    Unreachable,
    open_url,
    shard,
)

FAST = Limits(connect_timeout=2.0, read_timeout=2.0, deadline=10.0, attempts=1)
DATA = os.urandom(300_000)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> S3Server:
    """The server, named by AWS_ENDPOINT_URL_S3, with test credentials and no host configuration."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3_server.log.clear()
    return s3_server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"uploads-{uuid.uuid4().hex[:12]}"
    client().create_bucket(Bucket=name)
    client().put_object(Bucket=name, Key="images/disk.qcow2", Body=DATA)
    s3.log.clear()
    return name


def client() -> Any:
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])


def test_reads_exactly_the_ranges_asked(s3: S3Server, bucket: str) -> None:
    with open_url(f"s3://{bucket}/images/disk.qcow2", FAST) as obj:
        assert obj.size == len(DATA)
        assert obj.identity.etag and obj.identity.version is None
        assert obj.read(0, 512) == DATA[:512]
        assert obj.read(65_536, 1000) == DATA[65_536:66_536]
        assert obj.read(len(DATA) - 7, 4096) == DATA[-7:]
        assert obj.bytes_read == 512 + 1000 + 7
    gets = [(entry.range, entry.status, entry.body_bytes) for entry in s3.settled() if entry.method == "GET"]
    assert gets == [
        ("bytes=0-511", 206, 512),
        ("bytes=65536-66535", 206, 1000),
        (f"bytes={len(DATA) - 7}-{len(DATA) - 1}", 206, 7),
    ]
    assert [entry.method for entry in s3.log] == ["HEAD", "GET", "GET", "GET"]
    assert s3.body_bytes("HEAD") == 0


def test_endpoint_from_the_generic_variable_and_explicit_endpoint_first(
    s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    assert open_url(f"s3://{bucket}/images/disk.qcow2", FAST).size == len(DATA)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    assert S3Source(FAST, endpoint_url=s3.endpoint).open(f"s3://{bucket}/images/disk.qcow2").size == len(DATA)


def test_object_replaced_between_ranges(s3: S3Server, bucket: str) -> None:
    obj = open_url(f"s3://{bucket}/images/disk.qcow2", FAST)
    assert obj.read(0, 100) == DATA[:100]
    client().put_object(Bucket=bucket, Key="images/disk.qcow2", Body=b"a different image")
    with pytest.raises(ImageChanged):
        obj.read(100, 100)
    assert s3.settled()[-1].status == 412 and s3.log[-1].body_bytes < 1000  # an error document, no object bytes


def test_object_deleted_between_ranges(bucket: str) -> None:
    obj = open_url(f"s3://{bucket}/images/disk.qcow2", FAST)
    client().delete_object(Bucket=bucket, Key="images/disk.qcow2")
    with pytest.raises(ImageChanged):
        obj.read(0, 100)


def test_a_versioned_object_stays_the_pinned_version(bucket: str) -> None:
    client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client().put_object(Bucket=bucket, Key="v.raw", Body=DATA)
    obj = open_url(f"s3://{bucket}/v.raw", FAST)
    assert obj.identity.version
    client().put_object(Bucket=bucket, Key="v.raw", Body=b"newer upload")
    assert obj.read(1000, 50) == DATA[1000:1050]  # the pinned version, still readable and unchanged
    client().delete_object(Bucket=bucket, Key="v.raw", VersionId=obj.identity.version)
    with pytest.raises(ImageChanged):
        obj.read(0, 10)


def test_listing_streams_page_by_page(s3: S3Server, bucket: str) -> None:
    for index in range(25):
        client().put_object(Bucket=bucket, Key=f"batch/{index:03}.vmdk", Body=b"x" * index)
    client().put_object(Bucket=bucket, Key="batch/folder/", Body=b"")
    client().put_object(Bucket=bucket, Key="elsewhere.raw", Body=b"y")
    source = S3Source(FAST)
    source.page_size = 10
    s3.log.clear()
    listing = source.list(f"s3://{bucket}/batch/")
    first = next(listing)
    assert (first.url, first.key, first.size) == (f"s3://{bucket}/batch/000.vmdk", "batch/000.vmdk", 0)
    assert len(s3.log) == 1  # one page fetched so far: the listing is lazy
    rest = list(listing)
    assert [entry.key for entry in rest] == [f"batch/{index:03}.vmdk" for index in range(1, 25)]
    assert len(s3.log) == 3  # 25 keys and a folder marker in pages of 10


def test_shards_of_a_listing_cover_it_once(bucket: str) -> None:
    for index in range(30):
        client().put_object(Bucket=bucket, Key=f"shard/{index}.qcow2", Body=b"q")
    source = S3Source(FAST)
    parts = [[e.key for e in shard(source.list(f"s3://{bucket}/shard/"), i, 3, key=lambda e: e.url)] for i in range(3)]
    keys = list(itertools.chain.from_iterable(parts))
    assert sorted(keys) == sorted(f"shard/{index}.qcow2" for index in range(30))
    assert all(parts)


def test_range_ignored_is_refused_without_downloading(s3: S3Server, bucket: str) -> None:
    big = os.urandom(1 << 20) * 48  # 48 MiB
    client().put_object(Bucket=bucket, Key="big.raw", Body=big)
    obj = open_url(f"s3://{bucket}/big.raw", FAST)
    s3.faults.ignore_range.add("big.raw")
    try:
        with pytest.raises(RangeIgnored):
            obj.read(0, 512)
    finally:
        s3.faults.ignore_range.clear()
    answer = s3.settled()[-1]
    assert (answer.method, answer.status) == ("GET", 200)
    assert answer.body_bytes < len(big) // 2  # what socket buffers took (about 4 MiB here), never the object


def test_missing_object_and_bucket(bucket: str) -> None:
    with pytest.raises(NotFound):
        open_url(f"s3://{bucket}/images/none.qcow2", FAST)
    with pytest.raises(NotFound):
        open_url("s3://no-such-bucket-here/disk.qcow2", FAST)
    with pytest.raises(NotFound):
        list(S3Source(FAST).list("s3://no-such-bucket-here/"))


def test_access_denied(s3: S3Server, bucket: str) -> None:
    s3.faults.deny.add("secret.vhd")
    try:
        with pytest.raises(AccessDenied):
            open_url(f"s3://{bucket}/secret.vhd", FAST)
    finally:
        s3.faults.deny.clear()


def test_no_credentials_is_one_line(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AccessDenied, match="no credentials"):
        open_url(f"s3://{bucket}/images/disk.qcow2", FAST)


def test_a_stalled_server_hits_the_timeout(s3: S3Server, bucket: str) -> None:
    impatient = S3Source(Limits(connect_timeout=1.0, read_timeout=0.3, attempts=1))
    obj = impatient.open(f"s3://{bucket}/images/disk.qcow2")
    s3.faults.stall.add("disk.qcow2")  # held 5 s
    try:
        with pytest.raises(TimedOut):
            obj.read(0, 100)
        with pytest.raises(TimedOut):
            impatient.open(f"s3://{bucket}/images/disk.qcow2")
    finally:
        s3.faults.stall.clear()


def test_server_dying_mid_read(s3: S3Server, bucket: str) -> None:
    obj = open_url(f"s3://{bucket}/images/disk.qcow2", FAST)
    s3.faults.cut.add("disk.qcow2")
    try:
        with pytest.raises(Unreachable):
            obj.read(0, 100_000)
    finally:
        s3.faults.cut.clear()
    assert s3.settled()[-1].body_bytes == 50_000


def test_unreachable_endpoint(s3: S3Server) -> None:
    source = S3Source(FAST, endpoint_url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(Unreachable):
        source.open("s3://bucket/disk.qcow2")


def test_a_malformed_endpoint_is_one_line(s3: S3Server) -> None:
    with pytest.raises(BadURL, match="endpoint"):
        S3Source(FAST, endpoint_url="not a url").open("s3://bucket/disk.qcow2")


def test_a_prefix_is_not_an_object() -> None:
    with pytest.raises(BadURL):
        S3Source(FAST).open("s3://bucket/images/")
    with pytest.raises(BadURL):
        S3Source(FAST).open("https://bucket/images/x")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
