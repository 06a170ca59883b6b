"""The file's ownership map: one byte per file cluster saying what holds it (header, table, data,
compressed), so deep inspection sees a table or cluster outside the file, inside the header or another
table, or claimed twice, with memory proportional to the file's clusters and never Python objects per
cluster."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ...schema import MAX_MAP_RUNS, FileRun
from ..mapping import Table

MAX_UNITS = 64 << 20  # bytes of the ownership map at most (one per unit); larger files get larger units
SECTOR = 512  # the smallest unit: every format's structures and data lie on sectors
MAX_OFFSETS = 8  # offsets named in one finding's detail

FREE, HEADER, TABLE, DATA, COMPRESSED, OVERLAP = range(6)
KINDS = ("free", "header", "table", "data", "compressed", "overlap")
_INDEX = re.compile(r" \d+$")  # a directory entry's index at the end of a table's name
_RUN = re.compile(b"|".join(bytes([code]) + b"+" for code in range(len(KINDS))))


@dataclass
class Problem:
    """Offsets of one kind of problem (the first few named, all counted)."""

    count: int = 0
    offsets: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, offset: int, note: str) -> None:
        self.count += 1
        if len(self.offsets) < MAX_OFFSETS:
            self.offsets.append(offset)
            self.notes.append(note)


class Ownership:
    """Which structure owns each ``unit``-byte cluster of a ``file_size``-byte file."""

    def __init__(self, file_size: int) -> None:
        self.file_size = file_size
        self.unit = SECTOR
        while -(-file_size // self.unit) > MAX_UNITS:
            self.unit *= 2
        units = -(-file_size // self.unit)
        self.owners = bytearray(units)
        self.tables: list[Table] = []
        self._starts: list[int] = []
        self.outside = Problem()
        self.overlap = Problem()
        self._last: tuple[int, int, int] | None = None  # the range claimed last, and how often in a row before
        self._repeats = 0

    def claim(self, offset: int, length: int, code: int, what: str) -> None:
        """Mark ``[offset, offset + length)`` as ``code``; a range past the file or on units already owned is
        a problem. Data marks the units it fills (data lies on sectors; with larger units two neighbours must
        not seem to share one), a compressed unit every unit it touches (units share clusters)."""
        if length <= 0:
            return
        end = offset + length
        # a compressed descriptor counts whole sectors: its last one may end past the file (qemu reads zeros)
        limit = -(-self.file_size // SECTOR) * SECTOR if code == COMPRESSED else self.file_size
        if offset < 0 or end > limit:
            self.outside.add(offset, f"{what} at {offset}+{length} ends past the file ({self.file_size} bytes)")
        unit, stop = self.unit, min(end, self.file_size)
        first, last = (offset // unit, -(-stop // unit)) if code == COMPRESSED else (-(-offset // unit), stop // unit)
        if first >= last:
            return
        key = (offset, length, code)
        self._repeats = self._repeats + 1 if key == self._last else 0
        self._last = key
        if code == DATA and self._repeats >= 2:  # a third time in a row (one table named by many entries)
            where = first * unit  # its units are all OVERLAP since the second time: nothing changes
            held = self._name(where, "more than one owner")
            self.overlap.add(where, f"{what} at {offset}+{length} overlaps {held} at {where}")
            return
        view = self.owners[first:last]
        shared = view.count(COMPRESSED) if code == COMPRESSED else 0
        if len(view) - view.count(FREE) - shared:
            at = len(view) - len(view.lstrip(bytes([FREE, code if code == COMPRESSED else FREE])))
            where = (first + at) * unit
            held = self._name(where, KINDS[view[at]] if view[at] != OVERLAP else "more than one owner")
            self.overlap.add(where, f"{what} at {offset}+{length} overlaps {held} at {where}")
        table = bytearray([code]) + bytes([OVERLAP]) * 255
        table[COMPRESSED] = COMPRESSED if code == COMPRESSED else OVERLAP
        self.owners[first:last] = view.translate(table)

    def add_tables(self, tables: list[Table]) -> None:
        """Mark every distinct structure (a table listed twice at the same place, as snapshots share them, is
        one structure); overlapping structures are found by a sweep over their exact byte ranges. One table
        named by two entries of one directory (``L2 table 3`` and ``L2 table 7`` at one offset: their names
        differ only in the index) is an overlap: each entry's guest range would read the same table."""
        seen = sorted({(t.offset, t.length, t.name) for t in tables if t.length > 0})
        unique: list[Table] = []
        for offset, length, name in seen:
            if unique and unique[-1].offset == offset and unique[-1].length == length:
                if _INDEX.sub("", name) == _INDEX.sub("", unique[-1].name):
                    self.overlap.add(offset, f"{name} at {offset}+{length} is also {unique[-1].name}")
                continue
            unique.append(Table(name, offset, length))
        self.tables = unique
        self._starts = [t.offset for t in unique]
        reach: Table | None = None  # the table reaching furthest so far
        for table in unique:
            if reach is not None and table.offset < reach.offset + reach.length:
                self.overlap.add(table.offset, f"{table.name} at {table.offset}+{table.length} overlaps {reach.name}")
            if reach is None or table.offset + table.length > reach.offset + reach.length:
                reach = table
            self._mark(table)

    def _mark(self, table: Table) -> None:
        """The units a table touches, where no other table marked them first."""
        end = table.offset + table.length
        if table.offset < 0 or end > self.file_size:
            self.outside.add(table.offset, f"{table.name} at {table.offset}+{table.length} ends past the file")
        first, last = table.offset // self.unit, -(-min(end, self.file_size) // self.unit)
        if first < last:
            code = HEADER if table.name.startswith("header") else TABLE
            view = self.owners[first:last]
            self.owners[first:last] = view.translate(bytes([code]) + bytes(range(1, 256)))

    def _name(self, offset: int, kind: str) -> str:
        """The table covering ``offset`` by name (among the few that start just before it), else ``kind``."""
        i = bisect.bisect_right(self._starts, offset)
        for table in reversed(self.tables[max(0, i - MAX_OFFSETS * 8) : i]):
            if offset < table.offset + table.length:
                return table.name
        return kind

    def file_map(self) -> tuple[list[FileRun], bool]:
        """Runs of the file by owner (tables by name), and whether they were cut at MAX_MAP_RUNS."""
        out: list[FileRun] = []
        for match in _RUN.finditer(self.owners):
            code = self.owners[match.start()]
            start = match.start() * self.unit
            end = min(match.end() * self.unit, self.file_size)
            if code in (TABLE, HEADER):
                pieces = self._table_pieces(start, end, KINDS[code])
            else:
                pieces = [{"offset": start, "length": end - start, "kind": KINDS[code]}]
            for piece in pieces:
                if len(out) >= MAX_MAP_RUNS:
                    return out, True
                out.append(piece)
        return out, False

    def _table_pieces(self, start: int, end: int, kind: str) -> list[FileRun]:
        """``[start, end)`` (all tables or header) split at the tables that lie in it, each with its name."""
        pieces: list[FileRun] = []
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        cursor = start
        while cursor < end and i < len(self.tables) and len(pieces) < MAX_MAP_RUNS:
            table = self.tables[i]
            i += 1
            stop = min(end, -(-(table.offset + table.length) // self.unit) * self.unit)
            if stop <= cursor:
                continue
            pieces.append({"offset": cursor, "length": stop - cursor, "kind": kind, "name": table.name})
            cursor = stop
        if cursor < end:
            pieces.append({"offset": cursor, "length": end - cursor, "kind": kind})
        return pieces
