"""The parent side against children that misbehave: each gives one clear line and a failed report, and the
command line carries on. A fake engine (a small script in place of the worker) plays the bad child; the
zygote backend is tested with the real engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from tests.builders import vhdx as vhdx_builder
from tests.helpers import outside_the_process
from workbench import inspector
from workbench.engine.child import frames, sandbox
from workbench.host import direct
from workbench.host import open as host_open
from workbench.host import runner as client
from workbench.host import sandbox_check as check

# Every layer claimed on, so that the parent's own check of the line passes and what follows is judged.
FAKE_LAYERS = dict.fromkeys(sandbox.layer_order(), "on (fake)")
LAYERS = f"print({json.dumps({'sandbox': FAKE_LAYERS})!r}, flush=True)\n"
FAKES = {
    "crash": "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
    "crash_after_layers": LAYERS + "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
    "hang": "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)",
    "flood": "import os\nwhile True: os.write(1, b'x' * 65536)",
    "no_layers": 'print(\'{"ok": true, "report": {}}\')',
    "malformed": LAYERS + 'print(\'{"ok": true, "report": {\')',
    "deep": LAYERS + "print('[' * 200000)",
    "not_object": LAYERS + "print('[1, 2, 3]')",
    "wrong_types": LAYERS + 'print(\'{"ok": true, "report": {"schema": "workbench-report/1", "x": 5}}\')',
    "silent_failure": "import sys; sys.stderr.write('Traceback...\\nRuntimeError: boom\\n'); sys.exit(1)",
    "asks_a_range": LAYERS
    + 'print(\'{"read": {"offset": 0, "length": 512}}\', flush=True); import time; time.sleep(60)',
    "stderr_flood": "import os\nwhile True: os.write(2, b'x' * 65536)",
}
EXPECTED = {
    "crash": "engine crashed (SIGSEGV)",
    "crash_after_layers": "engine crashed (SIGSEGV)",
    "hang": "engine timed out after 1 s and was killed",
    "flood": f"engine reply larger than {client.REPLY_CAP} bytes: refused",
    "no_layers": "engine reply does not start with its sandbox report",
    "malformed": "engine reply is not valid JSON (exited normally)",
    "deep": "engine reply is not valid JSON (exited normally)",
    "not_object": "engine reply is not a JSON object",
    "wrong_types": "engine reply rejected: ",
    "silent_failure": "engine exited with status 1 RuntimeError: boom",
    "asks_a_range": "engine asked for a byte range of an image that is not remote",
    "stderr_flood": f"engine error output larger than {client.STDERR_CAP} bytes: refused",
}
# Failures after the child sent its layer line keep that line in the failed report.
KEEP_LAYERS = {"crash_after_layers", "malformed", "deep", "not_object"}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(4096))
    return path


def fake_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str) -> Path:
    """Replace the worker by the script ``FAKES[kind]``; it gets a file path for its pid as argument."""
    pid_file = tmp_path / "pid"
    for module in (client, direct):
        monkeypatch.setattr(
            module, "engine_command", lambda zygote=False: [sys.executable, "-c", FAKES[kind], str(pid_file)]
        )
    return pid_file


def inspect(path: Path) -> dict[str, Any]:
    """The call the window and the command line make for each image."""
    return asyncio.run(inspector.inspect(inspector.Request(str(path), timeout=1)))


def inspect_direct(path: Path) -> dict[str, Any]:
    """The call ``workbench inspect FILE`` makes for its one local image: no event loop."""
    return inspector.inspect_direct(inspector.Request(str(path), timeout=1))


BOTH_PATHS = pytest.mark.parametrize("inspect_one", [inspect, inspect_direct], ids=["async", "direct"])


@BOTH_PATHS
@pytest.mark.parametrize("kind", sorted(FAKES))
def test_misbehaving_child_gives_one_line_and_a_failed_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, image: Path, kind: str, inspect_one: Any
) -> None:
    fake_engine(monkeypatch, tmp_path, kind)
    report = inspect_one(image)
    assert report["verdict"] == "failed"
    assert report["error"].startswith(EXPECTED[kind]), report["error"]
    assert "\n" not in report["error"]
    assert report["sandbox"] == (FAKE_LAYERS if kind in KEEP_LAYERS else {})


@BOTH_PATHS
def test_timeout_kills_the_sleeping_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, image: Path, inspect_one: Any
) -> None:
    pid_file = fake_engine(monkeypatch, tmp_path, "hang")
    assert inspect_one(image)["error"] == "engine timed out after 1 s and was killed"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_cli_carries_on_after_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli.main import main

    fake_engine(monkeypatch, tmp_path, "crash")
    other = tmp_path / "other.raw"
    other.write_bytes(bytes(512))
    assert main(["inspect", "--timeout", "5", str(image), str(other)]) == 30
    lines = capsys.readouterr().err.splitlines()
    # One failed line per image, whatever the fork server said (or did not say) before falling back.
    failed = [line for line in lines if ": FAILED: " in line]
    assert failed == [f"{image}: FAILED: engine crashed (SIGSEGV)", f"{other}: FAILED: engine crashed (SIGSEGV)"]


@BOTH_PATHS
def test_engine_that_cannot_start_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, image: Path, inspect_one: Any
) -> None:
    for module in (client, direct):
        monkeypatch.setattr(module, "engine_command", lambda zygote=False: ["/nonexistent/engine"])
    assert inspect_one(image)["error"] == "could not start the engine: No such file or directory"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a directory, not an image file"),
        (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not an image file"),
        (lambda p: p.symlink_to("/etc/passwd"), "is a symbolic link to '/etc/passwd': refused (use --follow-symlinks)"),
    ],
)
def test_open_image_refuses_what_is_not_an_image(tmp_path: Path, make: Any, message: str) -> None:
    path = tmp_path / "thing"
    make(path)
    with pytest.raises(client.InspectError, match=message.replace("(", r"\(").replace(")", r"\)")):
        client.open_image(str(path))


def test_zygote_children_are_tightened_and_inherit_the_servers_layers(image: Path) -> None:
    async def run() -> tuple[dict[str, str], list[dict[str, Any]]]:
        async with client.ForkServerRunner(require_layers=["rlimits", "no_new_privs", "landlock|seccomp"]) as zygote:
            options = client.EngineOptions()
            reports = await asyncio.gather(
                *(client.inspect_path(str(image), "raw", options, runner=zygote) for _ in range(3))
            )
            return zygote.sandbox, list(reports)

    server, reports = asyncio.run(run())
    assert "NPROC" not in server["rlimits"] and "CPU" not in server["rlimits"]  # the server must fork
    for report in reports:
        layers = report["sandbox"]
        assert report["format"] == "raw"
        assert "NPROC 0" in layers["rlimits"] and "CPU 10" in layers["rlimits"]
        assert "23 system calls" in layers["seccomp"]  # the child's own, stricter filter
        assert layers["landlock"].endswith("(inherited from the zygote)")
        assert all(sandbox.is_on(status) for status in layers.values()), layers
        # no listing in the zygote's empty root: the image moved to 0 and one close_range closed all above 2
        assert re.fullmatch(r"on \(only 0, 1, 2; moved \d+ to 0\)", layers["fds"]), layers["fds"]
        assert "NOFILE 3" in layers["rlimits"] and "free descriptor" not in layers["rlimits"]


def test_fork_server_frames_carry_ids_codes_and_errors() -> None:
    assert frames.parse(frames.frame(frames.REQUEST, 2**63 - 1, b'{"fd": 3}')) == (
        frames.REQUEST,
        2**63 - 1,
        b'{"fd": 3}',
    )
    kind, ident, body = frames.parse(frames.frame(frames.STATUS, 7, frames.status_body(-signal.SIGKILL)))
    assert (kind, ident, frames.status_of(body)) == (frames.STATUS, 7, -signal.SIGKILL)
    assert frames.status_of(b"\x00\x01") is None  # not four bytes: no exit code
    assert frames.parse(b"K") == (frames.KILL, 0, b"")


def test_a_fork_server_frame_of_no_known_kind_fails_its_waiter() -> None:
    async def run() -> BaseException | None:
        server = client.ForkServerRunner()
        waiter = asyncio.get_running_loop().create_future()
        server._waiting[5] = waiter
        server._exited(frames.frame(b"?", 5, b""))
        return waiter.exception()

    error = asyncio.run(run())
    assert isinstance(error, client.InspectError) and "no known kind" in str(error)


def test_zygote_child_holds_only_its_image_and_pipes() -> None:
    async def run() -> dict[str, Any] | None:
        async with client.ForkServerRunner() as zygote:
            _, reply = await check.attempt(["fds"], {}, client.EngineOptions(timeout=15), runner=zygote)
            return reply

    reply = asyncio.run(run())
    assert reply is not None and reply["escapes"]["fds"]["fds"] == [0, 1, 2]


def test_zygote_reports_a_killed_child_and_goes_on(image: Path) -> None:
    async def run() -> tuple[int | None, dict[str, Any]]:
        async with client.ForkServerRunner() as zygote:
            options = client.EngineOptions(timeout=15)
            outcome, _ = await check.attempt(["exec"], {}, options, runner=zygote)
            return outcome.returncode, await client.inspect_path(str(image), "raw", options, runner=zygote)

    code, report = asyncio.run(run())
    assert code == -signal.SIGSYS
    assert report["format"] == "raw"


def test_zygote_timeout_kills_only_that_child(image: Path) -> None:
    async def run() -> tuple[str, dict[str, Any]]:
        async with client.ForkServerRunner() as zygote:
            hold_r, hold_w = os.pipe()
            request = {"fd": hold_r, "path": "(hold)", "escapes": ["hold"]}
            try:
                with pytest.raises(client.InspectError) as caught:
                    await zygote.run(request, (hold_r,), client.EngineOptions(timeout=0.5))
            finally:
                os.close(hold_r)
                os.close(hold_w)
            return str(caught.value), await client.inspect_path(
                str(image), "raw", client.EngineOptions(), runner=zygote
            )

    message, report = asyncio.run(run())
    assert message == "engine timed out after 0.5 s and was killed"
    assert report["format"] == "raw"


def test_zygote_refuses_to_start_without_a_required_layer() -> None:
    async def run() -> None:
        async with client.ForkServerRunner(require_layers=["teleportation"]):
            pass

    with pytest.raises(client.InspectError, match="sandbox layers required but not on: teleportation") as caught:
        asyncio.run(run())
    assert sandbox.is_on(caught.value.sandbox["seccomp"])


def test_reply_is_decoded_only_as_json_objects() -> None:
    line = json.dumps({"sandbox": {"rlimits": "on"}}).encode() + b"\n"
    reply = client.decode_reply(client.ChildOutcome(0, line + json.dumps({"ok": True}).encode(), b""))
    assert reply == {"ok": True, "sandbox": {"rlimits": "on"}}
    with pytest.raises(client.InspectError, match="killed by the sandbox for a forbidden system call"):
        client.decode_reply(client.ChildOutcome(-signal.SIGSYS, b"", b""))


def test_open_image_decides_before_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO, a socket or a device node given by name is refused from its stat: never opened at all."""
    os.mkfifo(tmp_path / "pipe.raw")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "socket.raw"))
    names = {"pipe.raw": "a FIFO (named pipe)", "socket.raw": "a socket"}
    if os.geteuid() == 0:
        os.mknod(tmp_path / "customer-disk.img", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        names["customer-disk.img"] = "a character device"
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(client.os, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    for name, kind in names.items():
        with pytest.raises(client.InspectError, match=rf"^is {re.escape(kind)}, not an image file$"):
            client.open_image(str(tmp_path / name))
    assert opened == []


def test_file_replaced_between_its_check_and_its_open_is_refused(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_stat = os.stat

    def stat_then_replace(path: str, *args: Any, **kwargs: Any) -> os.stat_result:
        seen = real_stat(path, *args, **kwargs)
        Path(f"{path}.new").write_bytes(bytes(512))
        os.replace(f"{path}.new", path)
        return seen

    monkeypatch.setattr(client.os, "stat", stat_then_replace)
    with pytest.raises(client.InspectError, match="^was replaced between its check and its open: refused$"):
        client.open_image(str(image))


def held_open(monkeypatch: pytest.MonkeyPatch, held: Path) -> tuple[threading.Event, list[int]]:
    """Make opening ``held`` block (like a hung network filesystem) until the returned event is set; the list
    gets each descriptor the real open returned for it."""
    release = threading.Event()
    opened: list[int] = []
    real_open = client.open_image

    def open_image(path: str, *args: Any) -> tuple[int, os.stat_result]:
        if path != str(held):
            return real_open(path, *args)
        assert release.wait(60), "the test never released the open"
        result = real_open(path, *args)
        opened.append(result[0])
        return result

    monkeypatch.setattr(client, "open_image", open_image)
    return release, opened


def is_open_on(fd: int, path: Path) -> bool:
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return os.path.samestat(st, os.stat(path))


def test_a_hung_open_leaves_the_event_loop_free(image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = tmp_path / "slow.raw"
    slow.write_bytes(bytes(4096))
    release, _ = held_open(monkeypatch, slow)

    async def run() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        hung = asyncio.ensure_future(inspector.inspect(inspector.Request(str(slow), timeout=60)))
        other = await inspector.inspect(inspector.Request(str(image), timeout=60))
        still_waiting = not hung.done()
        release.set()
        return other, still_waiting, await hung

    other, still_waiting, late = asyncio.run(run())
    assert other["verdict"] == "accept"
    assert still_waiting
    assert late["verdict"] == "accept"  # released, it is inspected as usual


def test_a_timed_out_open_is_a_failed_report_and_its_descriptor_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = tmp_path / "slow.raw"
    slow.write_bytes(bytes(4096))
    release, opened = held_open(monkeypatch, slow)

    async def run() -> dict[str, Any]:
        report = await inspector.inspect(inspector.Request(str(slow), timeout=0.5))
        release.set()
        while not opened or is_open_on(opened[0], slow):  # the abandoned open finishes; its descriptor is closed
            await asyncio.sleep(0.01)
        return report

    report = asyncio.run(asyncio.wait_for(run(), 30))
    assert report["verdict"] == "failed"
    assert report["error"] == "opening the file timed out after 0.5 s (a hung filesystem?) and was abandoned"


def test_a_file_that_grows_while_the_child_reads_it_is_rejected(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child (the real engine, after appending to the image first) reads a file whose size and times then
    differ from the parent's fstat at the open: a critical image-changed finding, for a single inspect."""
    append = f"open({str(image)!r}, 'ab').write(bytes(512))\n"
    command = client.engine_command()
    monkeypatch.setattr(client, "engine_command", lambda zygote=False: [*command[:-1], append + command[-1]])
    report = inspect(image)
    changed = [f for f in report["findings"] if f["id"] == "image-changed"]
    assert [f["severity"] for f in changed] == ["critical"]
    detail = changed[0]["detail"]  # the times move too, unless within one tick of the kernel's coarse clock
    assert detail.startswith("its size") and detail.endswith("changed while the engine read it (4096 -> 4608 bytes)")
    assert report["verdict"] == "reject"


def test_an_unchanged_file_has_no_image_changed_finding(image: Path) -> None:
    report = inspect(image)
    assert report["verdict"] == "accept"
    assert "image-changed" not in {f["id"] for f in report["findings"]}


def test_changes_names_what_moved() -> None:
    def st(size: int, mtime: int, ctime: int) -> Any:
        return types.SimpleNamespace(st_size=size, st_mtime_ns=mtime, st_ctime_ns=ctime)

    assert client.changes(st(4096, 1, 2), st(4096, 1, 2)) is None
    assert client.changes(st(4096, 1, 2), st(4096, 1, 3)) == (
        "its status change time changed while the engine read it (4096 -> 4096 bytes)"
    )
    assert client.changes(st(4096, 1, 2), st(8192, 5, 2)) == (
        "its size, modification time changed while the engine read it (4096 -> 8192 bytes)"
    )


def test_file_system_calls_reuse_an_idle_worker_thread_and_a_stuck_one_holds_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's opens and fstats run on kept threads (no thread started per call); a call stuck in the kernel
    keeps its thread, and the next call gets another."""
    workers = host_open._workers
    started: list[object] = []
    start = host_open._thread.start_new_thread
    monkeypatch.setattr(host_open._thread, "start_new_thread", lambda *args: started.append(args) or start(*args))
    assert host_open.off_thread(threading.get_ident, 5, "a call") != threading.get_ident()
    while not workers._idle:  # the thread counts itself idle just after it hands the result over
        threading.Event().wait(0.01)
    started.clear()
    assert host_open.off_thread(threading.get_ident, 5, "a call") != threading.get_ident()
    assert started == []  # an idle thread took it
    release = threading.Event()
    stuck: list[int] = []
    with pytest.raises(client.InspectError, match="a stuck call timed out after 0.2 s"):
        host_open.off_thread(lambda: stuck.append(threading.get_ident()) or release.wait(30), 0.2, "a stuck call")
    try:
        assert host_open.off_thread(threading.get_ident, 5, "a call") not in (*stuck, threading.get_ident())
    finally:
        release.set()


def test_zygote_child_replies_are_capped_and_read_in_full(image: Path) -> None:
    """The fork server's children of local images are read without streams: the caps and the whole reply hold."""

    async def run() -> tuple[str, dict[str, Any]]:
        async with client.ForkServerRunner() as zygote:
            with pytest.raises(client.InspectError) as caught:
                await client.inspect_path(str(image), "raw", client.EngineOptions(reply_cap=200), runner=zygote)
            return str(caught.value), await client.inspect_path(
                str(image), "raw", client.EngineOptions(), runner=zygote
            )

    message, report = asyncio.run(run())
    assert message == "engine reply larger than 200 bytes: refused"
    fresh = asyncio.run(client.inspect_path(str(image), "raw", client.EngineOptions()))
    assert {"elapsed_ms", "sandbox"} <= report.keys() & fresh.keys()
    assert outside_the_process(report) == outside_the_process(fresh)


def test_a_zygote_child_reply_longer_than_one_pipe_read_arrives_whole(tmp_path: Path) -> None:
    """A VHDX's full report (its hex view included) is several times ``PIPE_READ``: it is read in turns, each
    read ending the turn when it found the pipe emptier than asked, and arrives whole."""
    path = tmp_path / "disk.vhdx"
    path.write_bytes(vhdx_builder.vhdx())

    async def through_zygote() -> dict[str, Any]:
        async with client.ForkServerRunner() as zygote:
            return await client.inspect_path(str(path), "vhdx", client.EngineOptions(), runner=zygote)

    report = asyncio.run(through_zygote())
    fresh = asyncio.run(client.inspect_path(str(path), "vhdx", client.EngineOptions()))
    assert len(json.dumps(report)) > 3 * client.PIPE_READ
    assert {"elapsed_ms", "sandbox"} <= report.keys() & fresh.keys()
    assert outside_the_process(report) == outside_the_process(fresh)


def test_zygote_started_for_a_plain_batch_refuses_what_it_did_not_import(image: Path) -> None:
    """A fork server told its batch needs no guest view, deep inspection or escapes imports none of them, and a
    request for one is refused in the parent instead of failing in a child that can no longer import."""

    async def run() -> tuple[list[str], dict[str, Any]]:
        refused = []
        async with client.ForkServerRunner(preload={"guest": False, "deep": False}) as zygote:
            for options in (client.EngineOptions(guest=True), client.EngineOptions(deep=True)):
                with pytest.raises(client.InspectError) as caught:
                    await client.inspect_path(str(image), "raw", options, runner=zygote)
                refused.append(str(caught.value))
            with pytest.raises(client.InspectError) as caught:
                await check.attempt(["exec"], {}, client.EngineOptions(), runner=zygote)
            refused.append(str(caught.value))
            return refused, await client.inspect_path(str(image), "raw", client.EngineOptions(), runner=zygote)

    refused, report = asyncio.run(run())
    assert refused == ["the engine zygote was started for less than this request asks (guest, deep, escapes)"] * 3
    assert report["format"] == "raw"
    assert all(sandbox.is_on(status) for status in report["sandbox"].values()), report["sandbox"]
