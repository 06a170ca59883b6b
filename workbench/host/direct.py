"""One local image through one fresh sandboxed child, without an event loop: what ``workbench inspect FILE``
runs for a single file (importing ``asyncio`` costs that command more CPU than the engine child's whole parse).

The same protocol as :func:`workbench.host.runner.inspect_path` (:mod:`workbench.host.protocol`): the same
open, spawn options, request, stdout splitting and caps, decoding, required-layer check and ``image-changed``
check; only the waiting differs (a selector with a deadline instead of tasks). POSIX only (it selects on
pipes); not for a remote image (the child's reads need the async range server) or a deep one (progress).

The child is started (:class:`Child`) as soon as the image is open, before its request is known: it reads
the request only after its own imports, so the parent loads the settings and imports the protocol, the
validator and the policy while the child starts. This module imports only what the start needs.
"""

from __future__ import annotations

import os
import sys
import time

from .open import InspectError, close_opened, off_thread, open_image
from .spawn import Process, above_stdio, engine_command, kill_group, spawn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .protocol import ChildOutcome, EngineOptions
    from .walked import Walked

REAP_TIMEOUT = 5.0


def available(deep: bool) -> bool:
    """Whether this path can run an inspection: POSIX pipes, no progress to show (``deep``). (No byte ranges
    to answer either: the caller keeps remote images off it.)"""
    return sys.platform != "win32" and not deep


def _timed_out(options: EngineOptions) -> InspectError:
    return InspectError(f"engine timed out after {options.timeout:g} s and was killed")


def _collect(proc: Process, options: EngineOptions) -> ChildOutcome:
    """Read stdout and stderr with their caps until both close, then wait for the exit, all within the timeout."""
    import selectors

    from .protocol import STDERR_CAP, ChildOutcome, StdoutLines, local_message, too_large

    assert proc.stdout is not None and proc.stderr is not None
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
                    selector.unregister(key.fd)
                elif key.fd == proc.stderr:
                    err += chunk
                    if len(err) > STDERR_CAP:
                        raise too_large("error output", STDERR_CAP)
                else:
                    for kind, value in lines.feed(chunk):
                        local_message(kind, value, options)  # nothing here answers byte ranges
    code = proc.wait(max(0.0, deadline - time.monotonic()))
    if code is None:
        raise _timed_out(options)
    return ChildOutcome(code, lines.kept(), bytes(err))


def _spawn(fds: tuple[int, ...]) -> Process:
    try:
        return spawn(engine_command(), fds)
    except OSError as exc:
        raise InspectError(f"could not start the engine: {exc.strerror or exc}") from None


def _end(proc: Process) -> None:
    """Kill the child's process group, reap it and close its pipes."""
    kill_group(proc)
    proc.wait(REAP_TIMEOUT)
    proc.close()


def _send(proc: Process, line: bytes) -> None:
    """Write the request and close the child's stdin; a child that is gone already is seen by its reply."""
    assert proc.stdin is not None
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(proc.stdin, view) :]
    except (BrokenPipeError, ConnectionResetError):
        pass
    proc.close_stdin()


class Child:
    """A fresh engine child started for one local image before its request is known: the image is opened by
    :func:`~workbench.host.open.open_image` (within ``timeout``), the child spawned with its descriptor and left
    waiting for its request; :meth:`inspect` sends it. An open or spawn that failed is raised by
    :meth:`inspect`, so the caller reports it as it reports any other failure. Always ended by :meth:`inspect`
    or :meth:`close`."""

    def __init__(self, path: str, follow_symlinks: bool, walked: Walked | None, timeout: float) -> None:
        self.path = path
        self._fd: int | None = None
        self._proc: Process | None = None
        self._error: InspectError | None = None
        try:
            fd, self._before = off_thread(
                lambda: open_image(path, follow_symlinks, walked), timeout, "opening the file", close_opened
            )
            self._fd = above_stdio(fd)
            self._proc = _spawn((self._fd,))
        except InspectError as exc:
            self._error = exc

    def inspect(
        self, declared: str | None, options: EngineOptions, meanwhile: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """The reply's ``report``, unvalidated, with an ``image-changed`` finding when the file moved meanwhile;
        InspectError otherwise. ``meanwhile`` runs once the request is sent (the child is then busy: say,
        imports the reply's checks need). Ends the child and closes the image."""
        from .protocol import checked_reply, checked_report, engine_request, request_line

        try:
            if self._error is not None:
                raise self._error
            assert self._proc is not None and self._fd is not None
            fd = self._fd
            _send(self._proc, request_line({"fd": fd, **engine_request(self.path, declared, options)}))
            if meanwhile is not None:
                meanwhile()
            try:  # the timeout counts from the request: a child waiting for it reads nothing of the image
                reply = checked_reply(_collect(self._proc, options), options)
            finally:
                _end(self._proc)
            after = off_thread(lambda: os.fstat(fd), options.timeout, "checking the file after the inspection")
        finally:
            self.close()
        return checked_report(reply, self._before, after)

    def close(self) -> None:
        """End the child, if any, and close the image; idempotent."""
        if self._proc is not None:
            _end(self._proc)
            self._proc = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def inspect_path(
    path: str, declared: str | None, options: EngineOptions, follow_symlinks: bool = False, walked: Walked | None = None
) -> dict[str, Any]:
    """:func:`workbench.host.runner.inspect_path` for one local image, without an event loop: the reply's
    ``report``, unvalidated, with an ``image-changed`` finding when the file moved meanwhile."""
    return Child(path, follow_symlinks, walked, options.timeout).inspect(declared, options)
