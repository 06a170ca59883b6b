"""qcow version 1: L1/L2 lookup as qemu's block/qcow.c does it.

An L2 entry is a host cluster offset (0: unallocated), or with bit 63 set a compressed cluster: the
stored size in the ``cluster_bits`` bits below bit 63, the host offset in the rest; the data is raw
deflate with a 4 KiB window (qcow.c's ``inflateInit2(-12)``). An unaligned offset, or one past the end of
the file or inside the header or the L1 table, is an INVALID run.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..formats.qcow import INT_MAX, V1_CLUSTER_BITS, V1_HEADER, V1_L2_BITS, V1_LAYOUT
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Run, Table, Unmappable, inflate, register
from .twolevel import TwoLevelMapping

COMPRESSED = 1 << 63
WINDOW_BITS = -12


class QcowMapping(TwoLevelMapping):
    def __init__(self, reader: Reader, values: dict[str, int], backing: bool) -> None:
        bits, l2_bits, size = values["cluster_bits"], values["l2_bits"], values["size"]
        shift = bits + l2_bits
        super().__init__(
            reader,
            size,
            cluster_bits=bits,
            l2_bits=l2_bits,
            l1_offset=values["l1_table_offset"],
            l1_entries=(size + (1 << shift) - 1) >> shift,
            endian=">",
        )
        self.values = values
        self.backing = backing
        self.metadata = ((0, V1_HEADER), (self.l1_offset, 8 * self.l1_entries))

    def _stored(self, offset: int, length: int) -> bool:
        clear = all(offset + length <= start or offset >= start + size for start, size in self.metadata)
        return clear and offset + length <= self.reader.size

    def l2_offset(self, entry: int) -> int:
        return entry

    def l2_table(self, entry: int, entry_at: int) -> int | Kind:
        if not entry:
            return Kind.UNALLOCATED
        return entry if entry < self.reader.size and self._stored(entry, 8) else Kind.INVALID

    def cluster_runs(
        self, words: tuple[int, ...], entry_at: int, cluster_start: int, lo: int, hi: int
    ) -> Iterator[Run]:
        entry = words[0]
        shift = 63 - self.cluster_bits
        if not entry:
            yield Run(lo, hi - lo, Kind.UNALLOCATED, entry=entry_at)
        elif entry & COMPRESSED:
            host, stored = entry & ((1 << shift) - 1), entry >> shift & (self.cluster - 1)
            if self._stored(host, stored) and host < self.reader.size:
                yield Run(lo, hi - lo, Kind.COMPRESSED, host, stored, cluster_start, entry_at)
            else:
                yield Run(lo, hi - lo, Kind.INVALID, entry=entry_at)
        elif entry % self.cluster == 0 and entry < self.reader.size and self._stored(entry, 1):
            yield Run(lo, hi - lo, Kind.DATA, entry + lo - cluster_start, entry=entry_at)
        else:
            yield Run(lo, hi - lo, Kind.INVALID, entry=entry_at)

    def decompress(self, run: Run) -> bytes:
        return inflate(self.reader.read(run.offset or 0, run.stored_length), self.cluster, WINDOW_BITS)

    def tables(self) -> Iterator[Table]:
        yield Table("header", 0, V1_HEADER)
        if self.values["backing_file_offset"]:
            yield Table("backing file name", self.values["backing_file_offset"], self.values["backing_file_size"])
        yield Table("L1 table", self.l1_offset, 8 * self.l1_entries)
        yield from self.l2_tables(self.l1_entries)


@register("qcow")
def qcow(reader: Reader, info: Inspection) -> QcowMapping:
    if info.encrypted:
        raise Unmappable("encrypted qcow image (aes): its clusters cannot be read without the key")
    head = reader.read(0, V1_HEADER)
    if len(head) < V1_HEADER:
        raise Unmappable("qcow header truncated")
    values = V1_LAYOUT.unpack(head)
    bits, l2_bits, size = values["cluster_bits"], values["l2_bits"], values["size"]
    if not (V1_CLUSTER_BITS[0] <= bits <= V1_CLUSTER_BITS[1] and V1_L2_BITS[0] <= l2_bits <= V1_L2_BITS[1]):
        raise Unmappable(f"qemu refuses this qcow image: cluster_bits {bits}, l2_bits {l2_bits}")
    if size <= 1 or (size >> (bits + l2_bits)) + 1 > INT_MAX // 8:
        raise Unmappable(f"qemu refuses this qcow image: virtual size {size}")
    return QcowMapping(reader, values, backing=info.backing is not None)
