"""One local image through one fresh sandboxed child, without an event loop: what ``workbench inspect FILE``
runs for a single file (importing ``asyncio`` costs that command more CPU than the engine child's whole parse).

The same protocol as :func:`workbench.host.runner.inspect_path` (:mod:`workbench.host.protocol`): the same
open, spawn options, request, stdout splitting and caps, decoding, required-layer check and ``image-changed``
check; only the waiting differs (a selector with a deadline instead of tasks). POSIX only (it selects on
pipes); not for a remote image (the child's reads need the async range server) or a deep one (progress).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from typing import Any

from .open import InspectError, Walked, close_opened, off_thread, open_image
from .protocol import (
    STDERR_CAP,
    ChildOutcome,
    EngineOptions,
    StdoutLines,
    checked_reply,
    checked_report,
    engine_command,
    engine_request,
    kill_group,
    request_line,
    show_progress,
    spawn_options,
)

REAP_TIMEOUT = 5.0


def available(options: EngineOptions) -> bool:
    """Whether this path can run ``options``: POSIX pipes, no byte ranges to answer, no progress to show."""
    return sys.platform != "win32" and options.ranges is None and not options.deep


def _timed_out(options: EngineOptions) -> InspectError:
    return InspectError(f"engine timed out after {options.timeout:g} s and was killed")


def _collect(proc: subprocess.Popen[bytes], options: EngineOptions) -> ChildOutcome:
    """Read stdout and stderr with their caps until both close, then wait for the exit, all within the timeout."""
    assert proc.stdout and proc.stderr
    deadline = time.monotonic() + options.timeout
    lines = StdoutLines(options.reply_cap)
    err = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        selector.register(proc.stderr, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timed_out(options)
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is proc.stderr:
                    err += chunk
                    if len(err) > STDERR_CAP:
                        raise InspectError(f"engine error output larger than {STDERR_CAP} bytes: refused")
                else:
                    for kind, value in lines.feed(chunk):
                        if kind != "progress":  # nothing here answers byte ranges
                            raise InspectError("engine asked for a byte range of an image that is not remote")
                        show_progress(value, options)
    try:
        code = proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise _timed_out(options) from None
    return ChildOutcome(code, lines.kept(), bytes(err))


def run_fresh(request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
    """Start one fresh child for ``request`` with ``fds`` inherited, and collect what it leaves."""
    try:
        proc = subprocess.Popen(engine_command(), **spawn_options(fds))
    except OSError as exc:
        raise InspectError(f"could not start the engine: {exc.strerror or exc}") from None
    assert proc.stdin
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(request_line(request))
            proc.stdin.close()
        return _collect(proc, options)
    finally:
        kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(REAP_TIMEOUT)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def inspect_path(
    path: str, declared: str | None, options: EngineOptions, follow_symlinks: bool = False, walked: Walked | None = None
) -> dict[str, Any]:
    """:func:`workbench.host.runner.inspect_path` for one local image, without an event loop: the reply's
    ``report``, unvalidated, with an ``image-changed`` finding when the file moved meanwhile."""
    fd, before = off_thread(
        lambda: open_image(path, follow_symlinks, walked), options.timeout, "opening the file", close_opened
    )
    try:
        request = {"fd": fd, **engine_request(path, declared, options)}
        reply = checked_reply(run_fresh(request, (fd,), options), options)
        after = off_thread(lambda: os.fstat(fd), options.timeout, "checking the file after the inspection")
    finally:
        os.close(fd)
    return checked_report(reply, before, after)
