"""VHDX: the BAT region holds little-endian 64-bit entries, a state in bits 0-2 and a file offset in
1 MiB units in bits 20-63. Payload block entries are interleaved with sector-bitmap entries: after every
``chunk ratio`` payload entries (2**23 sectors worth of blocks) comes the entry of the chunk's 1 MiB
sector bitmap, which says for a PARTIALLY_PRESENT block of a differencing disk which sectors are in this
file. The header parser's values (regions, block and sector size, the log) are used as they are; an
unreplayed log (qemu refuses to read such an image) is unmappable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..formats.vhdx import HEADER_OFFSETS, HEADER_SIZE, MIB, NULL_GUID, REGION_OFFSETS, REGION_TABLE_SIZE
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Run, Table, Unmappable, register
from .blocks import BlockMapping, EntryTable, bit_runs, refuse_encrypted

NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED, FULLY_PRESENT, PARTIALLY_PRESENT = 0, 1, 2, 3, 6, 7
BITMAP_PRESENT = 6
READS_ZERO = (UNDEFINED, ZERO, UNMAPPED)  # qemu's vhdx_block_translate reads these as zeros
CHUNK_SECTORS = 1 << 23
BITMAP_BLOCK = MIB


class VhdxMapping(BlockMapping):
    def __init__(self, reader: Reader, info: Inspection, d: dict[str, Any]) -> None:
        block, self.sector = d["block_size"], d["logical_sector_size"]
        self.ratio = CHUNK_SECTORS * self.sector // block
        self.backing = bool(d["has_parent"])
        bat, meta, log = d["regions"]["BAT"], d["regions"]["metadata"], d["log"]
        self.bat = EntryTable(reader, bat["offset"], bat["length"] // 8, 8, "little")
        fixed = [Table("file identifier", 0, HEADER_OFFSETS[0])]
        fixed += [Table(f"header {n}", at, HEADER_SIZE) for n, at in enumerate(HEADER_OFFSETS, 1)]
        fixed += [Table(f"region table {n}", at, REGION_TABLE_SIZE) for n, at in enumerate(REGION_OFFSETS, 1)]
        fixed += [Table("log", log["offset"], log["length"]), Table("BAT", bat["offset"], bat["length"])]
        fixed.append(Table("metadata region", meta["offset"], meta["length"]))
        super().__init__(reader, info.virtual_size or 0, block, fixed)

    def _index(self, block: int) -> int:
        return block + block // self.ratio

    def block(self, index: int) -> Iterator[Run]:
        start, where = index * self.cluster, self._index(index)
        entry, at = self.bat.entry(where), self.bat.at(where)
        if entry is None:
            yield self.beyond(start, self.bat, where)
            return
        state, offset = entry & 7, entry >> 20 << 20
        if state == NOT_PRESENT:
            yield Run(start, self.cluster, Kind.UNALLOCATED, entry=at)
        elif state in READS_ZERO:
            yield Run(start, self.cluster, Kind.ZERO, entry=at)
        elif state == FULLY_PRESENT or (state == PARTIALLY_PRESENT and not self.backing):
            yield self.target(start, self.cluster, offset, at)
        elif state == PARTIALLY_PRESENT:
            yield from self._partial(index, start, offset, at)
        else:  # reserved states 4 and 5
            yield Run(start, self.cluster, Kind.INVALID, offset, entry=at)

    def _bitmap(self, chunk: int) -> tuple[int, int | None]:
        """The file offset of a chunk's sector bitmap (0 when absent) and its entry's file offset."""
        where = chunk * (self.ratio + 1) + self.ratio
        entry = self.bat.entry(where)
        if entry is None or entry & 7 != BITMAP_PRESENT:
            return 0, self.bat.at(where)
        return entry >> 20 << 20, self.bat.at(where)

    def _partial(self, index: int, start: int, offset: int, at: int) -> Iterator[Run]:
        """A differencing disk's block: the sectors its chunk's bitmap marks present, the parent's elsewhere."""
        whole = self.target(start, self.cluster, offset, at)
        bitmap_at, _ = self._bitmap(index // self.ratio)
        sectors = self.cluster // self.sector
        first_bit = index % self.ratio * sectors
        if whole.kind is Kind.INVALID or not bitmap_at or bitmap_at + BITMAP_BLOCK > self.reader.size:
            yield Run(start, self.cluster, Kind.INVALID, offset, entry=at)
            return
        bits = self.reader.read(bitmap_at + first_bit // 8, sectors // 8)
        for first, count, present in bit_runs(bits, sectors, msb_first=False):
            guest, length = start + first * self.sector, count * self.sector
            if present:
                yield Run(guest, length, Kind.DATA, offset + first * self.sector, entry=at)
            else:
                yield Run(guest, length, Kind.UNALLOCATED, entry=at)

    def tables(self) -> Iterator[Table]:
        yield from self.fixed
        chunks = -(-self.bat.count // (self.ratio + 1))
        for chunk in range(chunks):
            bitmap_at, _ = self._bitmap(chunk)
            if bitmap_at:
                yield Table(f"sector bitmap {chunk}", bitmap_at, BITMAP_BLOCK)


@register("vhdx")
def vhdx(reader: Reader, info: Inspection) -> VhdxMapping:
    refuse_encrypted(info)
    d = info.details
    log = d.get("log")
    if log and log.get("guid") != NULL_GUID:
        raise Unmappable(f"VHDX log {log.get('guid')} not replayed: qemu refuses to read the image")
    regions = d.get("regions") or {}
    block, sector = d.get("block_size"), d.get("logical_sector_size")
    if not log or "BAT" not in regions or "metadata" not in regions or info.cluster_size != block or not block:
        raise Unmappable("VHDX without a usable header, region table, BAT or block size")
    if sector not in (512, 4096):
        raise Unmappable(f"VHDX logical sector size {sector}")
    return VhdxMapping(reader, info, d)
