"""The Windows and macOS paths of the engine sandbox, run here with the platform checks and the Windows pieces
(msvcrt, kernel32, STARTUPINFO) mocked: there is no Windows or macOS machine to run them on.
``tests/test_sandbox.py`` already checks that the Linux-only layers report ``unavailable`` there and the
default policy per platform.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from workbench.engine.child import sandbox, winjob, worker
from workbench.host import runner as client
from workbench.triage import run as triage

GIB = 1 << 30


@pytest.fixture
def msvcrt(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A stand-in for Windows' msvcrt: descriptor n has handle 1000 + n; open_osfhandle calls are recorded."""
    fake = types.SimpleNamespace(opened=[])
    fake.get_osfhandle = lambda fd: 1000 + fd

    def open_osfhandle(handle: int, flags: int) -> int:
        fake.opened.append((handle, flags))
        return 9

    fake.open_osfhandle = open_osfhandle
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    return fake


class FakeKernel32:
    """Records the job-object calls; ``fail`` names a function that returns FALSE."""

    JOB, PROCESS, SELF = 0x70, 0x80, -1

    def __init__(self, fail: str = "", in_job: bool = True) -> None:
        self.fail = fail
        self.in_job = in_job
        self.info: dict[int, tuple[Any, int]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.closed: list[int] = []

    def _result(self, name: str, value: Any) -> Any:
        self.calls.append((name,))
        return 0 if self.fail == name else value

    def CreateJobObjectW(self, attributes: None, name: None) -> int:
        return self._result("CreateJobObjectW", self.JOB)

    def SetInformationJobObject(self, job: int, info_class: int, pointer: Any, size: int) -> int:
        self.info[info_class] = (pointer.contents, size)
        return self._result("SetInformationJobObject", 1)

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:
        self.opened = (access, inherit, pid)
        return self._result("OpenProcess", self.PROCESS)

    def AssignProcessToJobObject(self, job: int, process: int) -> int:
        self.assigned = (job, process)
        return self._result("AssignProcessToJobObject", 1)

    def CloseHandle(self, handle: int) -> int:
        self.closed.append(handle)
        return 1

    def GetCurrentProcess(self) -> int:
        return self.SELF

    def IsProcessInJob(self, process: int, job: None, result: Any) -> int:
        assert (process, job) == (self.SELF, None)
        result.contents.value = int(self.in_job)
        return self._result("IsProcessInJob", 1)


def use_kernel32(monkeypatch: pytest.MonkeyPatch, kernel: FakeKernel32) -> FakeKernel32:
    monkeypatch.setattr(winjob, "_kernel32", lambda: kernel)
    return kernel


def test_windows_spawn_passes_only_the_image_handle(
    monkeypatch: pytest.MonkeyPatch, msvcrt: types.SimpleNamespace
) -> None:
    inheritable: list[tuple[int, bool]] = []
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "set_handle_inheritable", lambda h, on: inheritable.append((h, on)), raising=False)
    monkeypatch.setattr(subprocess, "STARTUPINFO", lambda **kw: types.SimpleNamespace(**kw), raising=False)
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    monkeypatch.setenv("SECRET", "not for the child")
    options = client.spawn_options((5,))
    assert options["startupinfo"].lpAttributeList == {"handle_list": [1005]}
    assert inheritable == [(1005, True)]
    assert options["close_fds"] is True
    assert options["creationflags"] == 0x00000200 | 0x08000000  # CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW
    assert options["env"] == {"SYSTEMROOT": r"C:\Windows"}
    assert "pass_fds" not in options and "start_new_session" not in options


def test_job_object_limits_and_assignment(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = use_kernel32(monkeypatch, FakeKernel32())
    job = winjob.confine(4242)
    assert job.status == winjob.STATUS and job.handle == kernel.JOB
    limits, size = kernel.info[9]  # JobObjectExtendedLimitInformation
    assert size == ctypes.sizeof(winjob.JOBOBJECT_EXTENDED_LIMIT_INFORMATION)
    assert limits.BasicLimitInformation.LimitFlags == 0x2000 | 0x100 | 0x8 | 0x400  # kill on close, memory,
    assert limits.BasicLimitInformation.ActiveProcessLimit == 1  # active processes, die on unhandled exception
    assert limits.ProcessMemoryLimit == GIB
    ui, _ = kernel.info[4]  # JobObjectBasicUIRestrictions
    assert ui.UIRestrictionsClass & (0x40 | 0x02 | 0x04 | 0x20) == 0x66  # desktop, clipboard, global atoms
    assert kernel.opened == (0x0100 | 0x0001, False, 4242)  # PROCESS_SET_QUOTA | PROCESS_TERMINATE
    assert kernel.assigned == (kernel.JOB, kernel.PROCESS)
    assert kernel.closed == [kernel.PROCESS]  # the job handle stays open: closing it kills the child
    job.close()
    assert kernel.closed == [kernel.PROCESS, kernel.JOB]


def test_job_struct_layout_matches_windows() -> None:
    """sizeof(JOBOBJECT_EXTENDED_LIMIT_INFORMATION) is 144 on 64-bit Windows and 112 on 32-bit."""
    pointer = ctypes.sizeof(ctypes.c_void_p)
    assert ctypes.sizeof(winjob.JOBOBJECT_EXTENDED_LIMIT_INFORMATION) == {8: 144, 4: 112}[pointer]
    assert winjob.JOBOBJECT_EXTENDED_LIMIT_INFORMATION.ProcessMemoryLimit.offset == {8: 112, 4: 96}[pointer]


def test_job_that_cannot_be_assigned_is_reported_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = use_kernel32(monkeypatch, FakeKernel32(fail="AssignProcessToJobObject"))
    job = winjob.confine(4242)
    assert job.status.startswith("failed: AssignProcessToJobObject failed")
    assert job.handle is None
    assert kernel.closed == [kernel.PROCESS, kernel.JOB]


def test_job_without_kernel32_is_reported() -> None:
    """Here ctypes has no WinDLL: the lookup is lazy, so the module imports and confine says why."""
    winjob._kernel32.cache_clear()
    assert winjob.confine(1).status.startswith("failed: kernel32 is not available")


@pytest.mark.parametrize(
    ("told", "in_job", "expected"),
    [
        (winjob.STATUS, True, winjob.STATUS),
        (winjob.STATUS, False, "failed: the parent reported a job object, but this process is in none"),
        (None, True, "failed: the parent put this process in no job object"),
        ("failed: OpenProcess failed (Windows error 5)", True, "failed: OpenProcess failed (Windows error 5)"),
    ],
)
def test_child_reports_and_verifies_its_job(
    monkeypatch: pytest.MonkeyPatch, told: str | None, in_job: bool, expected: str
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    use_kernel32(monkeypatch, FakeKernel32(in_job=in_job))
    request = {"fd": 9, "job": told} if told else {"fd": 9}
    plan = worker.plan_for(request, {0, 1, 2, 9})
    plan.layers = ("fds", "job")
    status = sandbox.harden(plan)
    assert status["job"] == expected
    assert status["fds"] == "on (the parent's handle list passes only the pipes and the image)"
    assert list(status) == list(sandbox.ORDER)


def test_job_layer_exists_only_on_windows() -> None:
    assert "job" not in sandbox.layer_order()


def test_windows_child_turns_the_handle_into_a_descriptor(
    monkeypatch: pytest.MonkeyPatch, msvcrt: types.SimpleNamespace
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    request = {"fd": 5, "handle": 1005}
    worker.adopt_image(request)
    assert msvcrt.opened == [(1005, os.O_RDONLY)]
    assert request["fd"] == 9
    with pytest.raises(ValueError, match="no image handle"):
        worker.adopt_image({"fd": 5})


FAKE_CHILD = (
    "import json, os, sys\n"
    "request = json.loads(sys.stdin.read())\n"
    'print(json.dumps({"sandbox": {"job": request["job"]}}))\n'
    'print(json.dumps({"ok": True, "request": request}))\n'
)


def test_windows_parent_confines_the_child_and_names_its_handle(
    monkeypatch: pytest.MonkeyPatch, msvcrt: types.SimpleNamespace
) -> None:
    """run_fresh on Windows: the job is made before the request is sent, the request names the image's
    handle and the job's status, and the job is closed once the child is gone. The child is a real process
    started with this system's options; only the Windows calls are fakes."""
    jobs: list[tuple[int, winjob.Job]] = []

    def confine(pid: int) -> winjob.Job:
        job = winjob.Job(None, "on (fake job)")
        job.close = lambda: jobs.append((pid, job))  # type: ignore[method-assign]
        return job

    fd = os.open(os.devnull, os.O_RDONLY)
    options = client.spawn_options((fd,))  # this system's: a real child cannot start with Windows options
    monkeypatch.setattr(client, "spawn_options", lambda fds: options)
    monkeypatch.setattr(client, "engine_command", lambda zygote=False: [sys.executable, "-c", FAKE_CHILD])
    monkeypatch.setattr(winjob, "confine", confine)
    monkeypatch.setattr(sys, "platform", "win32")
    try:
        outcome = asyncio.run(client.run_fresh({"fd": fd}, (fd,), client.EngineOptions(timeout=10)))
    finally:
        os.close(fd)
    reply = client.decode_reply(outcome)
    assert reply["sandbox"] == {"job": "on (fake job)"}
    assert reply["request"] == {"fd": fd, "handle": 1000 + fd, "job": "on (fake job)"}
    assert len(jobs) == 1 and jobs[0][0] > 0


def test_macos_rlimits_leave_out_memory_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    applied: dict[int, tuple[int, int]] = {}
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: applied.update({which: limits}))
    status = sandbox.harden(sandbox.Plan({0, 1, 2, 3}, layers=("rlimits",)))
    assert resource.RLIMIT_AS not in applied
    assert applied[resource.RLIMIT_FSIZE] == (0, 0) and applied[resource.RLIMIT_NPROC] == (0, 0)
    assert applied[resource.RLIMIT_CPU] == (sandbox.CPU_SECONDS, sandbox.CPU_SECONDS + 1)
    assert status["rlimits"].startswith("on (FSIZE 0, CORE 0, NOFILE 4, CPU 10, NPROC 0; weaker: no memory limit")


@pytest.mark.parametrize(
    ("platform", "why"),
    [("win32", "the fork server needs POSIX fork"), ("darwin", "the fork server needs Linux")],
)
def test_triage_falls_back_to_fresh_processes_without_a_fork_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: str, why: str
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    notes: list[str] = []

    async def pool() -> client.ForkServerRunner | None:
        async with triage.engine_pool([], notes.append) as zygote:
            return zygote

    assert asyncio.run(pool()) is None
    assert len(notes) == 1 and why in notes[0] and notes[0].endswith("starting a fresh process per image")
