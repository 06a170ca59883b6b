"""One deep inspection's walk: the mapping's tables and runs, accounted into the map, the allocated
bytes, the ownership map and the problems found (``engine/deep/__init__.py`` runs it)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ...schema import DEEP_CPU_SECONDS, MAX_MAP_RUNS, Deep, MapRun
from ..findings import INFO, Finding, make
from ..mapping import Kind, Mapping, Run, Table, qemu_map
from ..reader import BudgetExceeded, Progress, Reader
from .ownership import COMPRESSED, DATA, Ownership, Problem

MAX_TABLES = 1 << 20  # metadata structures listed at most (each is a few Python objects)
CPU_SECONDS = DEEP_CPU_SECONDS * 3 // 4  # CPU time a walk may take before it stops (the child's limit kills)
CLOCK_EVERY = 256  # runs between two looks at the CPU clock


class OutOfTime(Exception):
    """The walk used its share of the child's CPU time (the budget bounds bytes, this the work on them)."""


class Walk:
    """One deep inspection's state: the reader, the mapping, the ownership map and what was found."""

    def __init__(self, reader: Reader, mapping: Mapping, progress: Progress) -> None:
        self.reader = reader
        self.deadline = time.process_time() + CPU_SECONDS
        self.mapping = mapping
        self.progress = progress
        self.findings: list[Finding] = []
        self.ownership = Ownership(reader.size)
        self.complete = True
        self.allocated = 0
        self.runs: list[MapRun] = []
        self.runs_cut = 0
        self.check: dict[str, int] = {}
        self.invalid = Problem()
        self.listed: list[Table] = []  # every structure as the mapping listed it (before merging)
        self._unit: int | None = None  # file offset of the last compressed unit claimed

    def stop(self, detail: str, offset: int | None = None) -> None:
        """The walk ends short: a ``deep-budget`` finding says what was not checked."""
        self.complete = False
        self.findings.append(make("deep-budget", detail, offset))

    def clock(self) -> None:
        """Raise :class:`OutOfTime` when the walk has used its CPU time (a hostile table can make the work
        on the bytes the budget allows slower than the child's CPU limit: stopping is a finding, dying is not)."""
        if time.process_time() > self.deadline:
            raise OutOfTime(f"the deep walk used its {CPU_SECONDS} s of CPU time")

    def tables(self) -> None:
        """List and claim every metadata structure."""
        self.progress(0, self.mapping.size, "metadata tables")
        listed: list[Table] = []
        try:
            for table in self.mapping.tables():
                if len(listed) >= MAX_TABLES:
                    self.stop(f"more than {MAX_TABLES} metadata tables: the rest were not checked")
                    break
                listed.append(table)
        except BudgetExceeded as exc:
            self.stop(f"metadata tables past {exc.offset}: {exc}; the rest were not checked", exc.offset)
        self.listed = listed
        self.ownership.add_tables(listed)

    def _runs(self) -> Iterator[Run]:
        """The mapping's runs in order, neighbours that continue each other joined (clusters of one
        allocation arrive one by one) and each accounted as it passes; the budget ends them with a finding."""
        size = self.mapping.size
        pending: Run | None = None
        try:
            for count, run in enumerate(self.mapping.runs(0, size)):
                if not count % CLOCK_EVERY:
                    self.clock()
                if pending is not None and _continues(pending, run):
                    pending = Run(
                        pending.start, pending.length + run.length, run.kind, pending.offset, entry=pending.entry
                    )
                    continue
                if pending is not None:
                    self._account(pending)
                    self.progress(run.start, size, "guest mapping")
                    yield pending
                pending = run
        except (BudgetExceeded, OutOfTime) as exc:
            done = pending.start + pending.length if pending is not None else 0
            offset = exc.offset if isinstance(exc, BudgetExceeded) else None
            self.stop(f"{exc}: guest bytes {done}..{size} ({size - done} bytes) were not checked", offset)
        if pending is not None:
            self._account(pending)
            yield pending

    def _account(self, run: Run) -> None:
        if run.kind in (Kind.DATA, Kind.COMPRESSED, Kind.EXTERNAL):
            self.allocated += run.length
        if run.kind is Kind.INVALID:
            where = run.entry if run.entry is not None else run.start
            self.invalid.add(where, f"guest {run.start}+{run.length}: entry at {run.entry} cannot be followed")
        elif run.kind is Kind.DATA and run.offset is not None:
            self.ownership.claim(run.offset, run.length, DATA, f"data for guest {run.start}")
        elif run.kind is Kind.COMPRESSED and run.offset is not None and run.offset != self._unit:
            self._unit = run.offset  # a unit spans several runs when it is split by others
            self.ownership.claim(run.offset, run.stored_length, COMPRESSED, f"compressed unit for guest {run.unit}")

    def walk(self) -> None:
        for entry in qemu_map(self._runs(), self.mapping.backing):
            if len(self.runs) < MAX_MAP_RUNS:
                self.runs.append(entry)
            else:
                self.runs_cut += 1

    def report(self) -> Deep:
        self._problems()
        file_map, file_cut = self.ownership.file_map()
        if self.runs_cut or file_cut:
            what = f"{self.runs_cut} runs of deep.map" if self.runs_cut else "deep.file_map"
            self.findings.append(make("report-capped", f"{what} past {MAX_MAP_RUNS} runs left out", None, INFO))
        return {
            "map": self.runs,
            "file_map": file_map,
            "allocated_virtual": self.allocated,
            "check": self.check,
            "budget": self.reader.budget,
            "bytes_read": self.reader.bytes_read,
            "complete": self.complete,
        }

    def _problems(self) -> None:
        own = self.ownership
        for finding_id, problem in (
            ("deep-outside-file", own.outside),
            ("deep-overlap", own.overlap),
            ("deep-invalid-entry", self.invalid),
        ):
            self.problem(finding_id, problem)

    def problem(self, finding_id: str, problem: Problem) -> None:
        """One finding for every instance of ``problem``, naming the first few with their offsets."""
        if not problem.count:
            return
        more = f"; {problem.count - len(problem.notes)} more" if problem.count > len(problem.notes) else ""
        detail = f"{problem.count} found: " + "; ".join(problem.notes) + more
        self.findings.append(make(finding_id, detail, problem.offsets[0]))


_JOINABLE = frozenset({Kind.DATA, Kind.ZERO, Kind.UNALLOCATED, Kind.EXTERNAL})


def _continues(last: Run, run: Run) -> bool:
    """Whether ``run`` continues ``last``: same kind, next guest byte and, with offsets, the next file byte."""
    if run.kind is not last.kind or run.kind not in _JOINABLE or last.start + last.length != run.start:
        return False
    if last.offset is None or run.offset is None:
        return last.offset is None and run.offset is None
    return last.offset + last.length == run.offset
