"""VDI: a 512-byte header, the block map (one little-endian 32-bit block number per guest block), then
the blocks. Block numbers 0xFFFFFFFF (never written) and 0xFFFFFFFE (discarded) read as zeros, which
``qemu-img map`` reports as zero blocks (qemu's block/vdi.c)."""

from __future__ import annotations

from collections.abc import Iterator

from ..formats.vdi import HEADER, HEADER_SIZE, MAX_BLOCKS
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Run, Table, Unmappable, register
from .blocks import BlockMapping, EntryTable, header, refuse_encrypted

UNALLOCATED, DISCARDED = 0xFFFFFFFF, 0xFFFFFFFE
MAX_BLOCK = 1 << 30  # larger blocks are refused (qemu opens only 1 MiB blocks)


class VdiMapping(BlockMapping):
    def __init__(self, reader: Reader, info: Inspection, v: dict[str, int]) -> None:
        self.map = EntryTable(reader, v["offset_bmap"], min(v["blocks_in_image"], MAX_BLOCKS), 4, "little")
        fixed = [Table("header", 0, HEADER_SIZE), Table("block map", self.map.offset, self.map.length)]
        super().__init__(reader, info.virtual_size or 0, v["block_size"], fixed)
        self.data = v["offset_data"]

    def block(self, index: int) -> Iterator[Run]:
        start, entry = index * self.cluster, self.map.entry(index)
        if entry is None:
            yield self.beyond(start, self.map, index)
        elif entry in (UNALLOCATED, DISCARDED):
            yield Run(start, self.cluster, Kind.ZERO, entry=self.map.at(index))
        else:
            yield self.target(start, self.cluster, self.data + entry * self.cluster, self.map.at(index))


@register("vdi")
def vdi(reader: Reader, info: Inspection) -> VdiMapping:
    refuse_encrypted(info)
    values = header(reader, HEADER, 0, "VDI header")
    if values["block_extra"] or not 0 < values["block_size"] <= MAX_BLOCK or values["block_size"] % 512:
        raise Unmappable(f"VDI block size {values['block_size']} with {values['block_extra']} extra bytes")
    return VdiMapping(reader, info, values)
