"""Parallels expandable image: a 64-byte header, then the BAT, one little-endian 32-bit entry per
cluster. An entry is the cluster's file offset in sectors (``WithoutFreeSpace``) or in clusters
(``WithouFreSpacExt``), 0 for a cluster never written (qemu's block/parallels.c)."""

from __future__ import annotations

from collections.abc import Iterator

from ..formats.parallels import HEADER, HEADER_SIZE, MAGIC_EXT, MAX_BAT, MAX_TRACKS, SECTOR
from ..inspection import Inspection
from ..reader import Reader
from . import Kind, Run, Table, Unmappable, register
from .blocks import BlockMapping, EntryTable, header, refuse_encrypted

EXTENSION_CLUSTER = 1  # the format extension occupies one cluster


class ParallelsMapping(BlockMapping):
    def __init__(self, reader: Reader, v: dict[str, int], ext: bool) -> None:
        tracks = v["tracks"]
        self.bat = EntryTable(reader, HEADER_SIZE, v["bat_entries"], 4, "little")
        self.unit = tracks * SECTOR if ext else SECTOR
        fixed = [Table("header", 0, HEADER_SIZE), Table("BAT", HEADER_SIZE, self.bat.length)]
        if v["ext_off"]:
            fixed.append(Table("format extension", v["ext_off"] * SECTOR, tracks * SECTOR * EXTENSION_CLUSTER))
        sectors = v["nb_sectors"] if ext else v["nb_sectors"] & 0xFFFFFFFF  # qemu reads the low half only
        super().__init__(reader, sectors * SECTOR, tracks * SECTOR, fixed)

    def block(self, index: int) -> Iterator[Run]:
        start, entry = index * self.cluster, self.bat.entry(index)
        at = self.bat.at(index)
        if entry is None:
            yield self.beyond(start, self.bat, index)
        elif entry == 0:
            yield Run(start, self.cluster, Kind.UNALLOCATED, entry=at)
        else:
            yield self.target(start, self.cluster, entry * self.unit, at)


@register("parallels")
def parallels(reader: Reader, info: Inspection) -> ParallelsMapping:
    refuse_encrypted(info)
    values = header(reader, HEADER, 0, "Parallels header")
    if not 0 < values["tracks"] <= MAX_TRACKS or values["bat_entries"] > MAX_BAT:
        raise Unmappable(f"Parallels cluster of {values['tracks']} sectors, {values['bat_entries']} BAT entries")
    return ParallelsMapping(reader, values, values["magic"] == MAGIC_EXT)
