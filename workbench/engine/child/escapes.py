"""Forbidden things a hardened child tries on purpose, for ``workbench sandbox-check`` and the tests.

Each attempt runs after :func:`workbench.engine.child.sandbox.harden`, in the same process an inspection would
use, and says whether the sandbox stopped it and how (the errno, or the exception). Attempts that end
the process when they are stopped (exec under seccomp, the CPU spin) are judged by the parent.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable
from typing import Any

Outcome = dict[str, Any]
SPIN_SECONDS = 5.0  # CPU seconds the CPU attempt burns when nothing stops it
SPIN_WALL_SECONDS = 12.0  # and its wall-clock bound on a busy machine (the check waits 15 s)
CONNECT_TIMEOUT = 2.0
ALLOCATION = 2 << 30


def _blocked(exc: BaseException) -> Outcome:
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return {"blocked": True, "detail": f"{name}: {os.strerror(exc.errno)}"}
    return {"blocked": True, "detail": f"{type(exc).__name__}: {exc}".rstrip(": ")[:200]}


def _allowed(detail: str) -> Outcome:
    return {"blocked": False, "detail": detail}


def attempt_open(args: dict[str, Any]) -> Outcome:
    path = str(args.get("read_path", "/etc/passwd"))
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        return _blocked(exc)
    os.close(fd)
    return _allowed(f"opened {path}")


def _connect(family: int, address: Any, shown: str) -> Outcome:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(address)
    except OSError as exc:
        return _blocked(exc)
    return _allowed(f"connected to {shown}")


def attempt_connect(args: dict[str, Any]) -> Outcome:
    """TCP to a port the parent listens on."""
    port = int(args.get("port", 9))
    return _connect(socket.AF_INET, ("127.0.0.1", port), f"127.0.0.1:{port} (TCP)")


def attempt_udp(args: dict[str, Any]) -> Outcome:
    """A datagram to a UDP port the parent has bound."""
    port = int(args.get("udp_port", 9))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"escape", ("127.0.0.1", port))
    except OSError as exc:
        return _blocked(exc)
    return _allowed(f"sent a datagram to 127.0.0.1:{port} (UDP)")


def attempt_unix(args: dict[str, Any]) -> Outcome:
    """A Unix socket the parent listens on at a path."""
    path = str(args.get("unix_path", "/run/workbench-escape.sock"))
    return _connect(socket.AF_UNIX, path, path)


def attempt_abstract(args: dict[str, Any]) -> Outcome:
    """A Unix socket the parent listens on in the abstract namespace (no file: only a name)."""
    name = str(args.get("abstract_name", "workbench-escape"))
    return _connect(socket.AF_UNIX, "\0" + name, f"@{name}")


def attempt_signal(args: dict[str, Any]) -> Outcome:
    """Signal 0 to another process (the parent): the kernel checks the right to signal, delivers nothing."""
    pid = int(args.get("signal_pid", 1))
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return _blocked(exc)
    return _allowed(f"may signal process {pid}")


def attempt_stat(args: dict[str, Any]) -> Outcome:
    path = str(args.get("read_path", "/etc/passwd"))
    try:
        os.stat(path)
    except OSError as exc:
        return _blocked(exc)
    return _allowed(f"stat {path}")


def attempt_write(args: dict[str, Any]) -> Outcome:
    path = str(args.get("write_path", "/tmp/workbench-sandbox-escape"))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return _blocked(exc)
    try:
        os.write(fd, b"x")
    except OSError as exc:
        return _blocked(exc)
    finally:
        os.close(fd)
    return _allowed(f"wrote {path}")


def attempt_fork(args: dict[str, Any]) -> Outcome:
    try:
        pid = os.fork()
    except OSError as exc:
        return _blocked(exc)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return _allowed("forked a child")


def attempt_exec(args: dict[str, Any]) -> Outcome:
    """On success the process becomes ``/bin/true`` and replies nothing: the parent sees that."""
    try:
        os.execv("/bin/true", ["true"])
    except OSError as exc:
        return _blocked(exc)
    raise AssertionError("unreachable")


def attempt_memory(args: dict[str, Any]) -> Outcome:
    try:
        block = bytearray(ALLOCATION)
    except MemoryError as exc:
        return _blocked(exc)
    del block
    return _allowed(f"allocated {ALLOCATION >> 30} GiB")


def attempt_cpu(args: dict[str, Any]) -> Outcome:
    """Spin; a CPU limit ends the process by a signal long before either bound.

    The bound is CPU time, not wall time: on a loaded machine one CPU second can take several seconds."""
    cpu_end = time.process_time() + float(args.get("spin_seconds", SPIN_SECONDS))
    wall_end = time.monotonic() + SPIN_WALL_SECONDS
    while time.process_time() < cpu_end and time.monotonic() < wall_end:
        pass
    return _allowed("spun without being stopped")


def attempt_fds(args: dict[str, Any]) -> Outcome:
    """The descriptors open now (fstat succeeds), for the test of the descriptor table."""
    found = []
    for fd in range(int(args.get("fd_scan", 1024))):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    return {"blocked": True, "detail": "open descriptors", "fds": found}


def attempt_hold(args: dict[str, Any]) -> Outcome:
    """Say ready, then wait until the parent closes the write end of the pipe given as the image."""
    os.write(1, b"ready\n")
    while os.read(int(args["image_fd"]), 1):
        pass
    return _allowed("held")


PROBES: dict[str, Callable[[dict[str, Any]], Outcome]] = {
    "open": attempt_open,
    "connect": attempt_connect,
    "udp": attempt_udp,
    "unix": attempt_unix,
    "abstract": attempt_abstract,
    "signal": attempt_signal,
    "stat": attempt_stat,
    "write": attempt_write,
    "fork": attempt_fork,
    "exec": attempt_exec,
    "memory": attempt_memory,
    "cpu": attempt_cpu,
    "fds": attempt_fds,
    "hold": attempt_hold,
}


def run(names: list[str], args: dict[str, Any]) -> dict[str, Outcome]:
    return {name: PROBES[name](args) for name in names if name in PROBES}
