"""Bounded, positional, read-only access to one image.

Every byte the engine looks at comes through :class:`Reader`. It never seeks, never writes, and stops
at a total budget per image so that no header field can make the engine read (or allocate) without
limit. Every byte read is kept (the budget bounds them) in merged regions, so probes and parsers that
look at the same or overlapping ranges read each byte from the file once and count it once; a reader
with ``keep`` (deep inspection's: its budget is far above what the child may hold) lets go of what it
kept when more would pass ``keep``, and reads again what is asked again.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # the protocol is for the type checker; at run time a plain base

Progress = Callable[[int, int, str], None]  # done, total, what: how far a long walk is (deep, the guest view)
DEFAULT_BUDGET = 1 << 20  # 1 MiB per image


class Positional(Protocol):
    """What a :class:`Reader` reads from besides a file descriptor: a remote image served over the child's
    pipes (``engine/child/ranges.py``)."""

    size: int

    def pread(self, length: int, offset: int) -> bytes: ...


Image = int | Positional  # what the engine reads: a descriptor, or an object with ``pread``


def _pread(fd: Image, length: int, offset: int) -> bytes:
    """``os.pread``, or seek and read where the system has no pread (Windows): the child owns the fd."""
    if not isinstance(fd, int):
        return fd.pread(length, offset)
    if hasattr(os, "pread"):
        return os.pread(fd, length, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, length)


class SourceFailed(OSError):
    """A :class:`Positional` image could not serve a range (a remote object changed, timed out, ...): the
    inspection ends as a failure, not a finding."""


class BudgetExceeded(Exception):
    """A structure needed more bytes than the per-image read budget allows."""

    def __init__(self, offset: int, length: int, budget: int) -> None:
        super().__init__(f"reading {length} bytes at offset {offset} would pass the {budget}-byte budget")
        self.offset = offset
        self.length = length


def span(offset: int, length: int, size: int) -> int:
    """The end of a read of ``length`` bytes at ``offset`` from something of ``size`` bytes: cut at its end
    (the read is short there, empty past it). A negative offset or length is a caller's bug."""
    if offset < 0 or length < 0:
        raise ValueError("negative offset or length")
    return min(offset + length, size)


def charge(
    used: int,
    needed: int,
    budget: int,
    offset: int,
    length: int,
    error: Callable[[int, int, int], Exception] = BudgetExceeded,
) -> None:
    """Raise ``error`` when reading ``needed`` more bytes (for a request of ``length`` at ``offset``) would
    take ``used`` past ``budget``: the one budget rule of the header reader and the guest disk."""
    if used + needed > budget:
        raise error(offset, length, budget)


class Reader:
    """Positional reads from a file descriptor (or a :class:`Positional`) with a byte budget and a record of
    what was read."""

    def __init__(self, fd: Image, size: int, budget: int = DEFAULT_BUDGET, keep: int | None = None) -> None:
        self.fd = fd
        self.size = size
        self.budget = budget
        self.keep = keep  # bytes kept at most (None: all); past it what was kept is let go
        self.bytes_read = 0
        self.examined = 0  # table bytes looked at again without a read (see :meth:`examine`)
        self._kept = 0
        self._starts: list[int] = []  # sorted, non-overlapping, non-adjacent regions
        self._data: list[bytearray] = []

    def remaining(self) -> int:
        return max(0, self.budget - self.bytes_read - self.examined)

    def examine(self, offset: int, length: int) -> None:
        """Charge ``length`` bytes of table entries at ``offset`` that a caller looks at from its own copy
        (a table named by many entries is looked at once per entry): a loop over cached entries is bounded
        by the budget like one over bytes read."""
        charge(self.bytes_read + self.examined, length, self.budget, offset, length)
        self.examined += length

    def _missing(self, offset: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[offset, end)`` not yet read."""
        gaps = []
        cursor = offset
        i = max(0, bisect.bisect_right(self._starts, offset) - 1)
        while cursor < end and i < len(self._starts):
            start, stop = self._starts[i], self._starts[i] + len(self._data[i])
            if stop <= cursor:
                i += 1
                continue
            if start >= end:
                break
            if start > cursor:
                gaps.append((cursor, start))
            cursor = max(cursor, stop)
            i += 1
        if cursor < end:
            gaps.append((cursor, end))
        return gaps

    def _store(self, offset: int, data: bytes) -> None:
        """Keep ``data``, a gap :meth:`_missing` found (it overlaps nothing kept), joined to the regions it
        touches: the one before it grows in place, so tables read one after another make one region without
        copying it again on every read."""
        end = offset + len(data)
        i = bisect.bisect_left(self._starts, offset)
        if i > 0 and self._starts[i - 1] + len(self._data[i - 1]) == offset:
            i -= 1
            self._data[i] += data
        else:
            self._starts.insert(i, offset)
            self._data.insert(i, bytearray(data))
        if i + 1 < len(self._starts) and self._starts[i + 1] == end:
            self._starts.pop(i + 1)
            self._data[i] += self._data.pop(i + 1)

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; shorter at end of file, empty past it."""
        end = span(offset, length, self.size)
        if offset >= end:
            return b""
        gaps = self._missing(offset, end)
        needed = sum(stop - start for start, stop in gaps)
        if self.keep is not None and self._kept + needed > self.keep:
            self._starts, self._data, self._kept = [], [], 0  # let go of what was kept: read it all again
            gaps, needed = [(offset, end)], end - offset
        charge(self.bytes_read + self.examined, needed, self.budget, offset, end - offset)
        short = None
        for start, stop in gaps:
            data = _pread(self.fd, stop - start, start)
            self.bytes_read += len(data)
            self._kept += len(data)
            if data:
                self._store(start, data)
            if len(data) < stop - start:  # the file shrank under us: what is there is all there is
                short = start + len(data)
                break
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0 or self._starts[i] > offset:
            return b""
        base = self._starts[i]
        stop = end if short is None else min(end, short)
        return bytes(self._data[i][offset - base : stop - base])

    def read_charged(self, offset: int, length: int) -> bytes:
        """:meth:`read`, with what came from the kept bytes charged by :meth:`examine`: table entries a
        walk may be sent back to by many entries (one L2 table named by every L1 entry) cost budget each time."""
        before = self.bytes_read
        data = self.read(offset, length)
        self.examine(offset, len(data) - (self.bytes_read - before))
        return data

    def read_tail(self, length: int) -> tuple[int, bytes]:
        """The last ``length`` bytes of the file and their offset."""
        offset = max(0, self.size - length)
        return offset, self.read(offset, length)

    def regions(self) -> list[tuple[int, bytes]]:
        """What was read, as sorted non-overlapping regions (``fit.display_regions`` caps what is shown)."""
        return [(start, bytes(data)) for start, data in zip(self._starts, self._data, strict=True)]
