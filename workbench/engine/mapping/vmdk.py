"""VMDK (qemu's block/vmdk.c).

A hosted sparse extent (``KDMV``: monolithicSparse, streamOptimized) maps grains through a grain
directory of little-endian 32-bit sector numbers of grain tables, whose entries are the grains' sectors:
0 is a grain never written, 1 a zeroed grain (with the zeroed-grain flag). A streamOptimized extent keeps
its real header in the footer and stores each grain deflated behind a 12-byte grain marker (guest sector,
stored size). A descriptor (a text file, or a ``KDMV`` header with capacity 0 that points at one) maps
the disk through its extent list: an extent in another file is EXTERNAL and never opened, a ZERO extent
reads as zeros. An ESX ``COWD`` extent maps like a hosted sparse one with 4096 entries per grain table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..formats.vmdk import (
    COWD_HEADER_LEN,
    COWD_LAYOUT,
    GD_AT_END,
    KDMV,
    KDMV_LAYOUT,
    MARKER_LAYOUT,
    MAX_GRAIN_SECTORS,
    MAX_GTES_PER_GT,
    MAX_L1_ENTRIES,
    SECTOR,
)
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Mapping, Run, Table, Unmappable, inflate, register
from .blocks import BlockMapping, EntryTable, header, refuse_encrypted

FLAG_RGD, FLAG_ZERO_GRAIN = 1 << 1, 1 << 2
ZEROED = 1
GRAIN_MARKER = 12  # guest sector (8 bytes) and stored size (4 bytes) before a compressed grain
COWD_GTES = 4096  # qemu: vmdk_open_vmfs_sparse
TABLES_KEPT = 64  # grain tables cached per request
ENTRY_COST = 8  # budget bytes per grain table entry looked at again from a kept table


class SparseMapping(BlockMapping):
    """One hosted sparse extent: this file."""

    def __init__(self, reader: Reader, v: dict[str, Any], footer: bool, count: int, header_len: int) -> None:
        grain = v["grain_size"] * SECTOR
        self.gtes = v["gtes_per_gt"]
        self.compressed = v["compression"] == 1
        self.zero_grain = bool(v["flags"] & FLAG_ZERO_GRAIN)
        self.gd = EntryTable(reader, v["gd_offset"] * SECTOR, count, 4, "little")
        self.rgd = EntryTable(reader, v["rgd_offset"] * SECTOR, count, 4, "little") if v["flags"] & FLAG_RGD else None
        fixed = [Table("header", 0, header_len), Table("grain directory", self.gd.offset, self.gd.length)]
        if v["descriptor_offset"]:
            fixed.append(Table("descriptor", v["descriptor_offset"] * SECTOR, v["descriptor_size"] * SECTOR))
        if self.rgd is not None:
            fixed.append(Table("redundant grain directory", self.rgd.offset, self.rgd.length))
        if footer:
            fixed.append(Table("stream footer", reader.size - 3 * SECTOR, 3 * SECTOR))
        super().__init__(reader, v["capacity"] * SECTOR, grain, fixed)
        self._gts: dict[int, EntryTable] = {}
        self._current = -1  # the grain directory entry looked up last

    def _gt(self, gd_index: int, sector: int) -> EntryTable:
        """The grain table at ``sector`` (kept); one kept table named by another directory entry is looked
        at again, and that costs budget (every directory entry naming one table must not walk for free)."""
        table = self._gts.get(sector)
        if table is None:
            if len(self._gts) >= TABLES_KEPT:
                self._gts.clear()
            table = self._gts[sector] = EntryTable(self.reader, sector * SECTOR, self.gtes, 4, "little")
        elif gd_index != self._current:
            self.reader.examine(table.offset, ENTRY_COST * self.gtes)
        self._current = gd_index
        return table

    def block(self, index: int) -> Iterator[Run]:
        start, gd_index = index * self.cluster, index // self.gtes
        sector = self.gd.entry(gd_index)
        if sector is None:
            yield self.beyond(gd_index * self.gtes * self.cluster, self.gd, gd_index)
            return
        if sector == 0:  # a grain table never allocated: all its grains unwritten
            first = gd_index * self.gtes * self.cluster
            yield Run(first, self.gtes * self.cluster, Kind.UNALLOCATED, entry=self.gd.at(gd_index))
            return
        table = self._gt(gd_index, sector)
        entry, at = table.entry(index % self.gtes), table.at(index % self.gtes)
        if entry is None:  # the grain table runs past the end of the file: the rest of it is unreadable
            end = (gd_index + 1) * self.gtes * self.cluster
            yield Run(start, end - start, Kind.INVALID, entry=at)
        elif entry == 0:  # with the unwritten grains after it in this table
            count = table.blank_run(index % self.gtes, self.gtes - index % self.gtes)
            yield Run(start, count * self.cluster, Kind.UNALLOCATED, entry=at)
        elif entry == ZEROED and self.zero_grain:
            yield Run(start, self.cluster, Kind.ZERO, entry=at)
        elif self.compressed:
            yield self._compressed(start, entry * SECTOR, at)
        else:  # with the grains stored right after it in this table
            count = table.stretch(index % self.gtes, self.gtes - index % self.gtes, self.cluster // SECTOR)
            run = self.target(start, count * self.cluster, entry * SECTOR, at)
            if count > 1 and run.kind is Kind.INVALID:  # one of them cannot be followed: grain by grain
                run = self.target(start, self.cluster, entry * SECTOR, at)
            yield run

    def _compressed(self, start: int, at_file: int, entry: int) -> Run:
        marker = MARKER_LAYOUT.unpack(self.reader.read(at_file, GRAIN_MARKER))
        if "size" not in marker:
            return Run(start, self.cluster, Kind.INVALID, at_file, entry=entry)
        return self.target(start, self.cluster, at_file, entry, Kind.COMPRESSED, GRAIN_MARKER + marker["size"])

    def decompress(self, run: Run) -> bytes:
        stored = min(run.stored_length, 2 * self.cluster + SECTOR) - GRAIN_MARKER  # deflate never grows this much
        return inflate(self.reader.read(run.offset + GRAIN_MARKER, stored), self.cluster, wbits=15)  # type: ignore[operator]

    def tables(self) -> Iterator[Table]:
        yield from self.fixed
        for name, directory in (("grain table", self.gd), ("redundant grain table", self.rgd)):
            if directory is None:
                continue
            for index in range(directory.count):
                sector = directory.entry(index)
                if sector:
                    yield Table(f"{name} {index}", sector * SECTOR, self.gtes * 4)


class ExtentMapping:
    """A descriptor's extent list: extents in other files are EXTERNAL, ZERO extents zeros.

    A FLAT extent whose name is this file's own stays EXTERNAL: qemu opens every extent of a descriptor
    (a text file, or a capacity-0 header's embedded one) by its path (``vmdk_parse_extents``:
    ``bdrv_open_child`` on the descriptor's folder plus the name), never through the file it is reading,
    so what it reads depends on what the name resolves to on the host (another file once the image is
    copied or renamed), which the sandboxed child, holding one descriptor, cannot know.
    """

    cluster = SECTOR
    backing = False

    def __init__(self, reader: Reader, size: int, extents: list[dict[str, Any]]) -> None:
        self.reader = reader
        self.size = size
        self.extents = extents

    def runs(self, start: int, length: int) -> Iterator[Run]:
        end, first = min(start + length, self.size), 0
        for ext in self.extents:  # the parser's list, capped
            last = min(first + ext["sectors"] * SECTOR, self.size)
            lo, hi = max(first, start), min(last, end)
            if lo < hi:
                yield self._run(ext, lo, hi - lo, lo - first)
            first = last
        if first < end:  # the extents do not cover the disk
            yield Run(max(first, start), end - max(first, start), Kind.INVALID)

    @staticmethod
    def _run(ext: dict[str, Any], start: int, length: int, within: int) -> Run:
        if ext["type"] == "ZERO":
            return Run(start, length, Kind.ZERO)
        if ext["external"]:
            return Run(start, length, Kind.EXTERNAL, ext["offset"] * SECTOR + within)
        return Run(start, length, Kind.INVALID)  # an extent in this file other than its own sparse header

    def tables(self) -> Iterator[Table]:
        yield Table("descriptor", 0, self.reader.size)

    def decompress(self, run: Run) -> bytes:
        raise Unmappable("a descriptor's extents have no compressed units")


@register("vmdk")
def vmdk(reader: Reader, info: Inspection) -> Mapping:
    refuse_encrypted(info)
    subformat = info.details.get("subformat")
    if subformat == "descriptor":
        return ExtentMapping(reader, info.virtual_size or 0, info.extents)
    if subformat == "cowd":
        return _cowd(reader)
    if subformat != "sparse":
        raise Unmappable(f"no mapping for {subformat or 'this'} VMDK")
    values = header(reader, KDMV_LAYOUT, 0, "VMDK sparse header")
    if values["capacity"] == 0 and values["descriptor_offset"]:  # qemu opens it through its descriptor alone
        return ExtentMapping(reader, info.virtual_size or 0, info.extents)
    footer = values["gd_offset"] == GD_AT_END
    if footer:
        values = header(reader, KDMV_LAYOUT, reader.size - 2 * SECTOR, "streamOptimized footer")
        if values["magic"] != KDMV or values["gd_offset"] == GD_AT_END:
            raise Unmappable("streamOptimized VMDK without a valid footer")
    if not 0 < values["grain_size"] <= MAX_GRAIN_SECTORS or not 0 < values["gtes_per_gt"] <= MAX_GTES_PER_GT:
        raise Unmappable(f"VMDK grain of {values['grain_size']} sectors, {values['gtes_per_gt']} entries per table")
    tables = -(-values["capacity"] // (values["grain_size"] * values["gtes_per_gt"]))
    if tables > MAX_L1_ENTRIES:
        raise Unmappable(f"VMDK grain directory of {tables} entries (qemu refuses more than {MAX_L1_ENTRIES})")
    if values["compression"] not in (0, 1):
        raise Unmappable(f"VMDK compression {values['compression']}")
    return SparseMapping(reader, values, footer, tables, SECTOR)


def _cowd(reader: Reader) -> SparseMapping:
    """An ESX COWD extent as qemu opens it (vmdk_open_vmfs_sparse): the header's grain directory size,
    4096 entries per grain table, no redundant directory, no zeroed or compressed grains."""
    v = header(reader, COWD_LAYOUT, 0, "COWD header")
    if not 0 < v["grain_size"] <= MAX_GRAIN_SECTORS or v["gd_entries"] > MAX_L1_ENTRIES:
        raise Unmappable(f"COWD grain of {v['grain_size']} sectors, {v['gd_entries']} grain directory entries")
    values = {"gtes_per_gt": COWD_GTES, "compression": 0, "flags": 0, "rgd_offset": 0, "descriptor_offset": 0}
    return SparseMapping(reader, v | values, False, v["gd_entries"], COWD_HEADER_LEN)
