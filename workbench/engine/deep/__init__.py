"""Deep inspection (``inspect --deep``): every run of the virtual disk and every metadata table of the
image walked through its mapping (``engine/mapping/``), under a metadata budget of its own.

The walk gives ``deep.map`` (``qemu-img map --output=json``'s runs), ``deep.allocated_virtual``, the file's
ownership map (``deep.file_map``) and the checks of docs/deep.md, each a finding naming the offsets; a
format may add checks of its own (``FORMAT_CHECKS``: qcow2's refcounts). Nothing here raises for what is
in the image: the budget or a cap reached ends the walk with a finding saying what was not checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from ...schema import MAX_MAP_RUNS, Deep, MapRun
from ..findings import INFO, Finding, make
from ..inspection import Inspection
from ..mapping import Kind, Mapping, Run, Unmappable, mapping_for, qemu_map
from ..reader import BudgetExceeded, Reader
from .ownership import COMPRESSED, DATA, Ownership, Problem

Progress = Callable[[int, int, str], None]
FormatCheck = Callable[["Walk"], None]
FORMAT_CHECKS: dict[str, FormatCheck] = {}
MAX_TABLES = 1 << 20  # metadata structures listed at most (each is a few Python objects)
OUT_OF_SCOPE = {"dmg": "deep inspection does not read DMG (out of scope: its tables are a compressed plist)"}


class Walk:
    """One deep inspection's state: the reader, the mapping, the ownership map and what was found."""

    def __init__(self, reader: Reader, mapping: Mapping, info: Inspection, progress: Progress) -> None:
        self.reader = reader
        self.mapping = mapping
        self.info = info
        self.progress = progress
        self.findings: list[Finding] = []
        self.ownership = Ownership(reader.size)
        self.complete = True
        self.allocated = 0
        self.runs: list[MapRun] = []
        self.runs_cut = 0
        self.check: dict[str, int] = {}
        self.invalid = Problem()
        self._unit: int | None = None  # file offset of the last compressed unit claimed

    def stop(self, detail: str, offset: int | None = None) -> None:
        """The walk ends short: a ``deep-budget`` finding says what was not checked."""
        self.complete = False
        self.findings.append(make("deep-budget", detail, offset))

    def tables(self) -> None:
        """List and claim every metadata structure."""
        self.progress(0, self.mapping.size, "metadata tables")
        listed = []
        try:
            for table in self.mapping.tables():
                if len(listed) >= MAX_TABLES:
                    self.stop(f"more than {MAX_TABLES} metadata tables: the rest were not checked")
                    break
                listed.append(table)
        except BudgetExceeded as exc:
            self.stop(f"metadata tables past {exc.offset}: {exc}; the rest were not checked", exc.offset)
        self.ownership.add_tables(listed)

    def _runs(self) -> Iterator[Run]:
        """The mapping's runs in order, each accounted as it passes; the budget ends them with a finding."""
        size = self.mapping.size
        done = 0
        try:
            for run in self.mapping.runs(0, size):
                self._account(run)
                done = run.start + run.length
                self.progress(done, size, "guest mapping")
                yield run
        except BudgetExceeded as exc:
            self.stop(f"{exc}: guest bytes {done}..{size} ({size - done} bytes) were not checked", exc.offset)

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


def inspect_deep(
    fd: int, fmt: str, info: Inspection, file_size: int, budget: int, progress: Progress | None = None
) -> tuple[dict[str, Any], list[Finding], int]:
    """The report value ``deep``, its findings and the file bytes it read (its own :class:`Reader`)."""
    reader = Reader(fd, file_size, budget)
    if fmt in OUT_OF_SCOPE:
        return {"unavailable": OUT_OF_SCOPE[fmt]}, [], 0
    try:
        mapping = mapping_for(fmt, reader, info)
    except Unmappable as exc:
        return {"unavailable": f"deep inspection: {exc}"}, [], reader.bytes_read
    except BudgetExceeded as exc:
        return (
            {"unavailable": f"deep inspection: the mapping's header did not fit the budget ({exc})"},
            [make("deep-budget", f"nothing was checked: {exc}", exc.offset)],
            reader.bytes_read,
        )
    walk = Walk(reader, mapping, info, _throttled(progress))
    walk.tables()
    walk.walk()
    check = FORMAT_CHECKS.get(fmt)
    if check is not None and walk.complete:
        try:
            check(walk)
        except BudgetExceeded as exc:
            walk.stop(f"{fmt} checks stopped at {exc.offset}: {exc}", exc.offset)
    value = walk.report()
    if progress is not None:
        progress(mapping.size, mapping.size, "done")
    return dict(value), walk.findings, reader.bytes_read


def _throttled(progress: Progress | None, interval: float = 0.1) -> Progress:
    """``progress`` called at most every ``interval`` seconds (never when it is None)."""
    last = [0.0]

    def call(done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if progress is not None and now - last[0] >= interval:
            last[0] = now
            progress(done, total, what)

    return call
