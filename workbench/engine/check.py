"""The sandbox self-test behind ``workbench sandbox-check`` (and any status view): start children the way
an inspection does, have them try each forbidden thing, and say which layers are on and what stopped what.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import uuid
from typing import Any

from . import sandbox
from .client import ChildOutcome, EngineOptions, InspectError, decode_reply, exit_reason, run_child

IN_PROCESS = ("open", "connect", "write", "fork", "memory")
CPU_PROBE_SECONDS = 1  # the CPU probe's own limit, so that the check takes about a second
PROBE_TIMEOUT = 15.0


async def probe(
    names: list[str],
    args: dict[str, Any],
    options: EngineOptions,
    layers: list[str] | None = None,
    cpu_seconds: int | None = None,
) -> tuple[ChildOutcome, dict[str, Any] | None]:
    """Run probes in one child (with ``/dev/null`` as its image); the outcome and the reply if any."""
    fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    request: dict[str, Any] = {"fd": fd, "path": "(sandbox probe)", "probe": names, "probe_args": args}
    if layers is not None:
        request["layers"] = layers
    if cpu_seconds is not None:
        request["cpu_seconds"] = cpu_seconds
    try:
        outcome = await run_child(request, (fd,), options)
    finally:
        os.close(fd)
    try:
        reply = decode_reply(outcome)
    except InspectError:
        reply = None
    return outcome, reply


def _judged_by_exit(name: str, outcome: ChildOutcome, reply: dict[str, Any] | None) -> dict[str, Any]:
    """A probe that ends its process when it is stopped: the exit says what happened."""
    if reply and isinstance(reply.get("probes"), dict) and name in reply["probes"]:
        return reply["probes"][name]
    code = outcome.returncode or 0
    if code < 0:
        return {"blocked": True, "detail": exit_reason(code, outcome.err).removeprefix("engine ")}
    return {"blocked": False, "detail": f"the child went on and exited with status {code}"}


async def check(required: list[str], options: EngineOptions | None = None) -> dict[str, Any]:
    """Layers and probe outcomes of this machine's engine children, and whether ``required`` is met."""
    options = options or EngineOptions(timeout=PROBE_TIMEOUT)
    write_path = os.path.join(tempfile.gettempdir(), f"workbench-probe-{uuid.uuid4().hex}")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        args = {"read_path": "/etc/passwd", "write_path": write_path, "port": listener.getsockname()[1]}
        try:
            (main, reply), (execd, exec_reply), (spun, spin_reply) = await asyncio.gather(
                probe(list(IN_PROCESS), args, options),
                probe(["exec"], args, options),
                probe(["cpu"], args, options, cpu_seconds=CPU_PROBE_SECONDS),
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(write_path)
    if reply is None:
        raise InspectError(f"the probe child gave no reply: {exit_reason(main.returncode or 0, main.err)}")
    outcomes = dict(reply.get("probes") or {})
    outcomes["exec"] = _judged_by_exit("exec", execd, exec_reply)
    outcomes["cpu"] = _judged_by_exit("cpu", spun, spin_reply)
    layers = dict(reply.get("sandbox") or {})
    missing = sandbox.missing_required(layers, required)
    escaped = [name for name, outcome in outcomes.items() if not outcome.get("blocked")]
    return {
        "layers": layers,
        "required": required,
        "missing": missing,
        "probes": outcomes,
        "escaped": escaped,
        "ok": not missing and not escaped,
    }
