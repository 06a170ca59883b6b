"""Triage many images (found by :mod:`.walk`): inspect with bounded concurrency, stream results as they arrive.

Memory stays flat with the number of files: the walk is a generator, at most ``jobs`` inspections are
in flight, each full report goes straight to the outputs, and only a small summary per file is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine.child.layers import degraded
from ..host.open import InspectError
from ..host.runner import ChildOutcome, EngineOptions, ForkServerRunner, Runner
from ..inspector import Request, failed_report, inspect
from ..policy import policy as policy_mod
from ..records import replace
from ..render.text import volume_contents
from ..schema import MAX_BATCH, ReportLike, most_severe_first
from .walk import Entry

Inspect = Callable[[Request], Awaitable[dict[str, Any]]]
GUEST_CELL = 1024  # characters of a guest column: a summary is kept per file


@contextlib.asynccontextmanager
async def engine_pool(
    required_layers: list[str], warn: Callable[[str], None], preload: dict[str, Any] | None = None
) -> AsyncIterator[ForkServerRunner | None]:
    """A started fork server for a batch, or ``None`` (a fresh process per image) when it cannot start.
    ``preload``: what the batch asks for (``{"guest": bool, "deep": bool}``); None: anything."""
    zygote = ForkServerRunner(required_layers, preload)
    try:
        await zygote.start()
    except InspectError as exc:
        warn(f"engine zygote unavailable ({exc}); starting a fresh process per image")
        yield None
        return
    try:
        yield zygote
    finally:
        await zygote.close()


# the outputs (:data:`.outputs.KINDS`) that write whole reports: CSV, HTML and the table need only the findings and
# :func:`summarise`'s values (``--resume`` reads an earlier ``--jsonl``, which that run wrote in full)
FULL_REPORT_OUTPUTS = ("json", "jsonl")


class GatedRunner:
    """A runner with at most ``limit`` children at once, whatever the inspections in flight (remote triage keeps
    many more opens and listings going than there are cores). Without ``full_reports`` (a batch that keeps only
    :func:`summarise`'s values) each child is asked for no field tree and no format details (``details``, which
    neither a summary nor the CSV, HTML or table shows): a reply of a few KiB for the parent to read and check,
    with the same verdict, findings, references and sizes."""

    def __init__(self, runner: Runner, limit: int, full_reports: bool = True) -> None:
        self.runner = runner
        self.gate = asyncio.Semaphore(max(1, limit))
        self.full_reports = full_reports

    def prepared(self, request: dict[str, Any]) -> dict[str, Any]:
        return request if self.full_reports else {**request, "include_fields": False, "include_details": False}

    async def run(self, request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
        async with self.gate:
            return await self.runner.run(self.prepared(request), fds, options)


_Queued = tuple[dict[str, Any], int, EngineOptions, "asyncio.Future[ChildOutcome | None]"]


class BatchRunner:
    """``--isolation batch:N`` (``docs/sandbox.md``: what the images of one batch share): requests for local images
    are gathered, up to ``size`` at a time, and sent to one forked child, which inspects them in turn; each counts
    once against the gate. An image the child replied nothing for (it died, or ran out of time) is inspected again
    in a child of its own; remote images and deep inspections (long, with their progress) always go alone."""

    def __init__(self, gated: GatedRunner, server: ForkServerRunner, size: int) -> None:
        self.gated = gated
        self.server = server
        self.size = max(1, min(size, MAX_BATCH))
        self.queue: list[_Queued] = []
        self.flushing = False
        self.batches: set[asyncio.Future[None]] = set()

    async def run(self, request: dict[str, Any], fds: tuple[int, ...], options: EngineOptions) -> ChildOutcome:
        if options.ranges is not None or "fd" not in request or request.get("deep") is True:
            return await self.gated.run(request, fds, options)  # remote (range by range) or deep: alone
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ChildOutcome | None] = loop.create_future()
        self.queue.append((self.gated.prepared(request), fds[0], options, future))
        if len(self.queue) >= self.size:
            self._flush()
        elif not self.flushing:  # whatever else arrives in this turn of the loop joins the batch
            self.flushing = True
            loop.call_soon(self._flush)
        outcome = await future
        return outcome if outcome is not None else await self.gated.run(request, fds, options)

    def _flush(self) -> None:
        self.flushing = False
        while self.queue:
            group = [item for item in self.queue[: self.size] if not item[3].done()]  # not those given up on
            del self.queue[: self.size]
            if group:
                batch = asyncio.ensure_future(self._run(group))
                self.batches.add(batch)
                batch.add_done_callback(self.batches.discard)

    async def _run(self, group: list[_Queued]) -> None:
        outcomes: list[ChildOutcome | None]
        try:
            async with self.gated.gate:
                outcomes = await self.server.run_batch([q[0] for q in group], [q[1] for q in group], group[0][2])
        except InspectError:  # the batch could not be sent: each image is tried alone, which says why
            outcomes = [None] * len(group)
        for (_, _, _, future), outcome in zip(group, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)


def _guest_columns(guest: Any) -> tuple[str, str]:
    """``--guest``: the operating systems found, and each volume's filesystem or container (``1 ext4 'root'``)."""
    if not isinstance(guest, dict):
        return "", ""
    if "unavailable" in guest:
        return "", f"unavailable: {guest['unavailable']}"[:GUEST_CELL]
    volumes = [v for v in guest.get("volumes") or [] if isinstance(v, dict)]
    names = [v["os"]["name"] for v in volumes if isinstance(v.get("os"), dict) and v["os"].get("name")]
    contents = [f"{v.get('index')} {volume_contents(v)}" for v in volumes if volume_contents(v)]
    return "; ".join(dict.fromkeys(names))[:GUEST_CELL], "; ".join(contents)[:GUEST_CELL]


def summarise(report: ReportLike) -> dict[str, Any]:
    """The few values the triage table and the final summary need."""
    findings = report.get("findings", [])
    ranked = sorted(findings, key=lambda f: most_severe_first(f["severity"]))
    top = ranked[0] if ranked and ranked[0]["severity"] != "info" else None
    guest_os, guest_filesystems = _guest_columns(report.get("guest"))
    return {
        "path": report["path"],
        "verdict": report["verdict"],
        "format": report.get("format"),
        "declared_format": report.get("declared_format"),
        "virtual_size": report.get("virtual_size"),
        "file_size": report.get("file_size"),
        "encrypted": report.get("encrypted"),
        "top_finding": f"{top['id']}: {top['detail']}" if top else (report.get("error") or ""),
        "critical": [f"{f['id']}: {f['detail']}" for f in findings if f["severity"] == "critical"],
        "sandbox_degraded": ", ".join(degraded(report.get("sandbox") or {})) if findings else "",
        "guest_os": guest_os,
        "guest_filesystems": guest_filesystems,
    }


@dataclass
class Tally:
    """Counts per verdict and the rejected files, updated as results arrive."""

    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    degraded: Counter[str] = field(default_factory=Counter)  # weaker sandbox layers -> files parsed so

    def add(self, summary: dict[str, Any]) -> None:
        self.counts[summary["verdict"]] += 1
        if summary.get("sandbox_degraded"):
            self.degraded[summary["sandbox_degraded"]] += 1
        if summary["verdict"] == "reject":
            self.rejected.append({"path": summary["path"], "critical": summary["critical"]})
        elif summary["verdict"] == "failed":
            self.failed.append({"path": summary["path"], "error": summary["top_finding"]})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def exit_code(self) -> int:
        return policy_mod.EXIT_CODES[policy_mod.worst(list(self.counts))]


async def run(
    entries: Iterable[Entry],
    make_request: Callable[[str], Request],
    jobs: int,
    inspect_one: Inspect = inspect,
) -> AsyncGenerator[dict[str, Any], None]:
    """Full reports in the order they finish, with at most ``jobs`` inspections in flight. Each inspection that
    ends is queued by its own callback, and this waits only when the queue is empty (``asyncio.wait`` would walk
    every inspection in flight at each turn)."""
    loop = asyncio.get_running_loop()
    source = iter(entries)
    pending: set[asyncio.Future[dict[str, Any]]] = set()
    finished: deque[asyncio.Future[dict[str, Any]]] = deque()
    waiter: list[asyncio.Future[None]] = []

    def ended(task: asyncio.Future[dict[str, Any]]) -> None:
        finished.append(task)
        if waiter and not waiter[0].done():
            waiter[0].set_result(None)

    def start(task: asyncio.Future[dict[str, Any]]) -> None:
        task.add_done_callback(ended)
        pending.add(task)

    def start_next() -> bool:
        for entry in source:
            if entry.refused:
                refused = loop.create_future()
                refused.set_result(failed_report(entry.path, None, entry.refused))
                start(refused)
                return True
            request = replace(make_request(entry.path), walked=entry.walked)
            start(asyncio.ensure_future(inspect_one(request)))
            return True
        return False

    try:
        while len(pending) < jobs and start_next():
            pass
        while pending:
            if not finished:
                waiter[:] = [loop.create_future()]
                await waiter[0]
            task = finished.popleft()
            pending.discard(task)
            yield task.result()
            start_next()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
