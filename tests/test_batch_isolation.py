"""``--isolation batch:N``: several local images in turn per forked child, opt-in (``docs/sandbox.md``). The same
reports as one child per image, each image closed once it has replied, and an image the child replied nothing for
inspected again in a child of its own."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import outside_the_process, seed_corpus
from tests.test_cli import run_cli
from workbench.engine.child import sandbox, worker
from workbench.host import runner as client
from workbench.host.protocol import ChildOutcome, EngineOptions
from workbench.inspector import Request, inspect
from workbench.policy.policy import Policy
from workbench.triage import run as triage
from workbench.triage.walk import walk

BATCH = {"guest": False, "deep": False}


def test_a_batch_child_reports_what_one_child_per_image_reports(tmp_path: Path, qemu_img: str) -> None:
    """Every seed image (the test builders' and qemu-img's), triaged with and without ``batch:8``: the same
    reports and verdicts, and each batch report says in its ``fds`` layer that its process was shared."""
    declared = seed_corpus(tmp_path, qemu_img)

    async def batch(size: int) -> dict[str, dict[str, Any]]:
        async with triage.engine_pool(Policy().required_layers, print, BATCH) as pool:
            assert pool is not None
            gated = triage.GatedRunner(pool, 2, full_reports=False)
            runner = triage.BatchRunner(gated, pool, size) if size > 1 else gated
            inspect_one = functools.partial(inspect, runner=runner)
            make = lambda path: Request(path, declared[path], include_bytes=False, timeout=30)  # noqa: E731
            entries = walk(sorted(declared))
            return {report["path"]: report async for report in triage.run(entries, make, 2 * size, inspect_one)}

    alone, shared = asyncio.run(batch(1)), asyncio.run(batch(8))
    assert sorted(alone) == sorted(shared) == sorted(declared)
    assert {"accept", "reject"} <= {report["verdict"] for report in alone.values()}
    for path, report in alone.items():
        # a batch child holds its images and gets their CPU time together: its sandbox lines differ
        assert outside_the_process(shared[path]) == outside_the_process(report), path
        assert "--isolation batch" in shared[path]["sandbox"]["fds"]
        assert "--isolation batch" not in report["sandbox"]["fds"]
        assert all(sandbox.is_on(status) for status in shared[path]["sandbox"].values())


class _FakeServer:
    """A fork server whose batch child replied for the first ``replied`` images only."""

    def __init__(self, replied: int) -> None:
        self.replied = replied
        self.batches: list[list[str]] = []

    async def run_batch(
        self, requests: list[dict[str, Any]], images: list[int], options: EngineOptions
    ) -> list[ChildOutcome | None]:
        self.batches.append([request["path"] for request in requests])
        done = [ChildOutcome(0, f"batch {request['path']}".encode(), b"") for request in requests[: self.replied]]
        return [*done, *[None] * (len(requests) - self.replied)]


class _FakeRunner:
    """One child per image: records each image it was asked for."""

    def __init__(self) -> None:
        self.alone: list[str] = []

    async def run(self, request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
        self.alone.append(request["path"])
        return ChildOutcome(0, f"alone {request['path']}".encode(), b"")


def test_an_image_the_batch_child_did_not_reply_for_is_inspected_alone() -> None:
    server, alone = _FakeServer(replied=1), _FakeRunner()
    batching = triage.BatchRunner(triage.GatedRunner(alone, 2), server, 3)  # type: ignore[arg-type]

    async def run() -> list[ChildOutcome]:
        options = EngineOptions()
        calls = [batching.run({"fd": 3, "path": name}, (3,), options) for name in ("a", "b", "c", "d")]
        return list(await asyncio.gather(*calls))

    outcomes = asyncio.run(run())
    assert server.batches == [["a", "b", "c"], ["d"]]  # three at once, then what was left in that turn
    assert sorted(alone.alone) == ["b", "c"]
    assert [outcome.out for outcome in outcomes] == [b"batch a", b"alone b", b"alone c", b"batch d"]


def test_a_remote_image_is_never_batched() -> None:
    server, alone = _FakeServer(replied=9), _FakeRunner()
    batching = triage.BatchRunner(triage.GatedRunner(alone, 2), server, 3)  # type: ignore[arg-type]
    remote = {"source": "remote", "size": 5, "path": "s3://b/k"}
    outcome = asyncio.run(batching.run(remote, (), EngineOptions()))
    assert (server.batches, alone.alone, outcome.out) == ([], ["s3://b/k"], b"alone s3://b/k")


def test_a_batch_outcome_stops_at_the_first_reply_out_of_turn_or_cut_short() -> None:
    layers = b'{"sandbox": {}}'
    line = lambda index: b'{"index":%d,"ok":true}' % index  # noqa: E731
    whole = client.batch_outcomes(ChildOutcome(0, b"\n".join([layers, line(0), line(1), b""]), b""), 2)
    assert [outcome.out if outcome else None for outcome in whole] == [
        layers + b"\n" + line(0),
        layers + b"\n" + line(1),
    ]
    cut = client.batch_outcomes(ChildOutcome(-9, b"\n".join([layers, line(0), line(1)[:5]]), b""), 3)
    assert [outcome is not None for outcome in cut] == [True, False, False]  # the second line never ended
    skipped = client.batch_outcomes(ChildOutcome(0, b"\n".join([layers, line(1), line(0), b""]), b""), 2)
    assert skipped == [None, None]  # out of turn: nothing from there on is taken


def test_a_batch_child_times_out_as_a_whole_and_every_image_is_tried_again(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(4096))

    async def run() -> list[ChildOutcome | None]:
        async with client.ForkServerRunner(preload=BATCH) as server:
            fds = [os.open(image, os.O_RDONLY) for _ in range(3)]
            try:
                options = EngineOptions(timeout=0.001)
                requests = [{"fd": fd, "path": str(image), "declared_format": "raw"} for fd in fds]
                return await server.run_batch(requests, fds, options)
            finally:
                for fd in fds:
                    os.close(fd)

    assert asyncio.run(run()) == [None, None, None]


def test_a_batch_child_closes_each_image_once_it_has_replied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a later image might do to the process can no longer read an earlier one."""
    paths = [tmp_path / f"{index}.raw" for index in range(3)]
    for path in paths:
        path.write_bytes(bytes(512))
    fds = [os.open(path, os.O_RDONLY) for path in paths]
    lines: list[bytes] = []
    open_at_each: list[list[bool]] = []

    def inspected(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        open_at_each.append([sandbox._is_open(fd) for fd in fds])
        return 0, {"ok": True, "report": {"path": request["path"]}}

    monkeypatch.setattr(worker, "inspect_request", inspected)
    monkeypatch.setattr(worker, "reply", lambda obj, end=b"": lines.append(json.dumps(obj).encode() + end))
    request = {"batch": [{"fd": fd, "path": str(path)} for fd, path in zip(fds, paths, strict=True)]}
    assert worker._inspect_batch(request, sandbox.Plan(set(fds))) == 0
    assert open_at_each == [[True, True, True], [False, True, True], [False, False, True]]
    assert not any(sandbox._is_open(fd) for fd in fds)
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2]


@pytest.mark.parametrize("value", ["batch", "batch:1", "batch:65", "batch:x", "process", "batch:-2"])
def test_isolation_values_are_checked(value: str, tmp_path: Path) -> None:
    done = run_cli("triage", str(tmp_path), f"--isolation={value}")
    assert done.returncode == 2
    assert re.search(r"--isolation: expected image or batch:N with N from 2 to 64", done.stderr), done.stderr


def test_batches_need_the_fork_server(tmp_path: Path) -> None:
    (tmp_path / "a.raw").write_bytes(bytes(4096))
    done = run_cli("triage", str(tmp_path), "--isolation=batch:4", "--no-zygote")
    assert done.returncode == 0, done.stderr
    assert "--isolation batch:N needs the fork server: each image in a process of its own" in done.stderr


def test_deep_inspections_are_never_batched() -> None:
    server, alone = _FakeServer(replied=9), _FakeRunner()
    batching = triage.BatchRunner(triage.GatedRunner(alone, 2), server, 3)  # type: ignore[arg-type]
    outcome = asyncio.run(batching.run({"fd": 3, "path": "d", "deep": True}, (3,), EngineOptions()))
    assert (server.batches, alone.alone, outcome.out) == ([], ["d"], b"alone d")


def test_a_batch_too_large_for_one_frame_goes_one_image_per_child(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(4096))

    async def run() -> tuple[list[ChildOutcome | None], int]:
        async with client.ForkServerRunner(preload=BATCH) as server:
            fd = os.open(image, os.O_RDONLY)
            try:
                long = "x" * 4000  # 64 paths of 4,000 characters: more than one frame holds
                requests = [{"fd": fd, "path": f"{long}/{i}", "declared_format": "raw"} for i in range(64)]
                outcomes = await server.run_batch(requests, [fd] * 64, EngineOptions())
                return outcomes, next(server._ids)
            finally:
                os.close(fd)

    outcomes, next_id = asyncio.run(run())
    assert outcomes == [None] * 64
    assert next_id == 1  # nothing was sent


def test_the_fork_server_answers_an_unreadable_request_with_an_error(tmp_path: Path) -> None:
    from workbench.engine.child import frames

    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(4096))

    async def run() -> BaseException | None:
        async with client.ForkServerRunner(preload=BATCH) as server:
            waiter = asyncio.get_running_loop().create_future()
            server._waiting[77] = waiter
            fd = os.open(image, os.O_RDONLY)
            out_r, out_w = os.pipe()
            try:
                await server._send(frames.REQUEST, 77, b"[not an object", [fd, out_w, out_w])
                async with asyncio.timeout(10):
                    await asyncio.wait({waiter})
            finally:
                for each in (fd, out_r, out_w):
                    os.close(each)
            return waiter.exception()

    error = asyncio.run(run())
    assert isinstance(error, client.InspectError) and str(error) == "engine zygote: unreadable request"
