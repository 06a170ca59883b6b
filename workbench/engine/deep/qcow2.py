"""qcow2's own deep checks, counted as ``qemu-img check`` counts them (qemu's block/qcow2-refcount.c):
every reference (header, L1 and L2 tables of the image and of each snapshot, data and compressed clusters,
the snapshot table, the refcount table and blocks, bitmap tables) is counted per host cluster, then
compared with the stored refcounts (more stored than referenced: a leak, info; fewer: a corruption,
critical), and the OFLAG_COPIED flags of the active tables are checked against a refcount of 1.

Memory: two bytes per host cluster of the file (capped at MAX_CLUSTERS); every loop is a ``range`` over a
table's declared, capped size.
"""

from __future__ import annotations

import struct
import sys
from array import array

from ..mapping.qcow2 import COMPRESSED, COPIED, L1_RESERVED, OFFSET_MASK, ZERO, Qcow2Mapping
from ..mapping.twolevel import stretch
from .ownership import MAX_OFFSETS, Problem
from .walk import Walk

MAX_CLUSTERS = 16 << 20  # host clusters counted (the file and references past it); more is not checked
L2_STD_RESERVED = 0x3F00_0000_0000_01FE  # L2E_STD_RESERVED_MASK
REFT_OFFSET, REFT_RESERVED = ~0x1FF & (1 << 64) - 1, 0x1FF
SATURATED = 0xFFFF
REFCOUNT_TYPES = "BBBBHIQ"  # array type of a stored refcount, by refcount_order (below 8 bits: one a byte)
BITMAP_ENTRY = 24  # fixed part of a bitmap directory entry
MAX_BITMAPS = 65535


class TooLarge(Exception):
    """More host clusters than MAX_CLUSTERS would have to be counted."""


class Check:
    """One qemu-style check of a qcow2 image read through its deep walk's mapping and reader."""

    def __init__(self, walk: Walk, mapping: Qcow2Mapping) -> None:
        self.walk, self.m, self.reader = walk, mapping, walk.reader
        self.bits = mapping.cluster_bits
        self.nb = -(-self.reader.size // mapping.cluster)
        if self.nb > MAX_CLUSTERS:
            raise TooLarge(f"{self.nb} host clusters")
        self.counts = array("H", bytes(2 * self.nb))
        self.counters = dict.fromkeys(("corruptions", "leaks", "check-errors", "allocated-clusters"), 0)
        self.counters.update({"fragmented-clusters": 0, "compressed-clusters": 0})
        self.problems = {name: Problem() for name in ("deep-refcount", "deep-refcount-leak", "deep-copied-flag")}
        self._blocks: dict[int, array[int] | None] = {}  # decoded refcount blocks (arrays: bytes, not objects)
        self._none = array(REFCOUNT_TYPES[mapping.hdr["refcount_order"]])  # a block that is not there
        self.per_block = 1 << (self.bits + 3 - mapping.hdr["refcount_order"])  # refcounts in one block

    # --- counting references (calculate_refcounts) ---------------------------------------------------------

    def inc(self, offset: int, size: int) -> None:
        """qcow2_inc_refcounts_imrt: one more reference to every cluster of ``[offset, offset + size)``
        (a range whose clusters all have one count, as on their first reference, is set at once)."""
        if size <= 0:
            return
        first, last = offset >> self.bits, (offset + size - 1) >> self.bits
        if last >= MAX_CLUSTERS:
            raise TooLarge(f"a reference to cluster {last}")
        if last >= len(self.counts):
            self.counts.extend(array("H", bytes(2 * (last + 1 - len(self.counts)))))
        count, now = last + 1 - first, self.counts[first]
        if count > 1 and now < SATURATED and self.counts[first : last + 1] == array("H", [now]) * count:
            self.counts[first : last + 1] = array("H", [now + 1]) * count
            return
        for k in range(first, last + 1):
            if self.counts[k] == SATURATED:
                self.corrupt("deep-refcount", k << self.bits, f"cluster {k}: refcount overflow")
            else:
                self.counts[k] += 1

    def corrupt(self, problem: str, offset: int, note: str) -> None:
        self.counters["corruptions"] += 1
        self.problems[problem].add(offset, note)

    def words(self, offset: int, count: int) -> tuple[int, ...]:
        data = self.reader.read(offset, 8 * count).ljust(8 * count, b"\0")
        return struct.unpack(f">{count}Q", data)

    def l1(self, offset: int, size: int, active: bool) -> None:
        """check_refcounts_l1."""
        if not size:
            return
        self.inc(offset, 8 * size)
        for i, entry in enumerate(self.words(offset, size)):
            if not entry:
                continue
            where = offset + 8 * i
            if entry & L1_RESERVED:
                self.corrupt("deep-refcount", where, f"L1 entry at {where} has reserved bits set")
            l2 = entry & OFFSET_MASK
            self.inc(l2, self.m.cluster)
            if l2 % self.m.cluster:
                self.corrupt("deep-refcount", where, f"L1 entry at {where}: L2 table {l2} is not cluster aligned")
            self.l2(l2, active)

    def l2_entries(self, offset: int) -> array[int]:
        """The words of the L2 table at ``offset`` (entry, and bitmap with extended L2), looked at again
        after the map's walk (:meth:`Reader.read_charged`: the budget bounds every look)."""
        return self.m.l2_words(offset, (1 << self.m.l2_bits) * self.m.words)

    def kind(self, entry: int) -> str:
        """qcow2_get_cluster_type."""
        if entry & COMPRESSED:
            return "compressed"
        if entry & ZERO and not self.m.extended:
            return "zero-alloc" if entry & OFFSET_MASK else "zero-plain"
        if not entry & OFFSET_MASK:
            return "normal" if self.m.external and entry & COPIED else "unallocated"
        return "normal"

    def l2(self, offset: int, active: bool) -> None:
        """check_refcounts_l2 (the fragmentation counters for the active table only) and, for the active
        table, check_oflag_copied's look at its entries. Plain entries with contiguous host clusters are
        counted a stretch at a time; any other entry (and extended L2, a data file) one by one."""
        self.walk.clock()
        words, step = self.l2_entries(offset), self.m.words
        fast = not (self.m.extended or self.m.external)
        count, cluster, n = len(words) // step, self.m.cluster, 0
        following = 0
        while n < count:
            entry = words[n * step]
            if fast and not entry:
                n = stretch(words, n, 0)
                continue
            m = n + 1
            if fast and not entry & ~(OFFSET_MASK | COPIED) and not entry % cluster:
                host, m = entry & OFFSET_MASK, stretch(words, n, cluster)
                if self._stretch(words, n, m, host, active, following, offset + n * self.m.entry_size):
                    following = host + (m - n) * cluster
                    n = m
                    continue
            for j in range(n, m):
                bitmap = words[j * step + 1] if self.m.extended else 0
                following = self._entry(words[j * step], bitmap, offset + j * self.m.entry_size, active, following)
            n = m

    def _stretch(self, words: array[int], n: int, m: int, host: int, active: bool, following: int, where: int) -> bool:
        """Entries ``n..m`` of the L2 table whose words are ``words`` (plain, contiguous from ``host``, one
        copied flag; entry ``n`` at file offset ``where``) counted at once; False (nothing counted) when a
        refcount block cannot be read and they need a look one by one."""
        count = m - n
        if active:
            copied = words[n] >= COPIED  # and so are the others of the stretch
            stored = self._stored(host >> self.bits, count)
            if stored is None:
                return False
            wrong = count - stored.count(1) if copied else stored.count(1)
            if wrong:
                self._copied_wrong(stored, copied, where, wrong)
            self.counters["allocated-clusters"] += count
            self.counters["fragmented-clusters"] += bool(following and host != following)
        self.inc(host, count * self.m.cluster)
        return True

    def _copied_wrong(self, stored: array[int], copied: bool, where: int, wrong: int) -> None:
        """check_oflag_copied's ``wrong`` findings in a stretch of entries (the first at ``where``) whose
        copied flags are all ``copied``: the first few named, all counted."""
        problem = self.problems["deep-copied-flag"]
        self.counters["corruptions"] += wrong
        noted = 0
        for i, refcount in enumerate(stored):
            if noted == wrong or len(problem.notes) >= MAX_OFFSETS:
                break
            if (refcount == 1) != copied:
                at = where + 8 * i
                problem.add(at, f"L2 entry at {at}: copied flag, refcount {refcount}")
                noted += 1
        problem.count += wrong - noted

    def _stored(self, cluster: int, count: int) -> array[int] | None:
        """The stored refcounts of ``count`` clusters from ``cluster``; None when a block cannot be read."""
        end, found = cluster + count, array(self._none.typecode)
        for index in range(cluster // self.per_block, (end - 1) // self.per_block + 1):
            first = max(cluster, index * self.per_block)
            take = min(end, (index + 1) * self.per_block) - first
            entries, position = self.block(index), first % self.per_block
            if entries is None:
                return None
            part = entries[position : position + take]
            found += part
            found += array(found.typecode, bytes(found.itemsize * (take - len(part))))
        return found

    def _entry(self, entry: int, bitmap: int, where: int, active: bool, following: int) -> int:
        """One L2 entry; returns the host offset a contiguous next cluster would have."""
        if not entry and not bitmap:
            return following
        kind = self.kind(entry)
        if kind != "compressed" and entry & L2_STD_RESERVED:
            self.corrupt("deep-refcount", where, f"L2 entry at {where} has reserved bits set")
        if kind == "compressed":
            self._compressed(entry, bitmap, where, active)
        elif kind in ("normal", "zero-alloc"):
            host = entry & OFFSET_MASK
            if (bitmap >> 32) & bitmap:
                self.corrupt("deep-refcount", where, f"L2 entry at {where}: corrupt subcluster bitmap")
            if host % self.m.cluster:
                self.corrupt("deep-refcount", where, f"L2 entry at {where}: cluster {host} is not aligned")
            if active:
                self.counters["allocated-clusters"] += 1
                self.counters["fragmented-clusters"] += bool(following and host != following)
                following = host + self.m.cluster
                self._copied(entry, where)
            if not self.m.external:
                self.inc(host, self.m.cluster)
        elif kind == "unallocated" and bitmap & 0xFFFF_FFFF:
            self.corrupt("deep-refcount", where, f"L2 entry at {where}: unallocated with allocated subclusters")
        return following

    def _copied(self, entry: int, where: int) -> None:
        """check_oflag_copied for one allocated L2 entry of the active table."""
        count = 1 if self.m.external else self.stored((entry & OFFSET_MASK) >> self.bits)
        if count is not None and (count == 1) != bool(entry & COPIED):
            self.corrupt("deep-copied-flag", where, f"L2 entry at {where}: copied flag, refcount {count}")

    def _compressed(self, entry: int, bitmap: int, where: int, active: bool) -> None:
        if entry & COPIED:
            self.corrupt("deep-copied-flag", where, f"compressed L2 entry at {where} has the copied flag")
        if self.m.external or bitmap:
            self.corrupt("deep-refcount", where, f"compressed L2 entry at {where} with a data file or subclusters")
            return
        host = entry & ((1 << self.m.csize_shift) - 1)
        size = ((entry >> self.m.csize_shift & self.m.csize_mask) + 1) * 512 - host % 512
        self.inc(host, size)
        if active:
            for name in ("allocated-clusters", "compressed-clusters", "fragmented-clusters"):
                self.counters[name] += 1

    def bitmaps(self) -> None:
        """qcow2_check_bitmaps_refcounts: the directory, each bitmap's table and its data clusters."""
        for table in self.walk.listed:
            if table.name != "bitmap directory":
                continue
            self.inc(table.offset, table.length)
            position, end = table.offset, table.offset + table.length
            for _ in range(MAX_BITMAPS):
                if position + BITMAP_ENTRY > end:
                    break
                head = self.reader.read(position, BITMAP_ENTRY).ljust(BITMAP_ENTRY, b"\0")
                offset, size, _, _, _, name, extra = struct.unpack(">QIIBBHI", head)
                self.inc(offset, 8 * size)
                for word in self.words(offset, min(size, self.m.cluster)):
                    if word & OFFSET_MASK:
                        self.inc(word & OFFSET_MASK, self.m.cluster)
                position += -(-(BITMAP_ENTRY + extra + name) // 8) * 8

    def refblocks(self) -> None:
        """check_refblocks: each refcount block is referenced once, inside the file."""
        offset, length = self.m.reftable
        for i, entry in enumerate(self.words(offset, length // 8)):
            block = entry & REFT_OFFSET
            if entry & REFT_RESERVED:
                self.corrupt("deep-refcount", offset + 8 * i, f"refcount table entry {i} has reserved bits set")
            elif block >> self.bits >= self.nb:
                self.corrupt("deep-refcount", offset + 8 * i, f"refcount block {i} at {block} is outside the image")
            elif block:
                self.inc(block, self.m.cluster)
                if self.counts[block >> self.bits] != 1:
                    self.corrupt("deep-refcount", block, f"refcount block {i} at {block} is referenced twice")

    # --- stored refcounts (compare_refcounts, check_oflag_copied) -----------------------------------------------

    def block(self, index: int) -> array[int] | None:
        """The stored refcounts of refcount block ``index`` (empty when it has none, None when its offset
        is misaligned and qemu cannot read it)."""
        offset, length = self.m.reftable
        if index >= length // 8:
            return self._none
        if index not in self._blocks:
            block = self.words(offset + 8 * index, 1)[0] & REFT_OFFSET
            self._blocks[index] = None if block % self.m.cluster else (self._decode(block) if block else self._none)
        return self._blocks[index]

    def stored(self, cluster: int) -> int | None:
        """qcow2_get_refcount: the refcount stored for ``cluster``, None when it cannot be read."""
        entries = self.block(cluster // self.per_block)
        if entries is None:
            return None
        position = cluster % self.per_block
        return entries[position] if position < len(entries) else 0

    def _decode(self, block: int) -> array[int]:
        order = self.m.hdr["refcount_order"]
        data = self.reader.read(block, self.m.cluster).ljust(self.m.cluster, b"\0")
        if order >= 3:
            entries = array(REFCOUNT_TYPES[order], data)
            if sys.byteorder == "little":
                entries.byteswap()
            return entries
        bits, mask = 1 << order, (1 << (1 << order)) - 1
        return array("B", (data[i * bits >> 3] >> (i * bits & 7) & mask for i in range(len(data) * 8 // bits)))

    def compare(self) -> int:
        """compare_refcounts, a refcount block at a time; returns the highest cluster in use."""
        highest = 0
        for first in range(0, len(self.counts), self.per_block):
            computed = self.counts[first : first + self.per_block]
            entries = self.block(first // self.per_block)
            if entries is None:
                self.counters["check-errors"] += len(computed)
                continue
            stored = entries[: len(computed)]
            stored += array(stored.typecode, bytes(stored.itemsize * (len(computed) - len(stored))))
            if computed == stored:
                used = len(computed.tobytes().rstrip(b"\0"))
                highest = first + (used - 1) // computed.itemsize if used else highest
                continue
            for i, (count, refcount) in enumerate(zip(computed, stored, strict=True), first):
                highest = i if count or refcount else highest
                note = f"cluster {i}: refcount {refcount}, {count} references"
                if refcount > count:
                    self.counters["leaks"] += 1
                    self.problems["deep-refcount-leak"].add(i << self.bits, note)
                elif refcount < count:
                    self.corrupt("deep-refcount", i << self.bits, note)
        return highest

    def copied(self) -> None:
        """check_oflag_copied for the active L1 table (its L2 entries were looked at in :meth:`l2`)."""
        for i, entry in enumerate(self.words(self.m.l1_offset, self.m.l1_entries)):
            l2 = entry & OFFSET_MASK
            if not l2:
                continue
            refcount = self.stored(l2 >> self.bits)
            where = self.m.l1_offset + 8 * i
            if refcount is not None and (refcount == 1) != bool(entry & COPIED):
                self.corrupt("deep-copied-flag", where, f"L1 entry at {where}: copied flag, L2 refcount {refcount}")

    def run(self) -> dict[str, int]:
        m = self.m
        self.inc(0, m.cluster)
        self.l1(m.l1_offset, m.l1_entries, True)
        for table in self.walk.listed:
            if table.name.startswith("snapshot ") and table.name.endswith(" L1 table"):
                self.l1(table.offset, table.length // 8, False)
            elif table.name == "snapshot table":
                self.inc(table.offset, table.length)
        self.inc(*m.reftable)
        self.bitmaps()
        self.refblocks()
        highest = self.compare()
        self.copied()
        total = -(-m.size // m.cluster)
        return {"total-clusters": total, **self.counters, "image-end-offset": (highest + 1) * m.cluster}


def check(walk: Walk) -> None:
    """``deep.check`` and the refcount findings of a qcow2 image."""
    mapping = walk.mapping
    if not isinstance(mapping, Qcow2Mapping):
        return
    try:
        qcheck = Check(walk, mapping)
        walk.check = qcheck.run()
    except TooLarge as exc:
        walk.stop(f"refcounts not checked: {exc} past the {MAX_CLUSTERS} this check counts")
        return
    for finding_id, problem in qcheck.problems.items():
        walk.problem(finding_id, problem)
