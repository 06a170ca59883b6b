"""How every engine child is started and ended, for ``subprocess`` and ``asyncio`` alike: cheap to import, so
``workbench inspect FILE`` can start its child before it imports the protocol, the validator and the policy."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

CREATE_NEW_PROCESS_GROUP = 0x00000200  # Windows process creation flags
CREATE_NO_WINDOW = 0x08000000


def engine_command(zygote: bool = False) -> list[str]:
    """How to start a child: the frozen executable's engine mode, or an isolated interpreter."""
    extra = ["--zygote"] if zygote else []
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-worker", *extra]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    code = f"import sys; sys.path.insert(0, {root!r}); from workbench.engine.child.worker import main; main()"
    return [sys.executable, "-I", "-S", "-c", code, *extra]


def spawn_options(fds: tuple[int, ...]) -> dict[str, Any]:
    """How every engine process is started (for subprocess and asyncio alike): no preexec_fn, no env, only
    ``fds`` inherited. POSIX: ``pass_fds`` and a new session. Windows: the descriptors' handles, made
    inheritable, in a handle list (nothing else is inherited), a new process group and no console window;
    the environment keeps ``SYSTEMROOT``, without which Windows libraries may fail to load."""
    options: dict[str, Any] = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "env": {},
        "cwd": "/",
    }
    if sys.platform != "win32":
        return options | {"pass_fds": fds, "start_new_session": True}
    import msvcrt

    handles = [msvcrt.get_osfhandle(fd) for fd in fds]
    for handle in handles:
        os.set_handle_inheritable(handle, True)  # CreateProcess passes a listed handle only if it is inheritable
    return options | {
        "env": {"SYSTEMROOT": os.environ["SYSTEMROOT"]} if "SYSTEMROOT" in os.environ else {},
        "close_fds": True,
        "startupinfo": subprocess.STARTUPINFO(lpAttributeList={"handle_list": handles}),
        "creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW,
    }


def kill_group(proc: Any) -> None:
    """Kill a child (an ``asyncio`` or a ``subprocess`` process) and whatever it started: its process group
    on POSIX; on Windows the child alone (its job object allows it no other process)."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
