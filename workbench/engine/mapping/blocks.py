"""What the block-table formats (VMDK, dynamic VHD, VHDX, VDI, Parallels) share: a table of fixed-width
entries read a page at a time, runs produced block by block and clipped to the request, data targets
checked against the file's end and its fixed metadata, and sector bitmaps turned into runs.

A subclass of :class:`BlockMapping` says what one block holds (:meth:`BlockMapping.block`); the loop over
blocks is bounded by the request, itself clipped to the virtual size the factory capped.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ..fields import Layout
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Run, Table, Unmappable

PAGE = 4096  # table bytes read per miss: a lookup costs at most one page of the guest budget


def refuse_encrypted(info: Inspection) -> None:
    """Encrypted images are never mapped: their data cannot be read without the key."""
    if info.encrypted:
        raise Unmappable(f"{info.format} image is encrypted")


def header(reader: Reader, layout: Layout, offset: int, what: str) -> dict[str, Any]:
    """``layout``'s values at ``offset`` (the header parser's layout, read again through the mapping's
    reader); a structure cut short by the end of the file cannot be mapped."""
    values = layout.unpack(reader.read(offset, layout.size))
    if len(values) < len(layout.names):
        raise Unmappable(f"{what} at offset {offset} is truncated")
    return values


class EntryTable:
    """``count`` unsigned entries of ``width`` bytes at file offset ``offset``, read lazily by page."""

    def __init__(self, reader: Reader, offset: int, count: int, width: int, byteorder: str) -> None:
        self.reader = reader
        self.offset = offset
        self.length = max(0, count) * width  # as declared: deep inspection checks it against the file
        self.count = min(max(0, count), max(0, reader.size - offset) // width)  # entries inside the file
        self.width = width
        self.byteorder = byteorder
        self._page: tuple[int, bytes] = (-1, b"")

    def at(self, index: int) -> int:
        """File offset of entry ``index``."""
        return self.offset + index * self.width

    def entry(self, index: int) -> int | None:
        """Entry ``index``, or ``None`` past the entries that lie inside the file."""
        if not 0 <= index < self.count:
            return None
        where = index * self.width
        page = where // PAGE
        if self._page[0] != page:
            start = page * PAGE
            self._page = (page, self.reader.read(self.offset + start, min(PAGE, self.length - start)))
        raw = self._page[1][where % PAGE : where % PAGE + self.width]
        return int.from_bytes(raw, self.byteorder) if len(raw) == self.width else None  # type: ignore[arg-type]

    def stretch(self, index: int, limit: int, step: int) -> int:
        """How many entries from ``index`` on (at least 1, at most ``limit``, within its page) go up by
        ``step`` from one to the next (units stored one after another), so a caller maps them as one run."""
        first = self.entry(index)
        if first is None:
            return 1
        where = index * self.width % PAGE
        raw = self._page[1][where : where + limit * self.width]
        values = array("I" if self.width == 4 else "Q", raw[: len(raw) // self.width * self.width])
        if (self.byteorder == "big") == (sys.byteorder == "little"):
            values.byteswap()
        count = 1
        while count < len(values) and values[count] == first + count * step:
            count += 1
        return count

    def blank_run(self, index: int, limit: int) -> int:
        """How many entries from ``index`` on (at least 1, at most ``limit``, within its page) are blank
        like it (all bytes 0x00 or all 0xFF: the "unallocated" values), so a caller maps them as one run."""
        if self.entry(index) is None:
            return 1
        where = index * self.width % PAGE
        raw = self._page[1][where : where + limit * self.width]
        if raw[:1] not in (b"\0", b"\xff"):
            return 1
        return max(1, (len(raw) - len(raw.lstrip(raw[:1]))) // self.width)


def clip(run: Run, lo: int, hi: int) -> Run | None:
    """``run`` cut to ``[lo, hi)``; a file offset moves with the start except a compressed unit's."""
    start, end = max(run.start, lo), min(run.start + run.length, hi)
    if start >= end:
        return None
    if (start, end) == (run.start, run.start + run.length):
        return run
    offset = run.offset
    if offset is not None and run.kind is not Kind.COMPRESSED:
        offset += start - run.start
    return replace(run, start=start, length=end - start, offset=offset)


def bit_runs(bitmap: bytes, count: int, msb_first: bool) -> Iterator[tuple[int, int, bool]]:
    """``(first, n, set)`` groups of the first ``count`` bits of ``bitmap`` (missing bytes read as clear)."""
    bitmap = bitmap[: -(-count // 8)].ljust(-(-count // 8), b"\0")
    first, current = 0, None
    for index in range(count):
        byte = bitmap[index >> 3]
        bit = bool(byte >> (7 - (index & 7)) & 1) if msb_first else bool(byte >> (index & 7) & 1)
        if bit is not current:
            if current is not None:
                yield first, index - first, current
            first, current = index, bit
    if current is not None:
        yield first, count - first, current


class BlockMapping:
    """Guest blocks of ``cluster`` bytes, each mapped by a subclass's :meth:`block`.

    ``fixed`` are the metadata structures at known places (headers, tables): a data target that overlaps
    one of them, or does not lie wholly inside the file, is an INVALID run naming the entry.
    """

    backing = False

    def __init__(self, reader: Reader, size: int, cluster: int, fixed: list[Table]) -> None:
        self.reader = reader
        self.size = max(0, size)
        self.cluster = cluster
        self.fixed = fixed

    def block(self, index: int) -> Iterator[Run]:
        """The runs of block ``index`` (guest ``index * cluster`` on), unclipped."""
        raise NotImplementedError

    def runs(self, start: int, length: int) -> Iterator[Run]:
        """Block by block; a block's runs may reach past it (an unallocated grain table, the rest of the
        disk past a table's end) and the next block looked up is the one after them."""
        pos, end = max(0, start), min(start + length, self.size)
        while pos < end:
            index = pos // self.cluster
            following = (index + 1) * self.cluster
            for run in self.block(index):
                following = max(following, run.start + run.length)
                piece = clip(run, pos, end)
                if piece is not None:
                    yield piece
            pos = following

    def beyond(self, start: int, table: EntryTable, index: int) -> Run:
        """From guest ``start`` to the disk's end when entry ``index`` of ``table`` is not in the file:
        INVALID, naming the entry if the table declares it."""
        entry = table.at(index) if index * table.width < table.length else None
        return Run(start, max(self.cluster, self.size - start), Kind.INVALID, entry=entry)

    def target(
        self, start: int, length: int, offset: int, entry: int | None, kind: Kind = Kind.DATA, stored: int = 0
    ) -> Run:
        """A run stored at ``offset`` (``stored`` bytes for a compressed unit, else ``length``), or INVALID
        when those bytes lie outside the file or on fixed metadata."""
        end = offset + (stored or length)
        bad = offset <= 0 or end > self.reader.size
        bad = bad or any(offset < t.offset + t.length and t.offset < end for t in self.fixed)
        unit = start if kind is Kind.COMPRESSED else 0
        return Run(start, length, Kind.INVALID if bad else kind, offset, stored, unit, entry)

    def tables(self) -> Iterator[Table]:
        yield from self.fixed

    def decompress(self, run: Run) -> bytes:
        raise Unmappable(f"{type(self).__name__} has no compressed units")
