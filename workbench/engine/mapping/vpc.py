"""VHD (qemu's ``vpc``). A fixed disk is its data then a 512-byte footer. A dynamic or differencing disk
keeps a footer copy at offset 0, a dynamic header, and a BAT of big-endian 32-bit sector numbers, one per
block; an allocated block is a sector bitmap then the block's data. qemu ignores the bitmap and reads a
block never written (0xFFFFFFFF) as zeros; a differencing disk's bitmap says which sectors are its own,
the others (and whole unwritten blocks) come from the parent."""

from __future__ import annotations

from collections.abc import Iterator

from ..formats.vpc import (
    DIFFERENCING,
    DYN_LEN,
    DYNAMIC_HEADER,
    FOOTER,
    FOOTER_LEN,
    LOCATOR,
    LOCATOR_AT,
    LOCATOR_COUNT,
    MAX_SECTORS,
    SECTOR,
)
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, LinearMapping, Mapping, Run, Table, Unmappable, register
from .blocks import BlockMapping, EntryTable, bit_runs, header, refuse_encrypted

UNALLOCATED = 0xFFFFFFFF
MAX_BLOCK = 1 << 30  # a bitmap of at most 256 KiB per block


class VhdMapping(BlockMapping):
    def __init__(self, reader: Reader, info: Inspection, footer: dict[str, int], dyn: dict[str, int]) -> None:
        block = dyn["block_size"]
        self.bat = EntryTable(reader, dyn["table_offset"], min(dyn["max_table_entries"], MAX_SECTORS), 4, "big")
        self.bitmap = -(-block // SECTOR // 8 // SECTOR) * SECTOR
        self.backing = footer["disk_type"] == DIFFERENCING
        fixed = [
            Table("footer copy", 0, FOOTER_LEN),
            Table("dynamic header", footer["data_offset"], DYN_LEN),
            Table("BAT", self.bat.offset, self.bat.length),
            Table("footer", reader.size - FOOTER_LEN, FOOTER_LEN),
        ]
        super().__init__(reader, info.virtual_size or 0, block, fixed)
        self.locators = list(_locators(reader, footer["data_offset"]))

    def block(self, index: int) -> Iterator[Run]:
        start, entry = index * self.cluster, self.bat.entry(index)
        at = self.bat.at(index)
        if entry is None:
            yield self.beyond(start, self.bat, index)
        elif entry == UNALLOCATED:
            yield Run(start, self.cluster, Kind.UNALLOCATED if self.backing else Kind.ZERO, entry=at)
        elif not self.backing:
            yield self.target(start, self.cluster, entry * SECTOR + self.bitmap, at)
        else:
            yield from self._sectors(start, entry * SECTOR, at)

    def _sectors(self, start: int, bitmap_at: int, at: int | None) -> Iterator[Run]:
        """A differencing disk's block: its sectors whose bitmap bit is set, the parent's elsewhere."""
        whole = self.target(start, self.cluster + self.bitmap, bitmap_at, at)
        if whole.kind is Kind.INVALID:
            yield Run(start, self.cluster, Kind.INVALID, bitmap_at + self.bitmap, entry=at)
            return
        bitmap = self.reader.read(bitmap_at, self.bitmap)
        for first, count, present in bit_runs(bitmap, self.cluster // SECTOR, msb_first=True):
            guest, length = start + first * SECTOR, count * SECTOR
            if present:
                yield Run(guest, length, Kind.DATA, bitmap_at + self.bitmap + first * SECTOR, entry=at)
            else:
                yield Run(guest, length, Kind.UNALLOCATED, entry=at)

    def tables(self) -> Iterator[Table]:
        yield from self.fixed
        yield from self.locators
        for index in range(self.bat.count):
            entry = self.bat.entry(index)
            if entry is not None and entry != UNALLOCATED:
                yield Table(f"sector bitmap {index}", entry * SECTOR, self.bitmap)


def _locators(reader: Reader, at: int) -> Iterator[Table]:
    """The parent locators' data (differencing disks): metadata that lies between the tables and blocks."""
    raw = reader.read(at + LOCATOR_AT, LOCATOR_COUNT * LOCATOR.size)
    for number in range(LOCATOR_COUNT):
        values = LOCATOR.unpack(raw[number * LOCATOR.size : (number + 1) * LOCATOR.size])
        if values.get("data_length"):
            yield Table(f"parent locator {number + 1}", values["data_offset"], values["data_length"])


@register("vpc")
def vpc(reader: Reader, info: Inspection) -> Mapping:
    refuse_encrypted(info)
    if info.details.get("disk_type") == "fixed":
        data = max(0, reader.size - FOOTER_LEN)
        return LinearMapping(reader, min(info.virtual_size or 0, data), tables=(Table("footer", data, FOOTER_LEN),))
    if info.details.get("disk_type") not in ("dynamic", "differencing"):
        raise Unmappable(f"no mapping for a VHD of disk type {info.details.get('disk_type', 'unknown')}")
    footer = header(reader, FOOTER, 0, "VHD footer copy")  # qemu reads the copy at offset 0 first
    dyn = header(reader, DYNAMIC_HEADER, footer["data_offset"], "VHD dynamic header")
    block = dyn["block_size"]
    if not SECTOR <= block <= MAX_BLOCK or block & (block - 1):
        raise Unmappable(f"VHD block size {block} is not a power of two from 512 to {MAX_BLOCK}")
    return VhdMapping(reader, info, footer, dyn)
