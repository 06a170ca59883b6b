"""Remote images end to end: ``inspect``/``triage`` of s3:// and http:// URLs, the child reading through its pipes.

Against moto's S3 server and the stdlib HTTP server of tests/remote_servers.py, each on 127.0.0.1; the
bytes the servers sent come from their own logs.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.remote_servers import RangeServer, S3Server, ServerState
from tests.test_cli import run_cli
from tests.test_remote_s3 import client, s3, s3_server  # noqa: F401 (fixtures)
from workbench import api
from workbench.demo.images import write_demo
from workbench.engine.child import sandbox
from workbench.engine.child.ranges import PipeImage
from workbench.engine.reader import DEFAULT_BUDGET, SourceFailed
from workbench.host import runner as runner_mod
from workbench.host.ranges import READ_AHEAD
from workbench.host.ranges import RangeServer as PipeRanges
from workbench.host.sources import Limits, open_url, redact, shard_of
from workbench.inspector import Request, inspect

pytestmark = pytest.mark.qemu
SECRET = "s3cr3t-Signature-value"
VOLATILE = {"path", "allocated_size", "elapsed_ms", "sandbox"}  # sandbox: compared layer by layer below


@pytest.fixture
def http() -> Iterator[RangeServer]:
    server = RangeServer()
    yield server
    server.stop()


@pytest.fixture
def qcow2(qemu_create: Callable[..., Path]) -> Path:
    return qemu_create("disk.qcow2", "qcow2", "64M")


@pytest.fixture
def bucket(s3: S3Server) -> str:  # noqa: F811 (the fixture)
    name = f"remote-{os.urandom(6).hex()}"
    client().create_bucket(Bucket=name)
    return name


def inspect_json(*args: str, timeout: float = 60) -> tuple[dict[str, Any], str, int]:
    result = run_cli("inspect", "--json", *args, timeout=timeout)
    return json.loads(result.stdout), result.stdout + result.stderr, result.returncode


def stable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what differs between two runs (timings, the path, the descriptor's layer text)."""
    kept = {k: v for k, v in report.items() if k not in VOLATILE}
    for key in ("guest", "deep"):
        if isinstance(kept.get(key), dict):
            kept[key] = {k: v for k, v in kept[key].items() if k != "elapsed_ms"}
    return kept


def assert_same_report(remote: dict[str, Any], local: dict[str, Any]) -> None:
    assert stable(remote) == stable(local)
    assert remote["allocated_size"] is None
    assert set(remote["sandbox"]) == set(local["sandbox"])
    assert all(sandbox.is_on(status) for status in remote["sandbox"].values()), remote["sandbox"]
    assert remote["sandbox"]["fds"] == "on (only 0, 1, 2)"  # no image descriptor at all


def test_s3_qcow2_report_equals_the_local_one(s3: S3Server, bucket: str, qcow2: Path) -> None:  # noqa: F811
    client().put_object(Bucket=bucket, Key="up/disk.qcow2", Body=qcow2.read_bytes())
    s3.log.clear()
    remote, _, code = inspect_json(f"s3://{bucket}/up/disk.qcow2", "--endpoint-url", s3.endpoint)
    local, _, local_code = inspect_json(str(qcow2))
    assert remote["path"] == f"s3://{bucket}/up/disk.qcow2"
    assert (code, remote["verdict"]) == (local_code, "accept")
    assert_same_report(remote, local)
    # every byte the child read, and the parent's read-ahead windows around them, within the header budget
    gets = [entry for entry in s3.settled() if entry.method == "GET"]
    assert remote["bytes_read"] <= s3.body_bytes() <= DEFAULT_BUDGET
    starts = [int(entry.range.removeprefix("bytes=").split("-")[0]) for entry in gets]
    assert len(starts) <= 3 and all(start % READ_AHEAD == 0 for start in starts)  # aligned windows, few trips


def test_http_report_equals_the_local_one_with_the_guest_view(http: RangeServer, qcow2: Path) -> None:
    http.state.objects["/disk.qcow2"] = qcow2.read_bytes()
    remote, _, _ = inspect_json(http.url("/disk.qcow2"), "--guest")
    local, _, _ = inspect_json(str(qcow2), "--guest")
    assert_same_report(remote, local)
    assert "guest" in remote


def test_several_urls_are_children_of_the_fork_server_with_every_layer(http: RangeServer, qcow2: Path) -> None:
    http.state.objects["/one.qcow2"] = http.state.objects["/two.qcow2"] = qcow2.read_bytes()
    result = run_cli("inspect", "--json", http.url("/one.qcow2"), http.url("/two.qcow2"))
    reports = json.loads(result.stdout)
    local, _, _ = inspect_json(str(qcow2))
    for report in reports:
        assert_same_report(report, local)
        assert "inherited from the zygote" in report["sandbox"]["namespaces"]  # forked, its stdin a pipe


def test_the_in_process_runner_refuses_a_remote_image(http: RangeServer, qcow2: Path) -> None:
    http.state.objects["/here.qcow2"] = qcow2.read_bytes()
    report = asyncio.run(inspect(Request(http.url("/here.qcow2")), runner_mod.InProcessRunner()))
    assert (report["verdict"], report["error"]) == (
        "failed",
        "remote images need a real engine child (the in-process runner has no pipes)",
    )


def test_python_api_inspects_a_url(http: RangeServer, qcow2: Path) -> None:
    http.state.objects["/api.qcow2"] = qcow2.read_bytes()
    result = api.inspect_url(http.url("/api.qcow2"))
    assert (result.ok, result.report["format"], result.report["path"]) == (True, "qcow2", http.url("/api.qcow2"))
    from_async = asyncio.run(api.inspect_url_async(http.url("/api.qcow2"), max_virtual_size="32M"))
    assert from_async.verdict.value == "reject"
    with pytest.raises(ValueError, match="URL"):
        api.inspect_url("/local/disk.qcow2")


def test_object_replaced_mid_inspection_is_image_changed(http: RangeServer, qcow2: Path) -> None:
    http.state.objects["/moving.qcow2"] = qcow2.read_bytes()

    def replace_after_first_range(state: ServerState) -> None:
        if len(state.log) == 2:  # the open, then one range: the next range finds another object
            state.objects["/moving.qcow2"] = b"\0" * len(state.objects["/moving.qcow2"])

    http.state.after_get = replace_after_first_range
    report, output, code = inspect_json(http.url("/moving.qcow2"))
    assert (code, report["verdict"]) == (30, "failed")
    assert "object changed while it was read" in report["error"]
    assert [f["id"] for f in report["findings"]] == ["image-changed"]
    assert "Traceback" not in output


def test_missing_object_is_one_clear_line(s3: S3Server, bucket: str) -> None:  # noqa: F811
    result = run_cli("inspect", f"s3://{bucket}/nope.qcow2", "--endpoint-url", s3.endpoint)
    assert result.returncode == 30
    assert result.stderr.count("\n") == 1 and "no such object (404)" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_stalled_server_times_out_without_hanging(s3: S3Server, bucket: str) -> None:  # noqa: F811
    client().put_object(Bucket=bucket, Key="slow.qcow2", Body=b"QFI\xfb" + bytes(1020))
    s3.faults.stall.add("slow.qcow2")
    try:
        report, output, code = inspect_json(f"s3://{bucket}/slow.qcow2", "--timeout", "1.5", timeout=30)
    finally:
        s3.faults.stall.discard("slow.qcow2")
    assert (code, report["verdict"]) == (30, "failed")
    assert "timed out" in report["error"]
    assert "Traceback" not in output


def test_an_object_past_the_budget_is_never_downloaded(http: RangeServer) -> None:
    size = 8 * DEFAULT_BUDGET
    http.state.objects["/big.raw"] = os.urandom(size)
    report, _, _ = inspect_json(http.url("/big.raw"))
    assert report["format"] == "raw" and report["file_size"] == size
    sent = http.state.body_bytes()
    assert report["bytes_read"] < sent <= DEFAULT_BUDGET + 1  # the parent's cap, and the 1-byte open


def test_secrets_in_the_url_never_shown(http: RangeServer, qcow2: Path) -> None:
    http.state.objects["/signed.qcow2"] = qcow2.read_bytes()
    signed = http.url("/signed.qcow2").replace("//", f"//user:{SECRET}-pw@") + f"?X-Amz-Signature={SECRET}&a=1"
    missing = signed.replace("signed.qcow2", "gone.qcow2")
    for target in (signed, missing):
        for args in (["inspect", target], ["inspect", "--json", target], ["triage", target]):
            result = run_cli(*args)
            assert SECRET not in result.stdout + result.stderr
            assert "REDACTED" in result.stdout + result.stderr or (args[0] == "triage" and target == signed)
    report, _, _ = inspect_json(signed)
    assert report["path"].endswith("/signed.qcow2?X-Amz-Signature=REDACTED&a=1")


def image_urls(bucket: str, count: int) -> list[str]:
    return [f"s3://{bucket}/batch/{index:02}.qcow2" for index in range(count)]


def put_images(bucket: str, qcow2: Path, count: int) -> list[str]:
    data = qcow2.read_bytes()
    urls = image_urls(bucket, count)
    for url in urls:
        client().put_object(Bucket=bucket, Key=url.removeprefix(f"s3://{bucket}/"), Body=data)
    client().put_object(Bucket=bucket, Key="other/outside.qcow2", Body=data)
    return urls


def triage_paths(*args: str) -> None:
    result = run_cli("triage", "-q", *args)
    assert result.returncode == 0, result.stdout + result.stderr


def read_paths(path: Path) -> list[str]:
    return [json.loads(line)["path"] for line in path.read_text().splitlines()]


def test_triage_of_a_prefix_with_shards_and_resume(
    s3: S3Server,  # noqa: F811
    bucket: str,
    qcow2: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = next(n for n in range(6, 64) if len({shard_of(redact(url), 2) for url in image_urls(bucket, n)}) == 2)
    urls = put_images(bucket, qcow2, count)  # at least 6, and enough that both shards get some (bucket names vary)
    prefix = f"s3://{bucket}/batch/"
    whole = tmp_path / "whole.jsonl"
    triage_paths(prefix, "--jsonl", str(whole))
    assert sorted(read_paths(whole)) == urls
    reports = [json.loads(line) for line in whole.read_text().splitlines()]
    assert {r["verdict"] for r in reports} == {"accept"}
    assert all(sandbox.is_on(status) for r in reports for status in r["sandbox"].values())

    parts = [tmp_path / f"part-{index}.jsonl" for index in range(2)]
    for index, part in enumerate(parts):
        triage_paths(prefix, "--shard", f"{index}/2", "--jsonl", str(part))
    first, second = (set(read_paths(part)) for part in parts)
    assert first == {url for url in urls if shard_of(redact(url), 2) == 0} and first
    assert second == {url for url in urls if shard_of(redact(url), 2) == 1} and second

    resumed = tmp_path / "resumed.jsonl"
    lines = whole.read_text().splitlines(keepends=True)
    resumed.write_text("".join(lines[:4]) + lines[4][:20])  # two reports missing, one torn mid-line
    triage_paths(prefix, "--resume", str(resumed), "--jsonl", str(resumed))
    kept = [line for line in resumed.read_text().splitlines() if line.startswith("{") and line.endswith("}")]
    assert sorted(json.loads(line)["path"] for line in kept) == urls  # each object once, none twice


def test_pipe_image_reads_through_the_parent_and_keeps_its_error() -> None:
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    image = PipeImage(100, stdin=to_child_r, stdout=from_child_w)
    try:
        os.write(to_child_w, b"D" + (3).to_bytes(8, "big") + b"abc")
        assert image.pread(3, 10) == b"abc"
        assert json.loads(os.read(from_child_r, 4096)) == {"read": {"offset": 10, "length": 3}}
        os.write(to_child_w, b"D" + (9).to_bytes(8, "big"))  # more than asked: refused, never read
        with pytest.raises(SourceFailed, match="bad answer"):
            image.pread(4, 0)
        with pytest.raises(SourceFailed, match="bad answer"):
            image.pread(4, 0)  # sticky: nothing more is asked
    finally:
        for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
            os.close(fd)


def test_parent_serves_at_most_its_cap_and_dispatches_progress(http: RangeServer) -> None:
    http.state.objects["/cap.raw"] = bytes(4096)
    with open_url(http.url("/cap.raw"), Limits(deadline=5)) as image:
        served = PipeRanges(image, cap=1000)
        progress: list[Any] = []
        options = runner_mod.EngineOptions(ranges=served, on_progress=progress.append)

        async def feed() -> tuple[bytes, bytes]:
            stream = asyncio.StreamReader()
            lines = [
                b'{"sandbox":{}}',
                b'{"progress":{"done":1,"total":2,"what":"tables"}}',
                b'{"progress":{"done":"x"}}',
                b'{"read":{"offset":0,"length":600}}',
            ]
            lines += [b'{"read":{"offset":600,"length":600}}', b'{"ok":true']
            stream.feed_data(b"\n".join(lines))
            stream.feed_eof()
            written = bytearray()

            class Writer:
                def write(self, data: bytes) -> None:
                    written.extend(data)

                async def drain(self) -> None:
                    return None

            out = await runner_mod._read_stdout(stream, options, Writer())  # type: ignore[arg-type]
            return out, bytes(written)

        out, answers = asyncio.run(feed())
    assert out == b'{"sandbox":{}}\n{"ok":true'
    assert progress == [{"done": 1, "total": 2, "what": "tables"}]  # the malformed one is dropped
    assert answers[:9] == b"D" + (600).to_bytes(8, "big") and answers[9:609] == bytes(600)
    assert answers[609:610] == b"E" and b"1000 bytes" in answers[618:]
    assert (served.served, served.fetched) == (600, 1000) and "1000 bytes" in (served.error or "")
    assert [entry.range for entry in http.state.settled()[1:]] == ["bytes=0-999"]  # read ahead within the cap


def test_a_listing_that_fails_is_one_failed_entry(s3: S3Server) -> None:  # noqa: F811
    result = run_cli("triage", "-q", "s3://no-such-bucket-here/prefix/", "--endpoint-url", s3.endpoint)
    assert result.returncode == 30
    assert "FAILED s3://no-such-bucket-here/prefix/: listing failed: " in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


WRITABLE = ("qcow2", "qcow", "qed", "vmdk", "vpc", "vhdx", "vdi", "parallels", "raw")


def test_every_format_and_the_hostile_samples_report_as_the_local_files(
    http: RangeServer, qemu_create: Callable[..., Path], tmp_path: Path
) -> None:
    """qemu-img images of every writable format and the demonstration set (a backing file pointing at a host
    file, a VMDK extent naming one, encrypted images): triaged over HTTP and from the folder, key for key."""
    folder = tmp_path / "images"
    folder.mkdir()
    for fmt in WRITABLE:
        qemu_create(f"images/disk-{fmt}.{'img' if fmt == 'raw' else fmt}", fmt, "64M")
    write_demo(folder)
    names = sorted(p.name for p in folder.iterdir())
    for name in names:
        http.state.objects[f"/{name}"] = (folder / name).read_bytes()
    remote, local = tmp_path / "remote.jsonl", tmp_path / "local.jsonl"
    over_http = run_cli("triage", "-q", *(http.url(f"/{name}") for name in names), "--jsonl", str(remote))
    from_disk = run_cli("triage", "-q", str(folder), "--jsonl", str(local))
    assert over_http.returncode == from_disk.returncode == 20, over_http.stdout + from_disk.stdout  # rejects
    by_name = {
        which: {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
        for which, out in (("remote", remote), ("local", local))
    }
    assert sorted(by_name["remote"]) == sorted(by_name["local"]) == names
    assert {r["verdict"] for r in by_name["local"].values()} >= {"accept", "reject"}
    for name in names:
        remote_report, local_report = by_name["remote"][name], by_name["local"][name]
        assert remote_report["allocated_size"] is None, name
        assert stable(remote_report) == stable(local_report), name


def test_a_server_that_dies_mid_inspection_or_refuses_is_one_clear_line(http: RangeServer, qcow2: Path) -> None:
    http.state.objects["/dying.qcow2"] = qcow2.read_bytes()

    def die_after_the_open(state: ServerState) -> None:
        state.mode = "cut"  # the next range's body stops halfway and the connection closes

    http.state.after_get = die_after_the_open
    for url in (http.url("/dying.qcow2"), http.url("/private/disk.qcow2")):
        report, output, code = inspect_json(url)
        assert (code, report["verdict"]) == (30, "failed"), output
        assert "\n" not in report["error"] and report["error"], report
        assert "Traceback" not in output
    assert "403" in report["error"] or "denied" in report["error"].lower()
