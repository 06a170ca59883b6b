"""Inspections run inside the Qt loop (qasync): a queue served by ``jobs`` worker tasks.

A worker per CPU (not a task per image) keeps a drop of thousands of images cheap for the UI thread.
The inspect coroutine is injectable (like dangerzone's dummy isolation provider) so window tests can
answer instantly; the default is :func:`workbench.inspector.inspect`, which runs a sandboxed child. With the
default, the session keeps one fork server (:class:`~workbench.host.runner.ForkServerRunner`) for its lifetime, started
at the first inspection: a forked child costs about 10 ms, a fresh interpreter about 130 ms.

``asyncio``, the inspector and the engine client are imported when first used: the window's first frame is
painted before the event loop exists (:meth:`Session.hold`), and those imports are a tenth of its start-up.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from .. import chain
from ..policy.policy import Policy
from ..render.textsafe import printable
from .qtmodels.image_list_model import Entry, ImageListModel

if TYPE_CHECKING:
    import asyncio

    from .. import inspector
    from ..host.runner import ForkServerRunner, Runner

    InspectFn = Callable[[inspector.Request], Awaitable[dict[str, Any]]]

log = logging.getLogger(__name__)
SYMLINK_FLAG = "(use --follow-symlinks)"
SYMLINK_ACTION = "(Image ▸ Inspect Symbolic Link Target, Ctrl+Shift+F5, opens it on purpose)"


class Session(QObject):
    """Queues entries of an :class:`ImageListModel` and stores each report in its entry."""

    finished = Signal(object)  # Entry: its report (an inspection's or an audit's) is in
    chain_done = Signal(object)  # Entry: following its backing chain ended (``entry.chain``, unless it failed)
    failed = Signal(str)  # an audit or a chain could not be run: the window shows it in its notice bar
    progress = Signal(int, int)  # reports received, images queued (since the queue was last empty)
    notice = Signal(str)  # something the user should know once: the fork server could not start
    extending = Signal(object)  # Entry: a guest view or deep check of it started or ended (see :attr:`loads`)
    load_progress = Signal(object)  # Entry: its child said how far its extended inspection is (:attr:`fractions`)

    def __init__(
        self,
        model: ImageListModel,
        policy: Callable[[], Policy],
        inspect_fn: InspectFn | None = None,
        jobs: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.policy = policy
        self.inspect_fn = inspect_fn  # None: the real engine, through :meth:`runner`
        self.pooled = inspect_fn is None  # a fork server serves real engine children only
        self.jobs = max(1, jobs or os.cpu_count() or 2)
        self.timeout = 20.0
        self._queue: deque[tuple[Entry, int]] = deque()
        self._wake: asyncio.Event | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._running = 0
        self._done = 0
        self._queued = 0
        # The fork server, once asked for: its required layers and its start (None: it could not start).
        self._engine: tuple[list[str], asyncio.Future[ForkServerRunner | None]] | None = None
        self._stopping: set[asyncio.Future[None]] = set()
        self._closed = False
        self._held: list[Callable[[], object]] | None = None  # what waits for :meth:`release` while held
        self.roots: Callable[[], list[str]] = list  # the folders backing chains and audits may name
        self.follow_fn = chain.follow
        self.following: set[Entry] = set()  # entries whose backing chain is being followed
        self._tasks: set[asyncio.Future[None]] = set()  # audits, chains and extended inspections under way
        self.loads: dict[Entry, tuple[str, asyncio.Future[None]]] = {}  # extended inspections under way
        self.fractions: dict[Entry, dict[str, Any]] = {}  # the last ``{"done", "total", "what"}`` of each load
        # A remote entry's URL as given (it may hold a secret: never shown) and its S3 endpoint; its path is redacted.
        self.urls: weakref.WeakKeyDictionary[Entry, tuple[str, str | None]] = weakref.WeakKeyDictionary()

    def busy(self) -> bool:
        return bool(self._queue) or self._running > 0 or bool(self._held)

    def hold(self) -> None:
        """Queue inspections, audits and other work without starting them until :meth:`release`: before
        the event loop exists (the window's first frame is painted first)."""
        if self._held is None:
            self._held = []

    def later(self, start: Callable[[], object]) -> None:
        """Call ``start`` (which needs the event loop) now, or at :meth:`release` while held."""
        if self._held is None:
            start()
        else:
            self._held.append(start)

    def release(self) -> None:
        """Start what waited while held (the event loop exists now); nothing once the session is closed."""
        held, self._held = self._held or [], None
        if not self._closed:
            for start in held:
                start()

    def cancel(self) -> None:
        """Drop the queue and stop the workers (the client kills their engine children)."""
        self._queue.clear()
        for task in list(self._workers):
            task.cancel()

    def close(self) -> None:
        """Cancel everything and stop the fork server (in a task; :meth:`closed` says when it is gone)."""
        self._closed = True
        self.cancel()
        for task in self._tasks:
            task.cancel()
        self._retire()

    def working(self) -> bool:
        """Whether an audit or a backing chain is under way."""
        return bool(self._tasks)

    def _spawn(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A task of ``make()``'s coroutine, made when the task starts: a held one is never left unawaited."""

        def start() -> None:
            import asyncio

            task = asyncio.ensure_future(make())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self.later(start)

    def audit(self, entry: Entry) -> None:
        """Audit a libvirt configuration file in a worker thread; :attr:`finished` says when its report is in."""
        entry.generation += 1
        entry.state = "running"
        self.model.refresh(entry)
        generation = entry.generation
        self._spawn(lambda: self._audit(entry, generation))

    async def _audit(self, entry: Entry, generation: int) -> None:
        import asyncio

        from ..audit import report as audit_report  # loaded with the first audit, not with the window

        try:  # cheap and synchronous, but it reads a file: never on the UI thread
            report = await asyncio.to_thread(audit_report.audit_path, entry.path, entry.audit, self.roots())
        except Exception as exc:  # the window carries on; the file shows what went wrong
            log.exception("audit of %r failed", entry.path)
            report = {"path": entry.path, "kind": entry.audit, "findings": [], "verdict": "failed"}
            report["error"] = f"internal error: {exc}"
        if generation == entry.generation and self.model.row_of(entry) >= 0:
            entry.report, entry.state = report, "done"
            self.model.refresh(entry)
            self.finished.emit(entry)

    def follow(self, entry: Entry) -> None:
        """Inspect the entry's backing chain, link by link, each in a child of this session's runner;
        :attr:`chain_done` says when it ended. Once at a time per entry."""
        if entry not in self.following:
            self.following.add(entry)
            generation = entry.generation
            self._spawn(lambda: self._follow(entry, generation))

    async def _follow(self, entry: Entry, generation: int) -> None:
        report = None
        try:
            runner = await self.runner()  # each link is a child forked from the session's server
            request = self.request(entry)
            report = await self.follow_fn(request, self.roots(), chain.DEFAULT_MAX_DEPTH, runner)
        except Exception as exc:  # the window carries on
            log.exception("following the chain of %r failed", entry.path)
            self.failed.emit(f"Following the backing chain failed: {printable(exc, 300)}")
        finally:
            self.following.discard(entry)
        if report is not None and generation == entry.generation and self.model.row_of(entry) >= 0:
            entry.chain = report
        self.chain_done.emit(entry)

    async def stopped(self) -> None:
        """Wait until the fork server stopped by :meth:`close` is gone."""
        import asyncio

        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    def closed(self) -> bool:
        return self._closed and not self._stopping

    async def runner(self) -> Runner:
        """What makes this window's engine children: its fork server, or a fresh process per image."""
        from ..host.runner import FRESH

        return await self.fork_server() or FRESH

    async def fork_server(self) -> ForkServerRunner | None:
        """The session's running fork server, started on first use (again when the required layers change);
        ``None`` when it cannot start (said once through :attr:`notice`): a fresh process per image."""
        import asyncio

        if not self.pooled or self._closed:
            return None
        layers = list(self.policy().required_layers)
        if self._engine is not None and self._engine[0] != layers:
            self._retire()
        if self._engine is None:
            self._engine = (layers, asyncio.ensure_future(self._start(layers)))
        return await asyncio.shield(self._engine[1])  # a cancelled inspection leaves the start running

    def server_sandbox(self) -> dict[str, str] | None:
        """The layers this session's fork server reported when it started, or ``None`` before it has (or
        when it could not start): what the machine gives an engine child, known before any image is read."""
        if self._engine is None or not self._engine[1].done() or self._engine[1].cancelled():
            return None
        zygote = self._engine[1].result()
        return dict(zygote.sandbox) if zygote is not None and zygote.sandbox else None

    async def _start(self, layers: list[str]) -> ForkServerRunner | None:
        from ..host.runner import ForkServerRunner, InspectError

        zygote = ForkServerRunner(layers)
        try:
            await zygote.start()
        except InspectError as exc:
            message = f"Engine fork server unavailable ({exc}): each image starts a fresh process."
            log.warning("%s", message)
            self.notice.emit(message)
            return None
        return zygote

    def _retire(self, zygote: ForkServerRunner | None = None) -> None:
        """Stop the fork server (only if it is still ``zygote``, when given); the next inspection starts another."""
        import asyncio

        if self._engine is None:
            return
        starting = self._engine[1]
        if zygote is not None and not (starting.done() and not starting.cancelled() and starting.result() is zygote):
            return
        self._engine = None
        task = asyncio.ensure_future(self._stop(starting))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    @staticmethod
    async def _stop(starting: asyncio.Future[ForkServerRunner | None]) -> None:
        zygote = await starting
        if zygote is not None:
            await zygote.close()

    def submit(self, entries: list[Entry]) -> None:
        """Inspect (again) each entry; an older inspection of the same entry is ignored when it ends."""
        if not self.busy():
            self._done = self._queued = 0
        for entry in entries:
            entry.generation += 1
            entry.chain = None  # followed from the report this inspection replaces
            if entry.state != "queued":
                entry.state = "queued"
                self.model.refresh(entry)
            self._queue.append((entry, entry.generation))
        self._queued += len(entries)
        self.progress.emit(self._done, self._queued)
        self.later(self._wake_workers)

    def _wake_workers(self) -> None:
        import asyncio

        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        while len(self._workers) < self.jobs:
            task = asyncio.ensure_future(self._worker())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _worker(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            entry, generation = self._queue.popleft()
            self._running += 1
            try:
                await self._run(entry, generation)
            finally:
                self._running -= 1

    async def _run(self, entry: Entry, generation: int) -> None:
        try:
            report = await self._inspect(entry, generation)
            if report is not None and generation == entry.generation:
                if isinstance(report.get("error"), str):  # the window's way, not the command line's
                    report["error"] = report["error"].replace(SYMLINK_FLAG, SYMLINK_ACTION)
                entry.report, entry.state = report, "done"
                self.model.refresh(entry)
                self.finished.emit(entry)
        finally:
            self._done += 1
            self.progress.emit(self._done, self._queued)

    async def _inspect(self, entry: Entry, generation: int) -> dict[str, Any] | None:
        """The report, or ``None`` when the entry was removed or queued again meanwhile."""
        if generation != entry.generation or self.model.row_of(entry) < 0:
            return None
        entry.state = "running"
        self.model.refresh(entry)
        try:
            return await self._report(self.request(entry))
        except Exception as exc:  # the window carries on; the image shows what went wrong
            from ..inspector import failed_report

            log.exception("inspection of %r failed", entry.path)
            return failed_report(entry.path, entry.declared, f"internal error: {exc}")

    def request(self, entry: Entry) -> inspector.Request:
        """How ``entry`` is inspected: its declared format and the extras asked for (guest view, deep check)."""
        from ..inspector import Request

        url, endpoint = self.urls.get(entry, (entry.path, None))
        request = Request(url, entry.declared, entry.follow_symlinks, self.policy(), self.timeout)
        request.endpoint_url = endpoint
        for name, budget in entry.extras.items():
            setattr(request, name, True)
            setattr(request, f"{name}_budget", budget)
        return request

    async def _report(self, request: inspector.Request) -> dict[str, Any]:
        """One inspection through the injected coroutine, else a child of the fork server (or a fresh one)."""
        if self.inspect_fn is not None:
            return await self.inspect_fn(request)
        from ..host.runner import FRESH
        from ..inspector import inspect

        zygote = await self.fork_server()
        report = await inspect(request, zygote or FRESH)
        if zygote is not None and "engine zygote" in str(report.get("error", "")):
            # The fork server died (or was stopped): a new one for later images, a fresh process for this one.
            self._retire(zygote)
            report = await inspect(request, FRESH)
        return report

    def extend(self, entry: Entry, extra: str, budget: int) -> None:
        """Inspect ``entry`` again with ``extra`` (``guest`` or ``deep``) under ``budget``, in the background
        (its report stays shown meanwhile); :attr:`extending` says when it starts and ends. One at a time."""
        if entry in self.loads or entry.audit:
            return
        entry.extras[extra] = budget
        generation = entry.generation
        self.later(lambda: self._start_extend(entry, extra, generation))

    def _start_extend(self, entry: Entry, extra: str, generation: int) -> None:
        import asyncio

        task = asyncio.ensure_future(self._extend(entry, extra, generation))
        self.loads[entry] = (extra, task)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda done: self._extended(entry))
        self.extending.emit(entry)

    def _extended(self, entry: Entry) -> None:
        self.loads.pop(entry, None)
        self.fractions.pop(entry, None)
        self.extending.emit(entry)

    def cancel_extend(self, entry: Entry) -> None:
        """Stop the extended inspection of ``entry`` (its child is killed) and forget the extra it asked for."""
        load = self.loads.get(entry)
        if load is not None:
            entry.extras.pop(load[0], None)
            load[1].cancel()

    def _progressed(self, entry: Entry, progress: dict[str, Any]) -> None:
        if entry in self.loads:
            self.fractions[entry] = progress
            self.load_progress.emit(entry)

    async def _extend(self, entry: Entry, extra: str, generation: int) -> None:
        request = self.request(entry)
        request.on_progress = lambda progress: self._progressed(entry, progress)
        try:
            report = await self._report(request)
        except Exception as exc:  # the window carries on; the page shows the old report and why
            log.exception("extended inspection of %r failed", entry.path)
            entry.extras.pop(extra, None)
            self.failed.emit(f"The {extra} inspection failed: {printable(exc, 300)}")
            return
        if generation == entry.generation and self.model.row_of(entry) >= 0:
            entry.report = report
            self.model.refresh(entry)


class IdleCollector(QObject):
    """Full garbage collections, moved out of inspection bursts.

    With thousands of reports held, one full collection pauses the UI thread for tens of
    milliseconds. Automatic full collections are turned off while the window lives; one runs when
    the session is idle, or after :data:`MAX_DELAY` seconds of continuous work. Young generations
    are still collected automatically.
    """

    CHECK_MS = 2000
    MAX_DELAY = 120.0
    PENDING = 10  # middle-generation collections since the last full one (CPython's own trigger)

    def __init__(self, busy: Callable[[], bool], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.busy = busy
        self._saved = gc.get_threshold()
        self._last = time.monotonic()
        gc.set_threshold(self._saved[0], self._saved[1], 1 << 30)
        self._timer = QTimer(self)
        self._timer.setInterval(self.CHECK_MS)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> bool:
        """Collect now if it is due; returns whether it did."""
        overdue = time.monotonic() - self._last > self.MAX_DELAY
        if gc.get_count()[2] < self.PENDING or (self.busy() and not overdue):
            return False
        gc.collect()
        self._last = time.monotonic()
        return True

    def stop(self) -> None:
        self._timer.stop()
        gc.set_threshold(*self._saved)
