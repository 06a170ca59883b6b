"""QED: L1/L2 tables of ``table_size`` clusters, little-endian, as qemu's block/qed.c reads them.

An entry is a cluster offset: 0 unallocated (the backing file's, else zeros), 1 in an L2 table a zero
cluster; anything else must be cluster aligned, past the header and inside the file
(``qed_check_cluster_offset``, for both ends of an L2 table), or the run is INVALID.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..checks import is_power_of_two
from ..formats.qed import F_BACKING_FILE, F_BACKING_RAW, F_NEED_CHECK, HEADER, MAX_CLUSTER, MAX_TABLE, MIN_CLUSTER
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Run, Table, Unmappable, register
from .twolevel import TwoLevelMapping

ZERO_CLUSTER = 1


class QedMapping(TwoLevelMapping):
    def __init__(self, reader: Reader, values: dict[str, int], backing: bool) -> None:
        cluster, table = values["cluster_size"], values["table_size"]
        bits = cluster.bit_length() - 1
        l2_bits = (table * cluster // 8).bit_length() - 1
        super().__init__(
            reader,
            values["image_size"],
            cluster_bits=bits,
            l2_bits=l2_bits,
            l1_offset=values["l1_table_offset"],
            l1_entries=1 << l2_bits,
            endian="<",
        )
        self.values = values
        self.backing = backing
        self.header_end = values["header_size"] * cluster
        self.table_bytes = table * cluster

    def _valid(self, offset: int) -> bool:
        return offset % self.cluster == 0 and self.header_end <= offset < self.reader.size

    def l2_offset(self, entry: int) -> int:
        return entry

    def l2_table(self, entry: int, entry_at: int) -> int | Kind:
        if not entry:
            return Kind.UNALLOCATED
        last = entry + self.table_bytes - self.cluster
        return entry if self._valid(entry) and self._valid(last) else Kind.INVALID

    def cluster_runs(
        self, words: tuple[int, ...], entry_at: int, cluster_start: int, lo: int, hi: int
    ) -> Iterator[Run]:
        entry = words[0]
        if not entry:
            yield Run(lo, hi - lo, Kind.UNALLOCATED, entry=entry_at)
        elif entry == ZERO_CLUSTER:
            yield Run(lo, hi - lo, Kind.ZERO, entry=entry_at)
        elif self._valid(entry):
            yield Run(lo, hi - lo, Kind.DATA, entry + lo - cluster_start, entry=entry_at)
        else:
            yield Run(lo, hi - lo, Kind.INVALID, entry=entry_at)

    def tables(self) -> Iterator[Table]:
        yield Table("header", 0, self.header_end)
        if self.values["features"] & F_BACKING_FILE:
            yield Table(
                "backing file name", self.values["backing_filename_offset"], self.values["backing_filename_size"]
            )
        yield Table("L1 table", self.l1_offset, self.table_bytes)
        yield from self.l2_tables(-(-self.size >> self.l1_shift))


@register("qed")
def qed(reader: Reader, info: Inspection) -> QedMapping:
    head = reader.read(0, HEADER.size)
    if len(head) < HEADER.size:
        raise Unmappable("qed header truncated")
    values = HEADER.unpack(head)
    cluster, table, features = values["cluster_size"], values["table_size"], values["features"]
    if not (MIN_CLUSTER <= cluster <= MAX_CLUSTER and is_power_of_two(cluster)):
        raise Unmappable(f"qemu refuses this qed image: cluster_size {cluster}")
    if not (1 <= table <= MAX_TABLE and is_power_of_two(table)):
        raise Unmappable(f"qemu refuses this qed image: table_size {table}")
    if features & ~(F_BACKING_FILE | F_NEED_CHECK | F_BACKING_RAW):
        raise Unmappable(f"qemu refuses this qed image: unknown feature bits 0x{features:x}")
    entries = table * cluster // 8
    if values["image_size"] > entries * entries * cluster:
        raise Unmappable(
            f"qemu refuses this qed image: image_size {values['image_size']} is larger than its tables map"
        )
    return QedMapping(reader, values, backing=info.backing is not None)
