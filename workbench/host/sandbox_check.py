"""The sandbox self-test behind ``workbench sandbox-check`` (and any status view): start children the way
an inspection does, fresh and forked by the fork server, have them try each forbidden thing, and say which
layers are on and what stopped what.

The parent sets up a target for every attempt (a TCP listener, a bound UDP port, Unix sockets at a path and
in the abstract namespace, itself as the process to signal), so an attempt that is not stopped succeeds.
Each attempt is bounded well inside :data:`CHECK_TIMEOUT`: connects time out after 2 s, the CPU spin stops by
itself after 5 s, and its CPU limit is 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from ..engine.child import sandbox
from .runner import (
    FRESH,
    ChildOutcome,
    EngineOptions,
    ForkServerRunner,
    InspectError,
    Runner,
    decode_reply,
    exit_reason,
)

IN_PROCESS = ("open", "stat", "connect", "udp", "unix", "abstract", "signal", "write", "fork", "memory")
CPU_ATTEMPT_SECONDS = 1  # the CPU attempt's own limit, so that the check takes about a second
CHECK_TIMEOUT = 15.0


async def attempt(
    names: list[str],
    args: dict[str, Any],
    options: EngineOptions,
    layers: list[str] | None = None,
    cpu_seconds: int | None = None,
    *,
    runner: Runner = FRESH,
) -> tuple[ChildOutcome, dict[str, Any] | None]:
    """Make the attempts ``names`` in one child (with ``/dev/null`` as its image); the outcome and the reply if any."""
    fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    request: dict[str, Any] = {"fd": fd, "path": "(sandbox check)", "escapes": names, "escape_args": args}
    if layers is not None:
        request["layers"] = layers
    if cpu_seconds is not None:
        request["cpu_seconds"] = cpu_seconds
    try:
        outcome = await runner.run(request, (fd,), options)
    finally:
        os.close(fd)
    try:
        reply = decode_reply(outcome)
    except InspectError:
        reply = None
    return outcome, reply


def _judged_by_exit(name: str, outcome: ChildOutcome, reply: dict[str, Any] | None) -> dict[str, Any]:
    """An attempt that ends its process when it is stopped: the exit says what happened."""
    if reply and isinstance(reply.get("escapes"), dict) and name in reply["escapes"]:
        return reply["escapes"][name]
    code = outcome.returncode or 0
    if code < 0:
        return {"blocked": True, "detail": exit_reason(code, outcome.err).removeprefix("engine ")}
    return {"blocked": False, "detail": f"the child went on and exited with status {code}"}


@contextlib.contextmanager
def targets() -> Iterator[dict[str, Any]]:
    """Listening sockets of every kind and a path to create, as the attempts' arguments; all gone afterwards."""
    folder = tempfile.mkdtemp(prefix="workbench-escape-")
    unix_path = os.path.join(folder, "listen.sock")
    abstract = f"workbench-escape-{uuid.uuid4().hex}"
    with contextlib.ExitStack() as stack:
        tcp = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
        udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        unix = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        unix.bind(unix_path)
        unix.listen()
        named = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        named.bind("\0" + abstract)
        named.listen()
        try:
            yield {
                "read_path": "/etc/passwd",
                "write_path": os.path.join(folder, "created"),
                "port": tcp.getsockname()[1],
                "udp_port": udp.getsockname()[1],
                "unix_path": unix_path,
                "abstract_name": abstract,
                "signal_pid": os.getpid(),
            }
        finally:
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)


async def _attempt_in_children(
    args: dict[str, Any], options: EngineOptions, required: list[str], runner: Runner = FRESH
) -> dict[str, Any]:
    """Every attempt in children made by ``runner``: their layers, what is missing and what got through."""
    (main, reply), (execd, exec_reply), (spun, spin_reply) = await asyncio.gather(
        attempt(list(IN_PROCESS), args, options, runner=runner),
        attempt(["exec"], args, options, runner=runner),
        attempt(["cpu"], args, options, cpu_seconds=CPU_ATTEMPT_SECONDS, runner=runner),
    )
    if reply is None:
        raise InspectError(f"the sandbox-check child gave no reply: {exit_reason(main.returncode or 0, main.err)}")
    outcomes = dict(reply.get("escapes") or {})
    outcomes["exec"] = _judged_by_exit("exec", execd, exec_reply)
    outcomes["cpu"] = _judged_by_exit("cpu", spun, spin_reply)
    layers = dict(reply.get("sandbox") or {})
    return {
        "layers": layers,
        "missing": sandbox.missing_required(layers, required),
        "probes": outcomes,  # the key of the JSON output (``sandbox-check --json``), kept
        "escaped": [name for name, outcome in outcomes.items() if not outcome.get("blocked")],
    }


async def _attempt_in_forked(args: dict[str, Any], options: EngineOptions, required: list[str]) -> dict[str, Any]:
    """The same attempts in children forked by a fork server (started without requirements, to see them all)."""
    try:
        async with ForkServerRunner() as zygote:
            return {"server": zygote.sandbox, **await _attempt_in_children(args, options, required, zygote)}
    except InspectError as exc:
        return {"error": str(exc)}


async def check(required: list[str], options: EngineOptions | None = None) -> dict[str, Any]:
    """Layers and attempt outcomes of this machine's engine children, fresh and forked, and whether ``required``
    is met. On Linux the fork server must start too (batch triage uses it); elsewhere there is none."""
    options = options or EngineOptions(timeout=CHECK_TIMEOUT)
    with targets() as args:
        fresh = await _attempt_in_children(args, options, required)
        forked = await _attempt_in_forked(args, options, required) if sys.platform.startswith("linux") else None
    escaped = list(fresh["escaped"])
    missing = list(fresh["missing"])
    if forked is not None:
        escaped += [f"{name} (forked)" for name in forked.get("escaped", [])]
        missing += [f"{need} (forked)" for need in forked.get("missing", [])]
    return {
        **fresh,
        "required": required,
        "missing": missing,
        "escaped": escaped,
        "zygote": forked,
        "ok": not missing and not escaped and not (forked or {}).get("error"),
    }
