"""Guest bytes, budgeted: the interface the guest layers read through, and windows onto volumes.

A :class:`GuestDisk` gives guest bytes by guest offset (a container format maps them to file offsets);
``None`` means "not in this file" (a hole that would fall through to a backing file or an external
extent). :class:`BudgetedDisk` reads it in aligned blocks, each once, and counts every block against
the guest budget; a hole reads as zeros and is remembered so the view can say so. :class:`View` is a
window (a partition, a logical volume's segments) with offsets relative to its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..schema import DEFAULT_GUEST_BUDGET
from .reader import Reader, charge, span

BLOCK = 4096
MAX_HOLES = 64  # hole offsets remembered for the finding


class GuestDisk(Protocol):
    """Guest bytes of a virtual disk of ``size`` bytes; ``None`` for a range that is not in this file."""

    size: int

    def read(self, offset: int, length: int) -> bytes | None: ...


class RawGuestDisk:
    """A raw image: guest offset == file offset."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.size = reader.size

    def read(self, offset: int, length: int) -> bytes | None:
        return self.reader.read(offset, length)


class GuestBudgetExceeded(Exception):
    """A layer needed more guest bytes than the guest budget allows (not a ``reader.BudgetExceeded``: the
    container parsers that run on a :class:`View` catch that one for the header budget)."""

    def __init__(self, offset: int, length: int, budget: int) -> None:
        super().__init__(f"reading {length} guest bytes at {offset} would pass the {budget}-byte guest budget")


class BudgetedDisk:
    """Block-aligned, cached, budgeted reads from a :class:`GuestDisk`."""

    def __init__(self, disk: GuestDisk, budget: int = DEFAULT_GUEST_BUDGET) -> None:
        self.disk = disk
        self.size = max(0, disk.size)
        self.budget = budget
        self.bytes_read = 0
        self.holes: list[int] = []
        self.hole_count = 0
        self._blocks: dict[int, bytes] = {}

    def _block(self, number: int) -> bytes:
        length = min(BLOCK, self.size - number * BLOCK)
        data = self.disk.read(number * BLOCK, length)
        if data is None:
            self.hole_count += 1
            if len(self.holes) < MAX_HOLES:
                self.holes.append(number * BLOCK)
            data = bytes(min(BLOCK, self.size - number * BLOCK))
        self.bytes_read += BLOCK
        return data[:BLOCK]

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` guest bytes at ``offset``: shorter at the end of the disk, empty past it."""
        end = span(offset, length, self.size)
        if offset >= end:
            return b""
        first, last = offset // BLOCK, (end - 1) // BLOCK
        charge(0, (last - first + 1) * BLOCK, self.budget, offset, end - offset, GuestBudgetExceeded)
        missing = [n for n in range(first, last + 1) if n not in self._blocks]
        charge(self.bytes_read, len(missing) * BLOCK, self.budget, offset, end - offset, GuestBudgetExceeded)
        for number in missing:
            self._blocks[number] = self._block(number)
        data = b"".join(self._blocks[n] for n in range(first, last + 1))
        skip = offset - first * BLOCK
        return data[skip : skip + end - offset]


@dataclass(frozen=True)
class Segment:
    """``length`` bytes of a volume at volume offset ``start`` stored at guest offset ``guest``."""

    start: int
    guest: int
    length: int


class View:
    """A volume: reads relative to its start, mapped through its segments to guest offsets.

    It has ``size`` and ``read`` like :class:`workbench.engine.reader.Reader`, so the container-level
    parsers (partition tables, LUKS) run on it unchanged.
    """

    def __init__(self, disk: BudgetedDisk, segments: list[Segment], size: int) -> None:
        self.disk = disk
        self.segments = sorted(segments, key=lambda s: s.start)
        self.size = size

    @classmethod
    def window(cls, disk: BudgetedDisk, base: int, size: int) -> View:
        size = max(0, min(size, disk.size - base))
        return cls(disk, [Segment(0, base, size)], size)

    @property
    def base(self) -> int:
        """Guest offset of the volume's first byte (fields are reported at guest offsets)."""
        return self.segments[0].guest if self.segments else 0

    def guest_offset(self, offset: int) -> int:
        for seg in self.segments:
            if seg.start <= offset < seg.start + seg.length:
                return seg.guest + offset - seg.start
        return self.base + offset

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at volume offset ``offset``; an unmapped gap ends the read."""
        end = min(offset + length, self.size)
        out = bytearray()
        cursor = offset
        for seg in self.segments:
            if cursor >= end:
                break
            if seg.start + seg.length <= cursor:
                continue
            if seg.start > cursor:
                break
            take = min(end, seg.start + seg.length) - cursor
            out += self.disk.read(seg.guest + cursor - seg.start, take)
            cursor += take
        return bytes(out)

    def sub(self, offset: int, size: int) -> View:
        """A window inside this volume (a partition of a logical volume, an MD member's data)."""
        size = max(0, min(size, self.size - offset))
        parts = []
        for seg in self.segments:
            lo, hi = max(seg.start, offset), min(seg.start + seg.length, offset + size)
            if lo < hi:
                parts.append(Segment(lo - offset, seg.guest + lo - seg.start, hi - lo))
        return View(self.disk, parts, size)
