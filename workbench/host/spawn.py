"""How every engine child is started and ended: cheap to import (no ``subprocess``, ``typing`` or ``contextlib``
at run time), so ``workbench inspect FILE`` can start its child before it imports the protocol, the validator and
the policy. The ``asyncio`` runners start theirs with :func:`spawn_options`; the single-image path with
:func:`spawn` (``os.posix_spawn``), which gives the same guarantees without importing ``subprocess``."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stub) the signal numbers without ``signal``'s enums
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CREATE_NEW_PROCESS_GROUP = 0x00000200  # Windows process creation flags
CREATE_NO_WINDOW = 0x08000000
MAX_FD_SCAN = 4096  # descriptors checked when the open ones cannot be listed
# Reset to their default action in the child, whatever the parent's are: the two ``subprocess`` restores, and the
# CPU limit's signal (an ignored SIGXCPU would leave the child running past its CPU time until the hard limit).
DEFAULT_SIGNALS = tuple(getattr(_signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGXCPU") if hasattr(_signal, name))


def engine_command(zygote: bool = False) -> list[str]:
    """How to start a child: the frozen executable's engine mode, or an isolated interpreter. Either changes
    to ``/`` first (:func:`spawn` cannot set the working directory; ``subprocess`` already did)."""
    extra = ["--zygote"] if zygote else []
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-worker", *extra]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    code = (
        f"import os, sys; os.chdir('/'); sys.path.insert(0, {root!r}); "
        "from workbench.engine.child.worker import main; main()"
    )
    return [sys.executable, "-I", "-S", "-c", code, *extra]


def spawn_options(fds: tuple[int, ...]) -> dict[str, Any]:
    """How every engine process is started by ``subprocess`` or ``asyncio``: no preexec_fn, no env, only
    ``fds`` inherited. POSIX: ``pass_fds`` and a new session. Windows: the descriptors' handles, made
    inheritable, in a handle list (nothing else is inherited), a new process group and no console window;
    the environment keeps ``SYSTEMROOT``, without which Windows libraries may fail to load."""
    import subprocess

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
    """Kill a child (an ``asyncio``, a ``subprocess`` or a :class:`Process`) and whatever it started: its process
    group on POSIX; on Windows the child alone (its job object allows it no other process)."""
    if proc.returncode is not None:
        return
    try:
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, 9)  # SIGKILL (``signal`` would import ``enum``)
    except (ProcessLookupError, PermissionError):
        pass


class Process:
    """A child started by :func:`spawn`, as much of ``subprocess.Popen`` as the single-image path uses: its
    ``pid``, the parent's ends of its pipes (descriptors) and its ``returncode`` once reaped (negative: the
    signal that ended it)."""

    __slots__ = ("pid", "stdin", "stdout", "stderr", "returncode")

    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.stdin: int | None = stdin
        self.stdout: int | None = stdout
        self.stderr: int | None = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """Reap the child if it has ended; its ``returncode``."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: as ``subprocess`` does, status unknown
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> int | None:
        """The ``returncode`` once the child has ended, within ``timeout`` seconds; None if it has not. (Polls,
        as ``subprocess.Popen.wait`` does with a timeout.)"""
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
        return self.returncode

    def close_stdin(self) -> None:
        if self.stdin is not None:
            os.close(self.stdin)
            self.stdin = None

    def close(self) -> None:
        """Close the parent's ends of the pipes; idempotent."""
        self.close_stdin()
        for fd in (self.stdout, self.stderr):
            if fd is not None:
                os.close(fd)
        self.stdout = self.stderr = None


def above_stdio(fd: int) -> int:
    """``fd``, or a close-on-exec duplicate of it numbered 3 or more (``fd`` closed): a child's 0, 1 and 2 are its
    pipes, so nothing it inherits may be numbered so (the parent's own 0, 1 or 2 were closed)."""
    if fd > 2:
        return fd
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def _open_fds() -> list[int]:
    """The descriptors open in this process (a listing's own descriptor may be among them, closed since)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return [int(name) for name in os.listdir(folder)]
        except OSError:
            continue
    return list(range(3, MAX_FD_SCAN))


def _inherited(keep: tuple[int, ...]) -> list[int]:
    """The descriptors a child would inherit besides 0, 1, 2 and ``keep``: those without close-on-exec (made
    so by whoever started this process, or by a library)."""
    out = []
    for fd in _open_fds():
        if fd > 2 and fd not in keep:
            try:
                if os.get_inheritable(fd):
                    out.append(fd)
            except OSError:  # not open
                continue
    return out


def spawn(command: list[str], fds: tuple[int, ...]) -> Process:
    """Start ``command`` as :func:`spawn_options` has ``subprocess`` start it, on POSIX, with ``os.posix_spawn``:
    pipes for its stdin, stdout and stderr; no environment; a new session; ``fds`` (numbered 3 or more, see
    :func:`above_stdio`) inherited under their numbers and no other descriptor (each other inheritable one is
    closed in the child). The working directory is the command's to change (:func:`engine_command`). The child
    starts with no signal blocked and :data:`DEFAULT_SIGNALS` at their default action."""
    if min(fds, default=3) < 3:
        raise ValueError(f"descriptors to pass must be numbered 3 or more: {fds}")
    opened: list[int] = []
    try:
        for _ in range(3):
            opened.extend(above_stdio(fd) for fd in os.pipe())
        child_in, parent_in, parent_out, child_out, parent_err, child_err = opened
        actions: list[tuple[int, ...]] = [
            (os.POSIX_SPAWN_DUP2, child_in, 0),
            (os.POSIX_SPAWN_DUP2, child_out, 1),
            (os.POSIX_SPAWN_DUP2, child_err, 2),
        ]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited(fds)]
        were = [os.get_inheritable(fd) for fd in fds]
        for fd in fds:
            os.set_inheritable(fd, True)  # for this spawn only
        try:
            pid = os.posix_spawn(
                command[0],
                command,
                {},
                file_actions=actions,
                setsid=True,
                setsigdef=DEFAULT_SIGNALS,
                setsigmask=(),
            )
        finally:
            for fd, was in zip(fds, were, strict=True):
                os.set_inheritable(fd, was)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    for fd in (child_in, child_out, child_err):
        os.close(fd)
    return Process(pid, parent_in, parent_out, parent_err)
