"""What every remote source shares: redaction, size checks, sharding and resume."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from workbench.host.sources import (
    MAX_SIZE,
    AbsurdSize,
    BadURL,
    NotFound,
    RemoteError,
    S3Source,
    done_keys,
    is_remote,
    parse_shard,
    redact,
    shard,
    shard_of,
    sharding,
    source_for,
)
from workbench.host.sources.base import checked_size, parse_content_range


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://alice:hunter2@host.example/a.qcow2", "https://host.example/a.qcow2"),
        (
            "https://b.s3.amazonaws.com/k.vmdk?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ff&v=2",
            "https://b.s3.amazonaws.com/k.vmdk?X-Amz-Algorithm=REDACTED&X-Amz-Credential=REDACTED"
            "&X-Amz-Signature=REDACTED&v=2",
        ),
        (
            "https://acct.blob.core.windows.net/c/d.vhd?sv=2022&sig=abc%3D",
            "https://acct.blob.core.windows.net/c/d.vhd?sv=2022&sig=REDACTED",
        ),
        (
            "https://h/x?AWSAccessKeyId=AK&Signature=s&Expires=1",
            "https://h/x?AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=1",
        ),
        ("http://h:8080/x?access_token=t&api_key=k#frag", "http://h:8080/x?access_token=REDACTED&api_key=REDACTED"),
        ("https://[::1]:9000/x", "https://[::1]:9000/x"),
        ("https://h/x?opaque-blob&a=1", "https://h/x?REDACTED&a=1"),
        ("s3://AKIA:secret@bucket/dir/a?b#c.raw", "s3://bucket/dir/a?b#c.raw"),
        ("https://h:99999999/x", "<unparsable URL REDACTED>"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_every_error_message_is_redacted_and_one_line() -> None:
    error = NotFound("https://u:pw@h/x?token=T0K", "server said\nline two\x1b[31m")
    listed = NotFound("s3://bucket/a\nkey\x1b]0;title\x07.raw")
    for text in (str(error), repr(error), str(listed)):
        assert "pw" not in text and "T0K" not in text and "\n" not in text and "\x1b" not in text


@pytest.mark.parametrize("value", [-1, 2**63, 2**64, "1" * 5000, "12abc", "", True, None, "-0x10"])
def test_absurd_sizes(value: object) -> None:
    with pytest.raises(AbsurdSize):
        checked_size("s3://b/k", value)


def test_sane_sizes() -> None:
    assert checked_size("s3://b/k", 0) == 0
    assert checked_size("s3://b/k", str(MAX_SIZE)) == MAX_SIZE


def test_content_range_must_lie_inside_the_object() -> None:
    assert parse_content_range("u", "bytes 0-9/10") == (0, 9, 10)
    for bad in ("bytes 5-4/10", "bytes 0-10/10", "bytes 0-1/*", "items 0-1/2", "bytes -1-2/3"):
        with pytest.raises(RemoteError):
            parse_content_range("u", bad)
    with pytest.raises(AbsurdSize):
        parse_content_range("u", f"bytes 0-1/{2**64}")


def test_shards_partition_any_listing_the_same_way() -> None:
    keys = [f"s3://uploads/customer-{index}/disk.qcow2" for index in range(2000)]
    parts = [set(shard(keys, index, 7)) for index in range(7)]
    assert set().union(*parts) == set(keys)
    assert sum(len(part) for part in parts) == len(keys)
    assert all(200 < len(part) < 380 for part in parts)  # spread evenly
    shuffled = keys[:]
    random.Random(5).shuffle(shuffled)
    assert [set(shard(shuffled, index, 7)) for index in range(7)] == parts
    # The hash is fixed (SHA-256), so machines and releases agree on every key's shard.
    assert [shard_of("s3://uploads/a.raw", 16), shard_of("s3://uploads/b.raw", 16)] == [2, 8]


@pytest.mark.parametrize("text", ["4/4", "-1/3", "a/3", "3", "1/0", ""])
def test_bad_shard_specs(text: str) -> None:
    with pytest.raises(ValueError):
        parse_shard(text)


def test_shard_spec() -> None:
    assert parse_shard("2/8") == (2, 8)
    with pytest.raises(ValueError):
        list(shard(["k"], 3, 3))


def test_done_keys_stream_a_jsonl_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharding, "MAX_LINE", 4096)
    path = tmp_path / "out.jsonl"
    lines = [json.dumps({"path": f"s3://b/{index}.raw", "verdict": "accept"}) for index in range(100)]
    lines.insert(10, json.dumps({"path": "s3://b/huge.raw", "fields": "x" * 10_000}))  # overlong: done again
    lines.insert(20, "[1, 2]")
    lines.append('{"path": "s3://b/torn.raw", "verd')  # a run killed mid-write
    path.write_text("\n".join(lines))
    done = done_keys(path)
    assert len(done) == 100
    assert "s3://b/0.raw" in done and "s3://b/99.raw" in done
    assert "s3://b/huge.raw" not in done and "s3://b/torn.raw" not in done and 5 not in done
    mine = done_keys(path, only_shard=(1, 4))
    assert {f"s3://b/{index}.raw" for index in range(100) if f"s3://b/{index}.raw" in mine} == set(
        shard((f"s3://b/{index}.raw" for index in range(100)), 1, 4)
    )
    assert len(done_keys(tmp_path / "not-yet.jsonl")) == 0


def test_source_for_each_scheme() -> None:
    assert isinstance(source_for("s3://b/k"), S3Source)
    assert is_remote("HTTPS://h/x") and is_remote("s3://b/k") and not is_remote("/srv/s3://x")
    with pytest.raises(BadURL):
        source_for("ftp://h/x")


def test_s3_without_boto3_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(RemoteError, match=r"disk-image-workbench\[remote\]"):
        S3Source().open("s3://bucket/key")
