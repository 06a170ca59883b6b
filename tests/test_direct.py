"""The single-image path without an event loop (``workbench inspect FILE``, :mod:`workbench.host.direct`) gives
what the asyncio path gives: the same report, the same sandbox map, the same required-layer refusal. Its
handling of misbehaving children is tested beside the async runner's in tests/test_client.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.builders import qcow2
from tests.helpers import comparable, finding_ids, write
from workbench import inspector
from workbench.cli import early
from workbench.cli.main import main
from workbench.engine.child import sandbox
from workbench.host import direct
from workbench.policy.policy import Policy


def both(request: inspector.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report of ``request`` by the direct path and by the asyncio path (a fresh child each)."""
    assert inspector.direct_path(request)
    return inspector.inspect_direct(request), asyncio.run(inspector.inspect(request))


@pytest.mark.qemu
@pytest.mark.parametrize("guest", [False, True])
def test_direct_and_async_paths_give_the_same_report_and_sandbox(qemu_create: Any, tmp_path: Path, guest: bool) -> None:
    base = qemu_create("base.qcow2", "qcow2", "64M")
    overlay = qemu_create("overlay.qcow2", "qcow2", "64M", "-b", str(base), "-F", "qcow2")
    request = inspector.Request(str(overlay), guest=guest)
    fast, slow = both(request)
    assert fast["verdict"] == "reject"  # a backing file outside any chain
    assert "backing-file" in finding_ids(fast)
    assert set(fast["sandbox"]) == set(sandbox.layer_order())  # every layer reported, as by the async path
    assert comparable(fast) == comparable(slow)


def test_direct_and_async_paths_judge_a_hostile_image_alike(tmp_path: Path) -> None:
    path = write(tmp_path, qcow2.qcow2(1 << 30, backing="/etc/passwd", backing_format="raw"), "upload.img")
    fast, slow = both(inspector.Request(str(path)))
    assert fast["verdict"] == "reject"
    assert {"backing-file", "format-undeclared"} <= finding_ids(fast)
    assert comparable(fast) == comparable(slow)


def test_direct_path_refuses_a_missing_required_layer_as_the_async_path_does(raw_image: Path) -> None:
    request = inspector.Request(str(raw_image), policy=Policy(required_layers=["no-such-layer"]))
    fast, slow = both(request)
    assert fast["verdict"] == "failed"
    assert "no-such-layer" in fast["error"]
    assert (fast["error"], fast["sandbox"].keys()) == (slow["error"], slow["sandbox"].keys())


def test_direct_path_takes_only_local_images_without_progress(raw_image: Path) -> None:
    assert inspector.direct_path(inspector.Request(str(raw_image)))
    assert not inspector.direct_path(inspector.Request(str(raw_image), deep=True))  # progress lines
    assert not inspector.direct_path(inspector.Request("s3://bucket/disk.qcow2"))  # the child's reads
    assert not direct.available(deep=True)


def children_made(monkeypatch: pytest.MonkeyPatch) -> list[direct.Child]:
    """Every :class:`direct.Child` made from now on, in order."""
    made: list[direct.Child] = []
    real = direct.Child

    def making(*args: Any) -> direct.Child:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(direct, "Child", making)
    return made


def test_a_child_started_before_the_command_line_gives_the_async_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``workbench inspect FILE`` as the launcher runs it: the child started first (cli/early.py) is the one
    sent the request, and the report is the asyncio path's."""
    path = write(tmp_path, qcow2.qcow2(1 << 30, backing="/etc/passwd", backing_format="raw"), "upload.img")
    made = children_made(monkeypatch)
    early.start(["--json", str(path)])
    assert main(["inspect", "--json", str(path)]) == 20
    assert len(made) == 1  # taken by the command, not replaced
    fast = json.loads(capsys.readouterr().out)
    slow = asyncio.run(inspector.inspect(inspector.Request(str(path))))
    assert fast["verdict"] == "reject"
    assert comparable(fast) == comparable(slow)


def test_an_early_child_the_command_line_does_not_take_is_ended_unused(
    monkeypatch: pytest.MonkeyPatch, raw_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = children_made(monkeypatch)
    early.start([str(raw_image)])
    first = made[0]._proc
    assert first is not None and first.returncode is None  # waiting for a request
    assert main(["inspect", "--json", "--follow-symlinks", str(raw_image)]) == 0  # opened another way
    assert len(made) == 2 and made[1]._proc is None
    assert first.returncode == -signal.SIGKILL  # killed and reaped, never sent a request
    assert json.loads(capsys.readouterr().out)["verdict"] == "accept"
    early.start([str(raw_image)])
    waiting = made[2]._proc
    assert waiting is not None
    early.discard()  # a usage error, --help: no command took it
    assert waiting.returncode == -signal.SIGKILL


def test_the_spawned_child_inherits_only_its_pipes_and_image_in_a_new_session_from_root(raw_image: Path) -> None:
    """:func:`workbench.host.spawn.spawn` (``os.posix_spawn``) gives what ``spawn_options`` gives ``subprocess``:
    the child's descriptors, before it hardens, are its three pipes and the image; a descriptor the parent holds
    without close-on-exec is not passed; no environment; its own session; the working directory ``/``."""

    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)  # as a descriptor handed down by whoever started the parent would be
    child = direct.Child(str(raw_image), False, None, 20.0)
    try:
        proc, fd = child._proc, child._fd
        assert proc is not None and fd is not None and os.get_inheritable(fd) is False  # inheritable for the spawn only
        where = f"/proc/{proc.pid}"
        deadline = time.monotonic() + 30
        while os.readlink(f"{where}/cwd") != "/" and time.monotonic() < deadline:  # the child's first statement
            time.sleep(0.01)
        assert os.readlink(f"{where}/cwd") == "/"
        links = {}
        for name in os.listdir(f"{where}/fd"):  # the interpreter still opens and closes module files meanwhile:
            with contextlib.suppress(FileNotFoundError):  # one can be gone by the time its link is read
                links[int(name)] = os.readlink(f"{where}/fd/{name}")
        pipe = lambda n: os.readlink(f"/proc/self/fd/{n}")  # noqa: E731
        assert pipe(leak_r) not in links.values()
        assert links[fd] == str(raw_image)
        assert {links[0], links[1], links[2]} <= {pipe(n) for n in (proc.stdin, proc.stdout, proc.stderr)}
        assert links[0] != links[1] != links[2]
        with open(f"{where}/environ", "rb") as environ:
            assert environ.read() == b""
        assert os.getsid(proc.pid) == proc.pid and os.getpgid(proc.pid) == proc.pid
    finally:
        child.close()
        os.close(leak_r)
        os.close(leak_w)
    assert proc.returncode == -signal.SIGKILL  # the group killed, the child reaped
    assert proc.stdin is proc.stdout is proc.stderr is None


def test_the_spawned_child_starts_with_default_signal_actions_and_none_blocked(
    monkeypatch: pytest.MonkeyPatch, raw_image: Path
) -> None:
    """A parent that ignores SIGXCPU and blocks SIGUSR1 (as whoever started it may have left them) passes neither
    to the child: the CPU limit's signal stops it, and nothing is held back from it."""
    code = "import sys; print(open('/proc/self/status').read()); sys.stdout.flush()"
    monkeypatch.setattr(direct, "engine_command", lambda: [sys.executable, "-I", "-S", "-c", code])
    previous = signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        child = direct.Child(str(raw_image), False, None, 20.0)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGXCPU, previous)
    try:
        proc = child._proc
        assert proc is not None and proc.stdout is not None
        out = b""
        while chunk := os.read(proc.stdout, 65536):
            out += chunk
    finally:
        child.close()
    status = dict(line.split(":\t", 1) for line in out.decode().splitlines() if ":\t" in line)
    assert int(status["SigBlk"], 16) == 0
    assert not int(status["SigIgn"], 16) & (1 << (signal.SIGXCPU - 1))


def test_a_child_that_outlives_its_timeout_has_its_group_killed_and_is_reaped(
    monkeypatch: pytest.MonkeyPatch, raw_image: Path
) -> None:
    from workbench.host import protocol

    monkeypatch.setattr(direct, "engine_command", lambda: ["/bin/sh", "-c", "sleep 60 & wait"])
    child = direct.Child(str(raw_image), False, None, 20.0)
    proc = child._proc
    assert proc is not None
    with pytest.raises(direct.InspectError, match="timed out after 0.5 s"):
        child.inspect(None, protocol.EngineOptions(timeout=0.5))
    assert proc.returncode == -signal.SIGKILL
    assert living_in_group(proc.pid) == []  # the grandchild went with its group


def living_in_group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are not dead (zombies wait for whoever reaps orphans)."""
    living = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        state, _, group = stat.rpartition(")")[2].split()[:3]
        if int(group) == pgid and state != "Z":
            living.append(int(name))
    return living


def test_a_hung_call_is_abandoned_its_late_result_discarded_and_stuck_calls_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``host.open.off_thread`` (threads of ``_thread``, so ``inspect FILE`` starts its child before importing
    ``threading``): a call still running at its timeout is abandoned and what it returns later is discarded;
    at most ``MAX_STUCK_CALLS`` such calls at once, then refused; an OSError is a one-line InspectError."""

    from workbench.host import open as host_open

    monkeypatch.setattr(host_open, "MAX_STUCK_CALLS", 2)
    release = threading.Event()
    discarded: list[int] = []
    for number in (1, 2):
        with pytest.raises(direct.InspectError, match="^opening the file timed out after 0.1 s .* abandoned$"):
            host_open.off_thread(lambda n=number: release.wait(30) and n, 0.1, "opening the file", discarded.append)
    with pytest.raises(direct.InspectError, match="^checking: 2 earlier file-system calls are still stuck: refused$"):
        host_open.off_thread(lambda: 3, 5, "checking")
    release.set()
    deadline = time.monotonic() + 30
    while (len(discarded) < 2 or host_open._running_calls) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(discarded) == [1, 2] and host_open._running_calls == 0
    assert host_open.off_thread(lambda: 3, 5, "checking") == 3
    with pytest.raises(direct.InspectError, match="^checking: No such file or directory$"):
        host_open.off_thread(lambda: os.stat("/no/such/file"), 5, "checking")
