"""Parallels expandable image: a 64-byte little-endian header, the BAT, then clusters.

Layout from qemu's docs/interop/parallels.rst; checks follow qemu's block/parallels.c.
"""

from __future__ import annotations

from ..fields import Layout, Spec
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("parallels",)
PRIORITY = 50

MAGIC = b"WithoutFreeSpace"
MAGIC_EXT = b"WithouFreSpacExt"
HEADER_SIZE = 64
SECTOR = 512
VERSION = 2
INUSE_OPEN = 0x746F6E59  # "Ynot": opened read-write and not closed
INUSE_CLOSED = 0x312E3276  # "v2.1"
EXT_MAGIC = 0xAB234CEF23DCEA87
MAX_TRACKS = 0x7FFFFFFF // 513  # qemu: "Too big cluster"
MAX_BAT = 0x7FFFFFFF // 4  # qemu: "Catalog too large"

HEADER = Layout(
    "header",
    [
        Spec("magic", 0, "16s", "WithoutFreeSpace, or WithouFreSpacExt (offsets in clusters)", "text"),
        Spec("version", 16, "I", "must be 2"),
        Spec("heads", 20, "I", "guest geometry"),
        Spec("cylinders", 24, "I", "guest geometry"),
        Spec("tracks", 28, "I", "cluster size in sectors"),
        Spec("bat_entries", 32, "I", "disk size in clusters"),
        Spec("nb_sectors", 36, "Q", "disk size in sectors (WithoutFreeSpace: low 32 bits only)"),
        Spec("inuse", 44, "I", "0x746F6E59 open read-write, 0x312E3276 closed, 0 old software", "hex"),
        Spec("data_off", 48, "I", "data area start in sectors (0: after the BAT)"),
        Spec("flags", 52, "I", "bit 0: empty image", "hex"),
        Spec("ext_off", 56, "Q", "format extension cluster, in sectors (0: none)"),
    ],
    "<",
)


def probe(reader: Reader) -> str | None:
    return "parallels" if reader.read(0, 16) in (MAGIC, MAGIC_EXT) else None


def parse(reader: Reader, info: Inspection) -> None:
    values, group, complete = info.structure(reader, HEADER, 0, "parallels.header-truncated", size=HEADER_SIZE)
    if not complete:
        return
    data = reader.read(0, HEADER_SIZE)  # served from the reader's cache
    ext = data[:16] == MAGIC_EXT
    sectors = values["nb_sectors"]
    info.virtual_size = sectors * SECTOR
    if not ext and sectors >> 32:
        info.malformed(
            "parallels.sectors-high-bits",
            f"nb_sectors 0x{sectors:x}: the high 32 bits must be clear in WithoutFreeSpace",
            HEADER.offset_of("nb_sectors"),
        )
        sectors &= 0xFFFFFFFF  # qemu uses only the low half; a reader of the 64-bit field sees the whole
        info.sizes(
            {"nb_sectors, low 32 bits (qemu)": sectors * SECTOR, "nb_sectors": info.virtual_size},
            HEADER.offset_of("nb_sectors"),
        )
    info.details.update({"extended": ext, "empty": bool(values["flags"] & 1)})
    if values["version"] != VERSION:
        info.malformed(
            "parallels.version", f"version {values['version']}, qemu reads only 2", HEADER.offset_of("version")
        )
    tracks = values["tracks"]
    if tracks == 0 or tracks > MAX_TRACKS:
        info.malformed(
            "parallels.cluster-size", f"cluster of {tracks} sectors (qemu refuses 0 and more than {MAX_TRACKS})", 28
        )
        return
    info.cluster_size = tracks * SECTOR
    _check_inuse(info, values["inuse"])
    _check_layout(reader, info, values, sectors)
    if values["ext_off"]:
        _check_extension(reader, info, values["ext_off"] * SECTOR)


def _check_inuse(info: Inspection, inuse: int) -> None:
    if inuse == INUSE_OPEN:
        info.dirty = True
        info.add(
            "dirty", "in-use marker 0x746F6E59: the image was open read-write and not closed", HEADER.offset_of("inuse")
        )
    elif inuse not in (0, INUSE_CLOSED):
        info.malformed(
            "parallels.in-use-marker",
            f"in-use marker 0x{inuse:08x} is not one of the defined values",
            HEADER.offset_of("inuse"),
        )


def _check_layout(reader: Reader, info: Inspection, v: dict[str, Any], sectors: int) -> None:
    """BAT and data area inside the file; the BAT covers the whole disk."""
    entries, cluster = v["bat_entries"], v["tracks"] * SECTOR
    if entries > MAX_BAT:
        info.malformed(
            "parallels.bat-too-large",
            f"{entries} BAT entries exceed qemu's limit of {MAX_BAT}",
            HEADER.offset_of("bat_entries"),
        )
        return
    bat_end = HEADER_SIZE + 4 * entries
    if bat_end > reader.size:
        info.malformed(
            "parallels.bat-past-eof",
            f"BAT of {entries} entries ends at {bat_end}, past the end of the file ({reader.size})",
            HEADER.offset_of("bat_entries"),
        )
    needed = -(-sectors // v["tracks"])
    if needed > entries:
        info.malformed(
            "parallels.bat-too-small",
            f"disk of {sectors} sectors needs {needed} BAT entries, the header has {entries}",
            HEADER.offset_of("bat_entries"),
        )
    data_off = v["data_off"] * SECTOR
    if data_off and data_off < bat_end:
        info.malformed(
            "parallels.data-in-bat",
            f"data area at {data_off} starts inside the BAT (ends at {bat_end})",
            HEADER.offset_of("data_off"),
        )
    if data_off > reader.size:
        info.malformed(
            "parallels.data-past-eof",
            f"data area at {data_off} starts past the end of the file ({reader.size})",
            HEADER.offset_of("data_off"),
        )
    if v["magic"] == MAGIC_EXT and (not data_off or data_off % cluster):
        info.malformed(
            "parallels.data-offset",
            f"data offset {data_off} must be non-zero and cluster aligned in WithouFreSpacExt",
            HEADER.offset_of("data_off"),
        )


def _check_extension(reader: Reader, info: Inspection, offset: int) -> None:
    magic = reader.read(offset, 8)
    value = int.from_bytes(magic, "little") if len(magic) == 8 else None
    info.details["format_extension"] = offset
    if value != EXT_MAGIC:
        shown = f"0x{value:016x}" if value is not None else "past the end of the file"
        info.malformed(
            "parallels.extension-magic", f"format extension at {offset}: magic {shown}, expected 0x{EXT_MAGIC:016X}", 56
        )
