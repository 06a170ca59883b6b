"""Parent side of the engine: open the image, hand it to a sandboxed child, and collect a bounded reply.

The parent never parses image bytes: it opens the file read-only, checks what kind of file it is, and
hands the descriptor to a child through a :class:`Runner`: a fresh process per image
(:class:`FreshProcessRunner`), a child forked by a fork server (:class:`ForkServerRunner`), or, in tests, the
engine in this process (:class:`InProcessRunner`). The runner travels beside the request, never inside it.
Either way the reply is untrusted: it is capped, decoded here with every failure
turned into a one-line :class:`InspectError`, and validated by :mod:`workbench.host.validate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from ..engine.child import frames, sandbox
from ..records import replace
from ..schema import REPLY_CAP
from . import mounts
from .open import InspectError, close_opened, off_loop, open_image
from .protocol import (
    STDERR_CAP,
    ChildOutcome,
    EngineOptions,
    StdoutLines,
    changes,
    checked_reply,
    checked_report,
    confine_on_windows,
    decode_reply,
    engine_command,
    engine_request,
    exit_reason,
    kill_group,
    local_message,
    progress_of,
    report_of,
    request_line,
    require_layers,
    spawn_options,
    too_large,
)
from .walked import Walked

T = TypeVar("T")

__all__ = [  # the protocol's pieces, where the runners' callers have always found them
    "ChildOutcome",
    "changes",
    "EngineOptions",
    "InspectError",
    "Walked",
    "decode_reply",
    "engine_command",
    "engine_request",
    "exit_reason",
    "progress_of",
    "report_of",
    "require_layers",
    "spawn_options",
]
HELLO_TIMEOUT = 20.0
REAP_TIMEOUT = 5.0
ZYGOTE_LOG_CAP = 8 << 10  # the fork server's stderr: the last bytes are kept for the error when it dies
ZYGOTE_LOG_LINES = 3
PIPE_READ = 65536  # bytes asked of a forked child's pipe per read (a pipe holds 64 KiB by default)


async def _read_capped(stream: asyncio.StreamReader, cap: int, what: str) -> bytes:
    data = bytearray()
    while chunk := await stream.read(65536):
        data += chunk
        if len(data) > cap:
            raise too_large(what, cap)
    return bytes(data)


async def _dispatch(kind: str, value: Any, options: EngineOptions, stdin: asyncio.StreamWriter | None) -> None:
    if kind == "progress" or options.ranges is None or stdin is None:
        local_message(kind, value, options)
        return
    stdin.write(await options.ranges.answer(value))
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the child died: its exit says how
        await stdin.drain()


async def _read_stdout(
    stream: asyncio.StreamReader, options: EngineOptions, stdin: asyncio.StreamWriter | None
) -> bytes:
    """The child's stdout (:class:`StdoutLines`), its messages dispatched as they come."""
    lines = StdoutLines(options.reply_cap)
    while chunk := await stream.read(65536):
        for message in lines.feed(chunk):
            await _dispatch(*message, options, stdin)
    return lines.kept()


async def _collect(
    stdout: asyncio.StreamReader,
    stderr: asyncio.StreamReader,
    finished: Callable[[], Awaitable[int | None]],
    kill: Callable[[], None],
    options: EngineOptions,
    stdin: asyncio.StreamWriter | None = None,
) -> ChildOutcome:
    """Read both streams with their caps (dispatching the child's messages) and wait for the exit, all within
    the timeout; kill on failure."""
    tasks = [
        asyncio.ensure_future(_read_stdout(stdout, options, stdin)),
        asyncio.ensure_future(_read_capped(stderr, STDERR_CAP, "error output")),
    ]

    async def both_read_and_exit() -> tuple[bytes, bytes, int | None]:
        out, err = await asyncio.gather(*tasks)
        return out, err, await finished()

    try:
        out, err, code = await _killed_unless_within(both_read_and_exit(), kill, options)
    finally:
        for task in tasks:
            task.cancel()
    return ChildOutcome(code, out, err)


def _timed_out(options: EngineOptions) -> InspectError:
    return InspectError(f"engine timed out after {options.timeout:g} s and was killed")


async def _killed_unless_within(work: Awaitable[T], kill: Callable[[], None], options: EngineOptions) -> T:
    """``work``'s result within the options' timeout; the child killed first if it runs out or misbehaves."""
    try:
        async with asyncio.timeout(options.timeout):
            return await work
    except TimeoutError:
        kill()
        raise _timed_out(options) from None
    except InspectError:
        kill()
        raise


async def _collect_pipes(
    out_fd: int, err_fd: int, finished: asyncio.Future[int | None], kill: Callable[[], None], options: EngineOptions
) -> ChildOutcome:
    """:func:`_collect` for a forked child of a local image, on the read ends of its stdout and stderr pipes:
    the event loop watches both descriptors and reads them as they become readable (no transports, streams or
    tasks per child), and the caller wakes once, when both are closed and ``finished`` is done. Both are closed
    here."""
    loop = asyncio.get_running_loop()
    lines = StdoutLines(options.reply_cap)
    err = bytearray()
    ready: asyncio.Future[None] = loop.create_future()
    watched = {out_fd, err_fd}

    def settle(_: object = None) -> None:
        if ready.done():
            return
        if finished.done() and finished.exception() is not None:
            ready.set_exception(finished.exception())  # type: ignore[arg-type]
        elif not watched and finished.done():
            ready.set_result(None)

    def readable(fd: int) -> None:
        """Read what the pipe holds: a full read is followed by another; a shorter one took all there was, and the
        loop calls again for what comes next, EOF included (no read is spent to hear that the pipe is empty)."""
        while fd in watched and not ready.done():
            try:
                chunk = os.read(fd, PIPE_READ)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            try:
                if not chunk:
                    loop.remove_reader(fd)
                    watched.discard(fd)
                    settle()
                elif fd == err_fd:
                    err.extend(chunk)
                    if len(err) > STDERR_CAP:
                        raise too_large("error output", STDERR_CAP)
                else:
                    for kind, value in lines.feed(chunk):
                        local_message(kind, value, options)
            except InspectError as exc:
                ready.set_exception(exc)
            if 0 < len(chunk) < PIPE_READ:
                return

    try:
        for fd in watched:
            os.set_blocking(fd, False)
            loop.add_reader(fd, readable, fd)
        finished.add_done_callback(settle)
        await _killed_unless_within(ready, kill, options)
    finally:
        finished.remove_done_callback(settle)
        for fd in watched:
            loop.remove_reader(fd)
        for fd in (out_fd, err_fd):
            os.close(fd)
    return ChildOutcome(finished.result(), lines.kept(), bytes(err))


async def run_fresh(request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
    """Start one fresh child for ``request`` with ``fds`` inherited, and collect what it leaves."""
    try:
        proc = await asyncio.create_subprocess_exec(*engine_command(), **spawn_options(fds))
    except OSError as exc:
        raise InspectError(f"could not start the engine: {exc.strerror or exc}") from None
    assert proc.stdin and proc.stdout and proc.stderr
    job = None
    if sys.platform == "win32":
        request, job = confine_on_windows(request, proc.pid)
    try:
        proc.stdin.write(request_line(request))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.drain()
        stdin = proc.stdin if options.ranges is not None else None  # kept open to answer the child's reads
        if stdin is None:
            proc.stdin.close()
        return await _collect(proc.stdout, proc.stderr, proc.wait, lambda: kill_group(proc), options, stdin)
    finally:
        kill_group(proc)
        await _reap(proc)
        if job is not None:
            job.close()


async def _discard(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(65536):
        pass


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Wait for a finished or killed child. asyncio wakes ``wait()`` only once the pipes are closed, and a
    pipe whose reader stopped stays paused, so what is left in them is read and thrown away."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(REAP_TIMEOUT):
            await asyncio.gather(_discard(proc.stdout), _discard(proc.stderr), proc.wait())


class Runner(Protocol):
    """Runs one engine request on its descriptors (the image is ``fds[0]``) and collects what the child left."""

    async def run(self, request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome: ...


class FreshProcessRunner:
    """A fresh, hardened process per request: the default."""

    async def run(self, request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
        return await run_fresh(request, fds, options)


FRESH = FreshProcessRunner()


class InProcessRunner:
    """For tests: the engine's report built in this process, unsandboxed, and answered as a child would.

    The layer line says ``layers`` (the caller's claim; by default every layer ``off``), so whatever reads the
    reply (decoding, the required layers, validation, the policy) runs exactly as for a real child.
    """

    def __init__(self, layers: dict[str, str] | None = None) -> None:
        self.layers = layers if layers is not None else dict.fromkeys(sandbox.layer_order(), "off (in process)")

    async def run(self, request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
        from ..engine.child.worker import inspect_request

        if options.ranges is not None:  # its reads would go to this process's own stdin
            raise InspectError("remote images need a real engine child (the in-process runner has no pipes)")
        code, body = inspect_request({**request, "progress": False})  # this process's stdout is not a pipe
        lines = [json.dumps({"sandbox": self.layers}), json.dumps(body)]
        return ChildOutcome(code, "\n".join(lines).encode(), b"")


def build_in_process(path: str | os.PathLike[str], declared: str | None = None) -> dict[str, Any]:
    """The engine's report on ``path`` built in this process: unsandboxed and unvalidated, for tests, benchmarks
    and fuzzing (:class:`InProcessRunner` is the same behind the runner interface)."""
    from ..engine import report

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return report.build(fd, str(path), declared)
    finally:
        os.close(fd)


async def run_request(
    request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions, runner: Runner = FRESH
) -> dict[str, Any]:
    """Run one child on ``request`` and return its decoded (still unvalidated) reply object."""
    return checked_reply(await runner.run(request, fds, options), options)


async def run_engine(
    fd: int, path: str, declared: str | None, options: EngineOptions, runner: Runner = FRESH
) -> dict[str, Any]:
    """Run one child on ``fd`` and return its decoded (still unvalidated) reply object."""
    return await run_request({"fd": fd, **engine_request(path, declared, options)}, (fd,), options, runner)


async def inspect_path(
    path: str,
    declared: str | None,
    options: EngineOptions,
    follow_symlinks: bool = False,
    walked: Walked | None = None,
    *,
    runner: Runner = FRESH,
) -> dict[str, Any]:
    """Open ``path`` and run the engine on it; the reply's ``report`` is returned unvalidated, with an
    ``image-changed`` finding when the file's size or times moved meanwhile. The open and the check after run off
    the event loop, unless a walk found the file on a local disk or in memory (:mod:`.mounts`)."""
    on_loop = walked is not None and mounts.is_local(walked.identity[0])
    if on_loop:
        fd, before = open_image(path, follow_symlinks, walked)
    else:
        fd, before = await off_loop(
            lambda: open_image(path, follow_symlinks, walked), options.timeout, "opening the file", close_opened
        )
    try:
        reply = await run_engine(fd, path, declared, options, runner)
        if on_loop:
            after = _fstat_after(fd)
        else:
            after = await off_loop(lambda: _fstat_after(fd), options.timeout, _AFTER)
    finally:
        os.close(fd)
    return checked_report(reply, before, after)


_AFTER = "checking the file after the inspection"


def _fstat_after(fd: int) -> os.stat_result:
    try:
        return os.fstat(fd)
    except OSError as exc:
        raise InspectError(f"{_AFTER}: {exc.strerror or exc}") from None


async def _pipe_reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader, transport


async def _pipe_writer(fd: int) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", buffering=0)
    )
    return asyncio.StreamWriter(transport, protocol, None, loop)


class _Tail:
    """The last :data:`ZYGOTE_LOG_CAP` bytes of a stream that is read to its end."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(4096):
            self.data += chunk
            del self.data[:-ZYGOTE_LOG_CAP]

    def last_lines(self) -> str:
        lines = [line.strip() for line in self.data.decode("utf-8", "replace").splitlines() if line.strip()]
        return " | ".join(lines[-ZYGOTE_LOG_LINES:])[-500:]


def _beyond(request: dict[str, Any], preload: dict[str, Any]) -> bool:
    """Whether ``request`` needs a module the fork server did not import for ``preload``."""
    flags = any(request.get(key) is True and preload.get(key) is not True for key in ("guest", "deep"))
    return flags or (isinstance(request.get("escapes"), list) and not isinstance(preload.get("escapes"), list))


class ForkServerRunner:
    """The client of the sandboxed fork server (the zygote, :mod:`workbench.engine.child.zygote`).

    Started once by exec, the server forks one hardened child per image.

    Frames on a SOCK_SEQPACKET socket pair (:mod:`workbench.engine.child.frames`: a kind byte, an 8-byte request
    id, a body): the parent sends a request's JSON with the image and the write ends of the child's stdout and
    stderr pipes attached (SCM_RIGHTS), or a kill; the zygote answers with the exit code once it has reaped the
    child, or why it made none. The child's reply comes back on its own pipe, exactly as from a fresh process.
    """

    def __init__(self, require_layers: list[str] | None = None, preload: dict[str, Any] | None = None) -> None:
        self.require_layers = list(require_layers or [])
        self.preload = preload  # what the children may be asked (``worker.preload``'s keys); None: everything
        self.sandbox: dict[str, str] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[int | None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._log = _Tail()
        self._drain: asyncio.Future[None] | None = None

    async def __aenter__(self) -> ForkServerRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> dict[str, str]:
        """Start the server and return its layer report; refuse when a required layer is missing, or where
        there is no fork server (the caller then starts a fresh process per image)."""
        if sys.platform == "win32":
            raise InspectError("the fork server needs POSIX fork")
        if not sys.platform.startswith("linux"):
            raise InspectError(
                f"the fork server needs Linux (SOCK_SEQPACKET socket pairs, pipe2); this is {sys.platform}"
            )
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        start: dict[str, Any] = {"fd": theirs.fileno(), "require_layers": self.require_layers}
        if self.preload is not None:
            start["preload"] = self.preload
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *engine_command(zygote=True), **spawn_options((theirs.fileno(),))
            )
        except OSError as exc:
            ours.close()
            raise InspectError(f"could not start the engine zygote: {exc.strerror or exc}") from None
        finally:
            theirs.close()
        self._sock = ours
        proc = self._proc
        assert proc.stdin and proc.stdout and proc.stderr
        self._drain = asyncio.ensure_future(self._log.drain(proc.stderr))
        proc.stdin.write(json.dumps(start).encode())
        proc.stdin.close()
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                hello = await _read_capped(proc.stdout, REPLY_CAP, "greeting")
            reply = decode_reply(ChildOutcome(proc.returncode, hello, b""))
            self.sandbox = reply["sandbox"]
            require_layers(self.sandbox, self.require_layers)
        except (TimeoutError, InspectError) as exc:
            why = str(exc) if isinstance(exc, InspectError) else "did not greet in time"
            layers = exc.sandbox if isinstance(exc, InspectError) else None
            await self.close()
            raise InspectError(f"the engine zygote did not start: {why}{await self._last_words()}", layers) from None
        if reply.get("ok") is not True:
            await self.close()
            raise InspectError(str(reply.get("error", "the engine zygote refused to start"))[:500], self.sandbox)
        ours.setblocking(False)
        self._listener = asyncio.ensure_future(self._listen())
        return self.sandbox

    async def _listen(self) -> None:
        """Hand each reaped child's exit code to whoever waits for it; at EOF, fail every waiter. The socket stays
        watched (``add_reader``) and each wake-up takes every message waiting: no future per message."""
        sock = self._sock
        assert sock
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                while message := sock.recv(4096):
                    self._exited(message)
            except BlockingIOError:
                return
            except OSError:
                pass
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(sock, readable)
        try:
            await ended
        finally:
            loop.remove_reader(sock)
        self._fail_waiters(f"the engine zygote exited{await self._last_words()}")

    def _exited(self, message: bytes) -> None:
        kind, ident, body = frames.parse(message)
        future = self._waiting.pop(ident, None)
        if future is None or future.done():
            return
        if kind == frames.ERROR:  # the zygote could not fork
            future.set_exception(InspectError(f"engine zygote: {body.decode('utf-8', 'replace')}"[:300]))
        elif kind == frames.STATUS and (code := frames.status_of(body)) is not None:
            future.set_result(code)
        else:
            future.set_exception(InspectError("engine zygote: a message of no known kind"))

    async def _last_words(self) -> str:
        """``: <its last stderr lines>`` once the fork server's stderr is closed (it is when it has died)."""
        if self._drain is not None:
            await asyncio.wait({self._drain}, timeout=REAP_TIMEOUT)
        tail = self._log.last_lines()
        return f": {tail}" if tail else ""

    def _fail_waiters(self, message: str) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(InspectError(message))
                future.exception()  # a waiter cancelled meanwhile (Ctrl-C) never reads it: not worth a warning
        self._waiting.clear()

    async def _send(self, kind: bytes, ident: int, body: bytes, fds: list[int]) -> None:
        assert self._sock
        data = frames.frame(kind, ident, body)
        loop = asyncio.get_running_loop()
        while True:
            try:
                socket.send_fds(self._sock, [data], fds)
                return
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(self._sock, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self._sock)

    async def _kill(self, ident: int) -> None:
        with contextlib.suppress(OSError, AssertionError):
            await self._send(frames.KILL, ident, b"", [])

    async def _start(
        self, request: dict[str, Any], body: bytes, images: list[int], more: tuple[int, int] = (-1, -1)
    ) -> tuple[int, asyncio.Future[int | None], int, int]:
        """Send ``request`` (``body``: its JSON) with ``images`` and the write ends of two new pipes; the request's
        id, the future of its exit code, and the read ends. ``more``: a pipe of the caller's, closed if nothing is
        sent."""
        refused = None
        if self._listener is None or self._listener.done():
            refused = InspectError(f"the engine zygote is not running{await self._last_words()}")
        elif self.preload is not None and _beyond(request, self.preload):
            refused = InspectError(
                "the engine zygote was started for less than this request asks (guest, deep, escapes)"
            )
        if refused is not None:
            for fd in more:
                if fd >= 0:
                    os.close(fd)
            raise refused
        ident = next(self._ids)
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = done
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            await self._send(frames.REQUEST, ident, body, [*images, out_w, err_w])
        except OSError as exc:
            self._waiting.pop(ident, None)
            for fd in (*more, out_r, out_w, err_r, err_w):
                if fd >= 0:
                    os.close(fd)
            # it died before its listener noticed: its last words say why, as when the listener sees it go
            raise InspectError(f"the engine zygote is gone ({exc.strerror or exc}){await self._last_words()}") from None
        os.close(out_w)
        os.close(err_w)
        return ident, done, out_r, err_r

    def _killer(self, ident: int, done: asyncio.Future[int | None]) -> Callable[[], None]:
        def kill() -> None:
            if not done.done():
                asyncio.ensure_future(self._kill(ident))

        return kill

    async def run(self, request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
        """Have the zygote fork a child for ``request`` (its image is ``fds[0]``) and collect it. A remote image
        has no descriptor: the child gets the read end of a pipe for the parent's answers in its place."""
        in_r, in_w = os.pipe() if options.ranges is not None else (-1, -1)
        image = fds[0] if in_r < 0 else in_r
        ident, done, out_r, err_r = await self._start(request, json.dumps(request).encode(), [image], (in_r, in_w))
        if in_r >= 0:
            os.close(in_r)
        kill = self._killer(ident, done)
        if in_w < 0:
            return await _collect_pipes(out_r, err_r, done, kill, options)
        out, out_transport = await _pipe_reader(out_r)
        err, err_transport = await _pipe_reader(err_r)
        stdin = await _pipe_writer(in_w)

        async def finished() -> int | None:
            return await done

        try:
            return await _collect(out, err, finished, kill, options, stdin)
        finally:
            out_transport.close()
            err_transport.close()
            stdin.close()

    async def run_batch(
        self, requests: list[dict[str, Any]], images: list[int], options: EngineOptions
    ) -> list[ChildOutcome | None]:
        """One child for several local images in turn (``--isolation batch:N``, ``docs/sandbox.md``): each image's
        outcome as its own child would have left it (the layer line, then its reply), or None where the child
        replied nothing for it (it died, ran out of time, or wrote out of turn): the caller inspects those again,
        one per process. The requests differ only in their image's keys (:data:`ITEM_KEYS`)."""
        shared = {key: value for key, value in requests[0].items() if key not in ITEM_KEYS}
        batch = {**shared, "batch": [{key: r[key] for key in ITEM_KEYS if key in r and key != "fd"} for r in requests]}
        count = len(requests)
        body = json.dumps(batch).encode()
        if len(body) > frames.MAX_FRAME - frames.HEAD:  # long paths: each image goes alone instead
            return [None] * count
        ident, done, out_r, err_r = await self._start(batch, body, images)
        whole = replace(options, timeout=options.timeout * count, reply_cap=options.reply_cap * count)
        try:
            outcome = await _collect_pipes(out_r, err_r, done, self._killer(ident, done), whole)
        except InspectError:
            return [None] * count
        return batch_outcomes(outcome, count)

    async def close(self) -> None:
        """Closing the socket tells the zygote to kill its children and leave; it is killed if it stays."""
        if self._listener is not None:
            # Wait for the listener to end without taking its CancelledError for ours: a cancellation of this
            # task (a Ctrl-C in triage) must still end it. No running-loop lookup: the window closes its
            # server while qasync shuts down.
            listener = self._listener
            ended: asyncio.Future[None] = listener.get_loop().create_future()

            def end(_: object) -> None:
                if not ended.done():
                    ended.set_result(None)

            listener.add_done_callback(end)
            listener.cancel()
            await ended
        self._fail_waiters("the engine zygote was closed")
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc = self._proc
        if proc is None:
            return
        try:
            async with asyncio.timeout(REAP_TIMEOUT):
                await proc.wait()
        except TimeoutError:
            kill_group(proc)
            await _reap(proc)
        await self._last_words()  # its stderr is closed now that it is gone: the log is complete


ITEM_KEYS = ("fd", "path", "declared_format")  # what differs from one image of a batch to the next


def batch_outcomes(outcome: ChildOutcome, count: int) -> list[ChildOutcome | None]:
    """A batch child's output split into each image's outcome: its layer line with the k-th reply line, which must
    be whole and say it is the k-th; from the first that is not, None (inspected again, one per process)."""
    layers, _, rest = outcome.out.partition(b"\n")
    lines = rest.split(b"\n")[:-1]  # whole lines only: a reply cut short by the child's end is none
    found: list[ChildOutcome | None] = []
    for index, line in enumerate(lines[:count]):
        if not line.startswith(b'{"index":%d,' % index):
            break
        found.append(ChildOutcome(0, layers + b"\n" + line, b""))
    return found + [None] * (count - len(found))
