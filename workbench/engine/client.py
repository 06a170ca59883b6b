"""Parent side of the engine: open the image, start one child for it, and collect a bounded reply.

The parent never parses image bytes: it opens the file read-only, checks what kind of file it is, and
hands the descriptor to a fresh child. The reply is untrusted; :mod:`workbench.models.report` validates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPLY_CAP = 16 << 20
STDERR_CAP = 64 << 10
_KINDS = {
    stat.S_ISDIR: "a directory",
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
}


class InspectError(Exception):
    """The image could not be inspected; the message is one line for the user."""

    def __init__(self, message: str, sandbox: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.sandbox = sandbox


@dataclass
class EngineOptions:
    timeout: float = 20.0
    reply_cap: int = REPLY_CAP
    require_layers: list[str] = field(default_factory=list)


def open_image(path: str, follow_symlinks: bool = False) -> int:
    """Open ``path`` read-only for the engine, refusing anything but a regular file or block device."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InspectError("no such file") from None
    except PermissionError:
        raise InspectError("permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            target = os.readlink(path)
            raise InspectError(f"is a symbolic link to {target!r}: refused (use --follow-symlinks)") from None
        if exc.errno == errno.ENXIO:
            raise InspectError("is a socket or a device without a reader: refused") from None
        raise InspectError(f"cannot open: {exc.strerror}") from None
    st = os.fstat(fd)
    for test, what in _KINDS.items():
        if test(st.st_mode):
            os.close(fd)
            raise InspectError(f"is {what}, not an image file")
    os.set_blocking(fd, True)
    return fd


def engine_command() -> list[str]:
    """How to start a child: the frozen executable's engine mode, or an isolated interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-worker"]
    root = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {root!r}); from workbench.engine.worker import main; main()"
    return [sys.executable, "-I", "-S", "-c", code]


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    data = bytearray()
    while chunk := await stream.read(65536):
        data += chunk
        if len(data) > cap:
            raise InspectError(f"engine reply larger than {cap} bytes: refused")
    return bytes(data)


def _exit_reason(returncode: int, stderr: bytes) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"engine crashed ({name})"
    last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return f"engine exited with status {returncode} {last[0][:200]}".rstrip()


async def run_engine(fd: int, path: str, declared: str | None, options: EngineOptions) -> dict[str, Any]:
    """Run one child on ``fd`` and return its decoded (still unvalidated) reply object."""
    request = {"fd": fd, "path": path, "declared_format": declared, "require_layers": options.require_layers}
    proc = await asyncio.create_subprocess_exec(
        *engine_command(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        pass_fds=(fd,),
        env={},
        cwd="/",
        start_new_session=True,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        proc.stdin.write(json.dumps(request).encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.drain()
        proc.stdin.close()
        out, err = await asyncio.wait_for(
            asyncio.gather(_read_capped(proc.stdout, options.reply_cap), _read_capped(proc.stderr, STDERR_CAP)),
            options.timeout,
        )
        await asyncio.wait_for(proc.wait(), options.timeout)
    except TimeoutError:
        raise InspectError(f"engine timed out after {options.timeout:g} s and was killed") from None
    finally:
        _kill(proc)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
    if proc.returncode and not out:
        raise InspectError(_exit_reason(proc.returncode, err))
    try:
        reply = json.loads(out)
    except ValueError:
        raise InspectError(f"engine reply is not valid JSON ({_exit_reason(proc.returncode or 0, err)})") from None
    if not isinstance(reply, dict):
        raise InspectError("engine reply is not a JSON object")
    return reply


async def inspect_path(
    path: str, declared: str | None, options: EngineOptions, follow_symlinks: bool = False
) -> dict[str, Any]:
    """Open ``path`` and run the engine on it; the reply's ``report`` is returned unvalidated."""
    fd = open_image(path, follow_symlinks)
    try:
        reply = await run_engine(fd, path, declared, options)
    finally:
        os.close(fd)
    if reply.get("ok") is not True:
        sandbox = reply.get("sandbox") if isinstance(reply.get("sandbox"), dict) else None
        raise InspectError(str(reply.get("error", "engine failed without a message"))[:500], sandbox)
    report = reply.get("report")
    if not isinstance(report, dict):
        raise InspectError("engine reply carries no report")
    return report
