"""Bochs growing redolog: a 512-byte little-endian header, a catalog of extents, then bitmap+extent pairs.

Layout and limits from qemu's block/bochs.c (qemu opens only type "Redolog", subtype "Growing").
Version 1 headers lack the reserved word, so the disk size sits 4 bytes earlier.
"""

from __future__ import annotations

from ..checks import is_power_of_two
from ..fields import Field, Layout, Spec, clean_text
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("bochs",)
PRIORITY = 50

MAGIC = b"Bochs Virtual HD Image"
HEADER_SIZE = 512
SECTOR = 512
VERSIONS = {0x00020000: 88, 0x00010000: 84}  # version -> offset of the disk size
MAX_CATALOG = 0x100000  # qemu: "Catalog size is too large"
MAX_EXTENT = 0x800000  # qemu: "Extent size is too large"

HEADER = Layout(
    "header",
    [
        Spec("magic", 0, "32s", "Bochs Virtual HD Image", "text"),
        Spec("type", 32, "16s", "Redolog", "text"),
        Spec("subtype", 48, "16s", "Growing (qemu), Undoable or Volatile", "text"),
        Spec("version", 64, "I", "0x00020000, or 0x00010000 for the old layout", "hex"),
        Spec("header", 68, "I", "header size: the catalog starts here"),
        Spec("catalog", 72, "I", "catalog entries (extents)"),
        Spec("bitmap", 76, "I", "bitmap size in bytes"),
        Spec("extent", 80, "I", "extent size in bytes"),
    ],
    "<",
)


def probe(reader: Reader) -> str | None:
    return "bochs" if reader.read(0, len(MAGIC) + 1) == MAGIC + b"\0" else None


def parse(reader: Reader, info: Inspection) -> None:
    values, group, complete = info.structure(reader, HEADER, 0, "bochs.header-truncated", size=HEADER_SIZE)
    if not complete:
        return
    data = reader.read(0, HEADER_SIZE)  # served from the reader's cache
    version = values["version"]
    kind, subtype = clean_text(values["type"]), clean_text(values["subtype"])
    info.details.update({"type": kind, "subtype": subtype, "version": f"0x{version:08x}"})
    if (kind, subtype) != ("Redolog", "Growing"):
        info.add(
            "unknown-features",
            f"type {kind!r} subtype {subtype!r}: qemu opens only a Growing Redolog",
            HEADER.offset_of("type"),
        )
    if version not in VERSIONS:
        info.add("unknown-features", f"version 0x{version:08x} is neither 1 nor 2", HEADER.offset_of("version"))
        return
    size_at = VERSIONS[version]
    disk = int.from_bytes(data[size_at : size_at + 8], "little")
    group.add(Field("disk", size_at, 8, disk, "virtual size in bytes"))
    group.size = size_at + 8
    info.virtual_size = disk // SECTOR * SECTOR  # qemu counts whole sectors
    info.cluster_size = values["extent"]
    _check(reader, info, values, info.virtual_size)


def _check(reader: Reader, info: Inspection, v: dict[str, Any], size: int) -> None:
    """What qemu's bochs_open refuses, and the catalog inside the file."""
    catalog, extent = v["catalog"], v["extent"]
    if catalog > MAX_CATALOG:
        info.malformed(
            "bochs.catalog-too-large", f"catalog of {catalog} entries exceeds qemu's limit of {MAX_CATALOG}", 72
        )
    if extent < SECTOR or not is_power_of_two(extent) or extent > MAX_EXTENT:
        info.malformed(
            "bochs.extent-size",
            f"extent size {extent} is not a power of 2 from 512 to {MAX_EXTENT}",
            HEADER.offset_of("extent"),
        )
    elif catalog < -(-size // extent):
        info.malformed(
            "bochs.catalog-too-small", f"catalog of {catalog} extents cannot cover a disk of {size} bytes", 72
        )
    catalog_end = v["header"] + 4 * catalog
    if v["header"] < HEADER_SIZE:
        info.malformed(
            "bochs.catalog-in-header",
            f"header size {v['header']} puts the catalog inside the header",
            HEADER.offset_of("header"),
        )
    if catalog_end > reader.size:
        info.malformed(
            "bochs.catalog-past-eof", f"catalog ends at {catalog_end}, past the end of the file ({reader.size})", 68
        )
