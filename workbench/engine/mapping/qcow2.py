"""qcow2 (versions 2 and 3): L1/L2 lookup as qemu's block/qcow2-cluster.c does it.

Standard L2 entries (8 bytes) and extended ones (16 bytes: the entry and a bitmap of 32 subclusters,
allocated bits 0-31, zero bits 32-63); zero clusters, plain and allocated; compressed clusters (the
descriptor of docs/interop/qcow2.txt: host offset in the low ``62 - (cluster_bits - 8)`` bits, then the
number of additional 512-byte sectors); an external data file (runs are EXTERNAL, offsets in that file);
a backing file. The runs are those ``qemu-img map`` reports, before merging; an entry qemu would call
corrupt (an unaligned offset, reserved bits set), one pointing past the end of the file or into the
header, the L1 or the refcount table, is an INVALID run with ``entry`` = the entry's file offset.
Header values come from the header parser's own layout (``formats/qcow.py``); an image qemu refuses to
open (or an encrypted one) is :class:`Unmappable`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from itertools import groupby

from ..formats.qcow import (
    BITMAP_ENTRY_LAYOUT,
    BITMAPS_LAYOUT,
    COMPRESSION,
    DATA_FILE,
    DATA_FILE_RAW,
    EXT_BITMAPS,
    EXT_END,
    EXTENSION_LAYOUT,
    HEADER_READ,
    INCOMPATIBLE,
    INT_MAX,
    MAX_BITMAP_DIRECTORY,
    MAX_BITMAPS,
    MAX_CLUSTER_BITS,
    MAX_L1_BYTES,
    MAX_REFTABLE_BYTES,
    MAX_SNAPSHOTS,
    MIN_CLUSTER_BITS,
    MIN_EXTENDED_L2_BITS,
    SNAPSHOT_HEADER,
    SNAPSHOT_LAYOUT,
    V2_HEADER,
    V3_HEADER,
    Header,
    header_layout,
)
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Run, Table, Unmappable, inflate, register
from .twolevel import L1_CHUNK, TwoLevelMapping, stretch

OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00  # L1E_OFFSET_MASK == L2E_OFFSET_MASK: bits 9-55
COPIED, COMPRESSED, ZERO = 1 << 63, 1 << 62, 1
L1_RESERVED = 0x7F00_0000_0000_01FF  # bits 0-8 and 56-62
L2_RESERVED = 0x3F00_0000_0000_01FE  # bits 1-8 and 56-61 (bit 0 too with extended L2: the bitmap has the zeros)
REFTABLE_OFFSET_MASK = ~0x1FF  # refcount table entries: bits 9-63
SECTOR = 512
SUBCLUSTERS = 32


def _align(value: int, to: int) -> int:
    return -(-value // to) * to


class Qcow2Mapping(TwoLevelMapping):
    def __init__(self, reader: Reader, hdr: Header, backing: bool) -> None:
        bits = hdr["cluster_bits"]
        self.extended = hdr.extended_l2
        words = 2 if self.extended else 1
        super().__init__(
            reader,
            hdr["size"],
            cluster_bits=bits,
            l2_bits=bits - (4 if self.extended else 3),
            l1_offset=hdr["l1_table_offset"],
            l1_entries=hdr["l1_size"],
            endian=">",
            words=words,
        )
        self.hdr = hdr
        self.backing = backing
        self.external = bool(hdr["incompatible_features"] & DATA_FILE)
        self.external_raw = self.external and bool(hdr["autoclear_features"] & DATA_FILE_RAW)
        self.zstd = hdr["compression_type"] != 0
        self.l2_reserved = L2_RESERVED | (ZERO if self.extended else 0)
        self.csize_shift = 62 - (bits - 8)
        self.csize_mask = (1 << (bits - 8)) - 1
        self.subcluster = self.cluster // SUBCLUSTERS
        reftable = min(hdr["refcount_table_clusters"] * self.cluster, MAX_REFTABLE_BYTES)
        self.reftable = (hdr["refcount_table_offset"], reftable)
        # where no table and no data cluster may lie: cluster 0 (header), the L1 and the refcount table
        self.metadata = ((0, self.cluster), (self.l1_offset, 8 * self.l1_entries), self.reftable)

    # --- entries ----------------------------------------------------------------------------------------------

    def _in_file(self, offset: int, external: bool = False) -> bool:
        """A cluster-aligned host offset inside this file and clear of its metadata (or in the data file)."""
        if offset % self.cluster:
            return False
        if external:
            return True
        clear = all(not start <= offset < start + length for start, length in self.metadata)
        return clear and offset < self.reader.size

    def l2_offset(self, entry: int) -> int:
        return entry & OFFSET_MASK

    def l2_table(self, entry: int, entry_at: int) -> int | Kind:
        offset = entry & OFFSET_MASK
        if entry & L1_RESERVED or (offset and not self._in_file(offset)):
            return Kind.INVALID
        return offset or Kind.UNALLOCATED

    def cluster_runs(
        self, words: tuple[int, ...], entry_at: int, cluster_start: int, lo: int, hi: int
    ) -> Iterator[Run]:
        entry = words[0]
        bitmap = words[1] if self.extended else 0
        if entry & COMPRESSED:
            yield self._compressed(entry, bitmap, entry_at, cluster_start, lo, hi)
            return
        host = entry & OFFSET_MASK
        allocated = bool(host) or (self.external and bool(entry & COPIED))
        stored = allocated and self._in_file(host, self.external)
        if self.external_raw and host != cluster_start:
            stored = False  # raw external data: the data file offset is the guest offset
        if entry & self.l2_reserved or (allocated and not stored):
            yield Run(lo, hi - lo, Kind.INVALID, entry=entry_at)
        elif self.extended:
            yield from self._subclusters(host if allocated else None, bitmap, entry_at, cluster_start, lo, hi)
        elif entry & ZERO:
            yield Run(lo, hi - lo, Kind.ZERO, host + lo - cluster_start if host else None, entry=entry_at)
        elif allocated:
            yield Run(lo, hi - lo, self._data_kind, host + lo - cluster_start, entry=entry_at)
        else:
            yield Run(lo, hi - lo, Kind.UNALLOCATED, entry=entry_at)

    def entry_runs(self, words: array[int], at: int, base: int, lo: int, hi: int) -> Iterator[Run]:
        """Standard L2 entries a stretch at a time: empty entries in a row are one UNALLOCATED run, plain
        data entries with contiguous host clusters (and the same copied flag) clear of the metadata one DATA
        run (``entry``: the first entry's offset); anything else (and extended L2, an external data file)
        entry by entry."""
        if self.extended or self.external:
            yield from super().entry_runs(words, at, base, lo, hi)
            return
        cluster, count, n = self.cluster, len(words), 0
        while n < count:
            entry, start = words[n], base + n * cluster
            m = n + 1
            if not entry:
                m = stretch(words, n, 0)
                kind, host = Kind.UNALLOCATED, None
            elif not entry & ~(OFFSET_MASK | COPIED) and not entry % cluster:
                host, m = entry & OFFSET_MASK, stretch(words, n, cluster)
                kind = Kind.DATA if self._clear(host, (m - n) * cluster) else Kind.INVALID
            else:
                kind, host = Kind.INVALID, None
            first, end = max(lo, start), min(hi, base + m * cluster)
            if kind is Kind.INVALID:  # entry by entry, as they come
                for j in range(n, m):
                    here = base + j * cluster
                    yield from self.cluster_runs((words[j],), at + 8 * j, here, max(lo, here), min(hi, here + cluster))
            else:
                offset = None if host is None else host + first - start
                yield Run(first, end - first, kind, offset, entry=at + 8 * n)
            n = m

    def _clear(self, host: int, length: int) -> bool:
        """Whether every cluster of ``[host, host + length)`` starts inside the file and the range touches
        none of the metadata (else its entries are looked at one by one)."""
        end = host + length
        if end - self.cluster >= self.reader.size:
            return False
        return all(end <= start or start + size <= host for start, size in self.metadata if size)

    @property
    def _data_kind(self) -> Kind:
        return Kind.EXTERNAL if self.external else Kind.DATA

    def _subclusters(
        self, host: int | None, bitmap: int, entry_at: int, cluster_start: int, lo: int, hi: int
    ) -> Iterator[Run]:
        """qcow2_get_subcluster_type: per subcluster, zero bit, then allocated bit, else unallocated."""
        alloc, zero = bitmap & 0xFFFF_FFFF, bitmap >> 32
        if (host is None and alloc) or alloc & zero:
            yield Run(lo, hi - lo, Kind.INVALID, entry=entry_at)
            return

        def kind(sc: int) -> Kind:
            if zero >> sc & 1:
                return Kind.ZERO
            if alloc >> sc & 1:
                return self._data_kind
            return Kind.UNALLOCATED

        first, last = (lo - cluster_start) // self.subcluster, (hi - 1 - cluster_start) // self.subcluster
        for found, group in groupby(range(first, last + 1), key=kind):
            indices = list(group)
            start = max(lo, cluster_start + indices[0] * self.subcluster)
            end = min(hi, cluster_start + (indices[-1] + 1) * self.subcluster)
            offset = None if host is None else host + start - cluster_start
            yield Run(start, end - start, found, offset, entry=entry_at)

    def _compressed(self, entry: int, bitmap: int, entry_at: int, cluster_start: int, lo: int, hi: int) -> Run:
        host = entry & ((1 << self.csize_shift) - 1)
        stored = ((entry >> self.csize_shift & self.csize_mask) + 1) * SECTOR - host % SECTOR
        # qemu reads past the end of the file as zeros; a descriptor past the file's last sector overruns it
        overruns = host >= self.reader.size or host + stored > _align(self.reader.size, SECTOR)
        if overruns or bitmap or self.external:
            return Run(lo, hi - lo, Kind.INVALID, entry=entry_at)
        return Run(lo, hi - lo, Kind.COMPRESSED, host, stored, cluster_start, entry_at)

    def decompress(self, run: Run) -> bytes:
        if self.zstd:
            raise Unmappable("zstd-compressed cluster: the standard library has no zstd decoder")
        return inflate(self.reader.read(run.offset or 0, run.stored_length), self.cluster)

    # --- metadata ---------------------------------------------------------------------------------------------

    def tables(self) -> Iterator[Table]:
        hdr = self.hdr
        yield Table("header", 0, hdr.extensions_start)
        yield from self._extensions()
        if hdr["backing_file_offset"]:
            yield Table("backing file name", hdr["backing_file_offset"], hdr["backing_file_size"])
        yield Table("L1 table", self.l1_offset, 8 * self.l1_entries)
        yield from self.l2_tables(self.l1_entries)
        yield Table("refcount table", *self.reftable)
        yield from self._refcount_blocks()
        yield from self._snapshots()

    def _extensions(self) -> Iterator[Table]:
        """The header extensions as qemu walks them (to the end marker, within the first cluster), and the
        bitmap directory and tables the bitmaps extension names."""
        start, end = self.hdr.extensions_start, self.hdr.extensions_end
        position = start
        for _ in range(max(0, end - start) // 8 + 1):  # every extension takes 8 bytes at least
            if position + 8 > end:
                break
            ext = EXTENSION_LAYOUT.unpack(self.reader.read(position, 8).ljust(8, b"\0"))
            data, length = position + 8, ext["length"]
            if ext["type"] == EXT_END:
                position = data
                break
            if length > end - data:
                break
            if ext["type"] == EXT_BITMAPS:
                yield from self._bitmaps(data)
            position = data + _align(length, 8)
        yield Table("header extensions", start, position - start)

    def _bitmaps(self, data: int) -> Iterator[Table]:
        """The bitmap directory and the bitmap table of each entry (at most the declared count)."""
        ext = BITMAPS_LAYOUT.unpack(self.reader.read(data, BITMAPS_LAYOUT.size).ljust(BITMAPS_LAYOUT.size, b"\0"))
        start, size = ext["bitmap_directory_offset"], min(ext["bitmap_directory_size"], MAX_BITMAP_DIRECTORY)
        yield Table("bitmap directory", start, size)
        position = start
        for index in range(min(ext["nb_bitmaps"], MAX_BITMAPS)):
            head = self.reader.read(position, BITMAP_ENTRY_LAYOUT.size)
            if len(head) < BITMAP_ENTRY_LAYOUT.size or position + len(head) > start + size:
                break
            entry = BITMAP_ENTRY_LAYOUT.unpack(head)
            if entry["bitmap_table_offset"]:
                yield Table(f"bitmap {index} table", entry["bitmap_table_offset"], 8 * entry["bitmap_table_size"])
            position = _align(position + BITMAP_ENTRY_LAYOUT.size + entry["extra_data_size"] + entry["name_size"], 8)

    def _refcount_blocks(self) -> Iterator[Table]:
        offset, length = self.reftable
        for first in range(0, length // 8, L1_CHUNK // 8):
            count = min(L1_CHUNK // 8, length // 8 - first)
            for n, entry in enumerate(self._words(offset + 8 * first, count)):
                if entry & REFTABLE_OFFSET_MASK:
                    yield Table(f"refcount block {first + n}", entry & REFTABLE_OFFSET_MASK, self.cluster)

    def _snapshots(self) -> Iterator[Table]:
        """The snapshot table (entries up to qemu's count limit) and each snapshot's L1 table."""
        start = position = self.hdr["snapshots_offset"]
        found: list[Table] = []
        for index in range(min(self.hdr["nb_snapshots"], MAX_SNAPSHOTS)):
            head = self.reader.read(position, SNAPSHOT_HEADER)
            if len(head) < SNAPSHOT_HEADER:
                break
            snap = SNAPSHOT_LAYOUT.unpack(head)
            found.append(Table(f"snapshot {index} L1 table", snap["l1_table_offset"], 8 * snap["l1_size"]))
            names = snap["extra_data_size"] + snap["id_str_size"] + snap["name_size"]
            position = _align(position + SNAPSHOT_HEADER + names, 8)
        if found:
            yield Table("snapshot table", start, position - start)
        yield from found


def _refusal(hdr: Header, size: int) -> str | None:
    """Why qemu refuses to open this header (qcow2_do_open), or None."""
    bits, unknown = hdr["cluster_bits"], hdr["incompatible_features"] & ~sum(1 << bit for bit in INCOMPATIBLE)
    if hdr.version not in (2, 3):
        return f"qcow2 version {hdr.version} (qemu opens 2 and 3)"
    if not MIN_CLUSTER_BITS <= bits <= MAX_CLUSTER_BITS:
        return f"cluster_bits {bits} outside {MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS}"
    if unknown:
        return f"unknown incompatible feature bits 0x{unknown:x}"
    if hdr.extended_l2 and bits < MIN_EXTENDED_L2_BITS:
        return f"extended L2 entries with 2^{bits}-byte clusters"
    if hdr["compression_type"] not in COMPRESSION:
        return f"compression type {hdr['compression_type']}"
    if 8 * hdr["l1_size"] > MAX_L1_BYTES:
        return f"an L1 table of {hdr['l1_size']} entries (qemu's limit is {MAX_L1_BYTES // 8})"
    shift = 2 * bits - (4 if hdr.extended_l2 else 3)
    needed = -(-size // (1 << shift))
    if needed > INT_MAX or hdr["l1_size"] < needed:
        return f"an L1 table of {hdr['l1_size']} entries for a virtual size that needs {needed}"
    return None


@register("qcow2")
def qcow2(reader: Reader, info: Inspection) -> Qcow2Mapping:
    if info.encrypted:
        method = (info.encryption or {}).get("method", "unknown")
        raise Unmappable(f"encrypted qcow2 image ({method}): its clusters cannot be read without the key")
    head = reader.read(0, HEADER_READ)
    layout = header_layout(head)
    if len(head) < (V3_HEADER if layout.size > V2_HEADER else V2_HEADER):
        raise Unmappable("qcow2 header truncated")
    hdr = Header(layout.unpack(head))
    refusal = _refusal(hdr, hdr["size"])
    if refusal:
        raise Unmappable(f"qemu refuses this qcow2 image: {refusal}")
    return Qcow2Mapping(reader, hdr, backing=info.backing is not None)
