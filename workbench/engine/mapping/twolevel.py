"""What qcow, qcow2 and QED share: an L1 table of L2 table offsets, each L2 table mapping clusters.

:class:`TwoLevelMapping` walks a guest range one L1 entry at a time and reads only the L1 and L2 entries
that range needs (the :class:`~workbench.engine.reader.Reader` keeps what it read, so a second look is
free). Every loop is a ``range`` over L1 indices (at most the declared, capped L1 size: a guest range past
it is one UNALLOCATED run) and over the entries of one L2 table; nothing loops on image data alone.
A format subclass says what an L1 entry and an L2 entry mean.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator

from ..reader import Reader
from . import Kind, Run, Table, Unmappable

L1_CHUNK = 4096  # bytes of L1 table read at a time (the guest view needs one entry per 2^l1_shift bytes)
CHUNK = 64  # entries compared at once while a stretch goes on
WORD = 1 << 64


def stretch(words: array[int], n: int, step: int) -> int:
    """The index past the entries from ``n`` on that go up by ``step`` from ``words[n]`` one to the next
    (step 0: equal to it, as empty entries are): compared in chunks of ``CHUNK`` entries or more, then one
    by one. Flags are
    part of the value: a change of flags ends the stretch."""
    count, first, m = len(words), words[n], n + 1
    chunk = CHUNK if first + (count - n) * step < WORD else 0
    while chunk >= CHUNK:  # twice as many after a match, half as many after a miss
        if m + chunk > count:
            chunk //= 2
            continue
        low = first + (m - n) * step
        expected = array("Q", range(low, low + chunk * step, step)) if step else array("Q", [first]) * chunk
        if words[m : m + chunk] == expected:
            m, chunk = m + chunk, 2 * chunk
        else:
            chunk //= 2
    while m < count and words[m] == first + (m - n) * step:
        m += 1
    return m


class TwoLevelMapping:
    """A two-level table mapping: ``l1_entries`` 8-byte L1 entries at ``l1_offset``, L2 tables of
    ``2 ** l2_bits`` entries of ``words`` 8-byte words each, clusters of ``2 ** cluster_bits`` bytes."""

    backing = False

    def __init__(
        self,
        reader: Reader,
        size: int,
        *,
        cluster_bits: int,
        l2_bits: int,
        l1_offset: int,
        l1_entries: int,
        endian: str,
        words: int = 1,
    ) -> None:
        self.reader = reader
        self.size = max(0, size)
        self.cluster_bits = cluster_bits
        self.cluster = 1 << cluster_bits
        self.l2_bits = l2_bits
        self.l1_shift = cluster_bits + l2_bits
        self.l1_offset = l1_offset
        self.l1_entries = l1_entries
        self.endian = endian
        self.words = words
        self.entry_size = 8 * words
        self._l1: tuple[int, tuple[int, ...]] = (-1, ())  # the L1 chunk looked at last: (first index, entries)

    # --- what a format says about its entries ---------------------------------------------------------------

    def l2_offset(self, entry: int) -> int:
        """The file offset an L1 entry names, 0 for none (whether or not it can be followed)."""
        raise NotImplementedError

    def l2_table(self, entry: int, entry_at: int) -> int | Kind:
        """The file offset of the L2 table an L1 entry names, or the kind of its whole range
        (UNALLOCATED for an empty entry, INVALID for one that cannot be followed)."""
        raise NotImplementedError

    def cluster_runs(
        self, words: tuple[int, ...], entry_at: int, cluster_start: int, lo: int, hi: int
    ) -> Iterator[Run]:
        """The runs of ``[lo, hi)`` inside the cluster at guest offset ``cluster_start``, from its L2 entry."""
        raise NotImplementedError

    def decompress(self, run: Run) -> bytes:
        raise Unmappable("this format has no compressed clusters")

    # --- the walk ---------------------------------------------------------------------------------------------

    def _words(self, offset: int, count: int) -> tuple[int, ...]:
        """``count`` 8-byte words at ``offset``; past the end of the file they read as zeros (as qemu's do)."""
        data = self.reader.read(offset, 8 * count).ljust(8 * count, b"\0")
        return struct.unpack(f"{self.endian}{count}Q", data)

    def l2_words(self, offset: int, count: int) -> array[int]:
        """``count`` 8-byte words of an L2 table at ``offset`` (zeros past the end of the file), decoded at
        once; entries looked at again cost budget again (:meth:`Reader.read_charged`)."""
        words = array("Q", self.reader.read_charged(offset, 8 * count).ljust(8 * count, b"\0"))
        if (self.endian == ">") == (sys.byteorder == "little"):
            words.byteswap()
        return words

    def l1_entry(self, index: int) -> int:
        """L1 entry ``index`` (< ``l1_entries``), read with its neighbours in one aligned chunk (kept)."""
        per_chunk = L1_CHUNK // 8
        first = index - index % per_chunk
        if self._l1[0] != first:
            self._l1 = (first, self._words(self.l1_offset + 8 * first, min(per_chunk, self.l1_entries - first)))
        return self._l1[1][index - first]

    def runs(self, start: int, length: int) -> Iterator[Run]:
        pos, end = max(0, start), min(start + length, self.size)
        if pos >= end:
            return
        span = 1 << self.l1_shift
        for index in range(pos >> self.l1_shift, ((end - 1) >> self.l1_shift) + 1):
            lo, hi = max(pos, index * span), min(end, (index + 1) * span)
            if index >= self.l1_entries:  # past the L1 table: nothing is allocated from here on
                yield Run(lo, end - lo, Kind.UNALLOCATED)
                return
            entry_at = self.l1_offset + 8 * index
            table = self.l2_table(self.l1_entry(index), entry_at)
            if isinstance(table, Kind):
                yield Run(lo, hi - lo, table, entry=entry_at)
            else:
                yield from self._table_runs(table, lo, hi)

    def _table_runs(self, table: int, lo: int, hi: int) -> Iterator[Run]:
        mask = (1 << self.l2_bits) - 1
        first = (lo >> self.cluster_bits) & mask
        last = ((hi - 1) >> self.cluster_bits) & mask
        words = self.l2_words(table + first * self.entry_size, (last - first + 1) * self.words)
        base = lo >> self.cluster_bits << self.cluster_bits
        yield from self.entry_runs(words, table + first * self.entry_size, base, lo, hi)

    def entry_runs(self, words: array[int], at: int, base: int, lo: int, hi: int) -> Iterator[Run]:
        """The runs of ``[lo, hi)`` from consecutive L2 entries (``words``, the first at file offset ``at``
        mapping the cluster at guest ``base``), one entry at a time; a format may merge entries first."""
        for n in range(len(words) // self.words):
            cluster_start = base + n * self.cluster
            entry = tuple(words[n * self.words : (n + 1) * self.words])
            yield from self.cluster_runs(
                entry,
                at + n * self.entry_size,
                cluster_start,
                max(lo, cluster_start),
                min(hi, cluster_start + self.cluster),
            )

    def l2_tables(self, used: int, label: str = "L2 table") -> Iterator[Table]:
        """A :class:`Table` for every L2 table the first ``used`` L1 entries name, followed or not (deep
        inspection checks where each lies)."""
        table_bytes = self.entry_size << self.l2_bits
        per_chunk = L1_CHUNK // 8
        for first in range(0, min(used, self.l1_entries), per_chunk):
            count = min(per_chunk, self.l1_entries - first, used - first)
            for n, entry in enumerate(self._words(self.l1_offset + 8 * first, count)):
                table = self.l2_offset(entry)
                if table:
                    yield Table(f"{label} {first + n}", table, table_bytes)
