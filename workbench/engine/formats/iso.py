"""ISO 9660 (ECMA-119) volume descriptors, El Torito boot records, Joliet, and a UDF note.

The volume descriptor set starts at sector 16 (byte 32768, 2 KiB sectors): each descriptor has a type
byte and a 5-byte identifier. ``CD001`` descriptors end with a terminator (type 255); a UDF volume
recognition sequence (ECMA-167: ``BEA01``, ``NSR02``/``NSR03``, ``TEA01``) may follow in the next
sectors, or stand alone in a pure UDF image. qemu treats all of this as raw data, so the virtual size is
the file size. The 32 KiB system area before it is free for anything: a partition table (hybrid ISO) or
another format's header (a polyglot), which detection lists separately.
"""

from __future__ import annotations

from ..fields import Field, Layout, Spec, clean_text
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("iso",)
PRIORITY = 20
HYBRID = True  # a hybrid ISO carries an MBR/GPT for USB boot: legitimate, not a polyglot
RAW_COMPATIBLE = True

SECTOR = 2048
FIRST = 16 * SECTOR
MAX_DESCRIPTORS = 16
ISO_ID = b"CD001"
UDF_IDS = (b"BEA01", b"NSR02", b"NSR03", b"TEA01")
OTHER_IDS = (b"BOOT2", b"CDW02")  # ECMA-167 boot descriptor, ECMA-168
TERMINATOR = 255
TYPE_NAMES = {0: "boot record", 1: "primary", 2: "supplementary", 3: "partition", 255: "terminator"}
EL_TORITO = "EL TORITO SPECIFICATION"
JOLIET_ESCAPES = {b"%/@": 1, b"%/C": 2, b"%/E": 3}

DESCRIPTOR = Layout(
    "volume descriptor",
    [
        Spec("type", 0, "B", "0 boot, 1 primary, 2 supplementary, 3 partition, 255 terminator"),
        Spec("identifier", 1, "5s", "CD001", "text"),
        Spec("version", 6, "B"),
    ],
    "<",
)
VOLUME = DESCRIPTOR.extended(
    Spec("system_id", 8, "32s", "", "text"),
    Spec("volume_id", 40, "32s", "", "text"),
    Spec("volume_space_size", 80, "I", "logical blocks (little-endian half)"),
    Spec("logical_block_size", 128, "H", "bytes (little-endian half)"),
    Spec("volume_set_id", 190, "128s", "", "text"),
    Spec("publisher_id", 318, "128s", "", "text"),
    Spec("preparer_id", 446, "128s", "", "text"),
    Spec("application_id", 574, "128s", "", "text"),
    Spec("creation_date", 813, "16s", "YYYYMMDDHHMMSScc", "text"),
)
JOLIET = VOLUME.extended(Spec("escape_sequences", 88, "32s", "%/@ %/C %/E: Joliet levels 1, 2, 3", "bytes"))
BOOT = DESCRIPTOR.extended(
    Spec("boot_system_id", 7, "32s", "EL TORITO SPECIFICATION for El Torito", "text"),
    Spec("boot_id", 39, "32s", "", "text"),
    Spec("boot_catalog_sector", 71, "I", "El Torito: sector of the boot catalog"),
)
BY_TYPE = {0: BOOT, 1: VOLUME, 2: JOLIET}
BIG_ENDIAN = Layout(
    "big-endian copies",
    [
        Spec("volume_space_size_be", 84, "I", "big-endian copy"),
        Spec("logical_block_size_be", 130, "H", "big-endian copy"),
    ],
    ">",
)
CATALOG = Layout(
    "El Torito boot catalog",
    [
        Spec("header_id", 0, "B", "1: validation entry"),
        Spec("platform_id", 1, "B", "0 x86, 1 PowerPC, 2 Mac, 0xEF EFI"),
        Spec("id_string", 4, "24s", "", "text"),
        Spec("key", 30, "2s", "55aa", "bytes"),
        Spec("boot_indicator", 32, "B", "default entry: 0x88 bootable"),
        Spec("media_type", 33, "B", "0 no emulation, 1-3 floppy, 4 hard disk"),
        Spec("sector_count", 38, "H", "512-byte sectors loaded"),
        Spec("load_rba", 40, "I", "image start, in 2 KiB sectors"),
    ],
    "<",
)


def probe(reader: Reader) -> str | None:
    return "iso" if reader.read(FIRST + 1, 5) in (ISO_ID, *UDF_IDS) else None


def parse(reader: Reader, info: Inspection) -> None:
    found: dict[str, Any] = {"udf": []}
    for index in range(MAX_DESCRIPTORS):
        offset = FIRST + index * SECTOR
        data = reader.read(offset, SECTOR)
        ident = data[1:6]
        if len(data) < SECTOR or ident not in (ISO_ID, *UDF_IDS, *OTHER_IDS):
            if len(data) < SECTOR and ident:
                info.malformed(
                    "iso.descriptor-truncated",
                    f"volume descriptor at {offset} truncated: {len(data)} of {SECTOR} bytes",
                    offset,
                )
            break
        if ident == ISO_ID:
            _iso_descriptor(reader, info, data, offset, found)
        else:
            _other_descriptor(info, data, offset, found)
            if ident == b"TEA01":
                break
    else:
        info.details["descriptors_not_walked"] = f"stopped after {MAX_DESCRIPTORS} descriptors"
    _summarise(reader, info, found)


def _iso_descriptor(reader: Reader, info: Inspection, data: bytes, offset: int, found: dict[str, Any]) -> None:
    kind = data[0]
    label = f"{TYPE_NAMES.get(kind, f'type {kind}')} volume descriptor"
    values, group = BY_TYPE.get(kind, DESCRIPTOR).read(data, offset, label)
    info.fields.append(group)
    if kind in (1, 2):
        copies, extra = BIG_ENDIAN.read(data, offset)
        values.update(copies)
        group.children.extend(extra.children)
    if kind == 1 and "primary" not in found:
        found["primary"] = values
        _check_both_endian(info, values, offset)
    elif kind == 2 and values.get("escape_sequences", b"")[:3] in JOLIET_ESCAPES:
        found["joliet"] = JOLIET_ESCAPES[values["escape_sequences"][:3]]
    elif kind == 0 and clean_text(values["boot_system_id"]) == EL_TORITO:
        _boot_catalog(reader, info, values["boot_catalog_sector"], BOOT.offset_of("boot_catalog_sector", offset))
    elif kind == TERMINATOR:
        found["terminated"] = True


def _other_descriptor(info: Inspection, data: bytes, offset: int, found: dict[str, Any]) -> None:
    ident = data[1:6].decode("ascii")
    if data[1:6] in UDF_IDS:
        found["udf"].append(ident)
    info.fields.append(Field(f"{ident} descriptor", offset, SECTOR, ident, "ECMA-167 volume recognition sequence"))


def _check_both_endian(info: Inspection, values: dict[str, Any], offset: int) -> None:
    """ECMA-119 stores sizes twice, little- then big-endian; a mismatch means the bytes were edited."""
    for name in ("volume_space_size", "logical_block_size"):
        if values[name] != values[f"{name}_be"]:
            info.malformed(
                "iso.both-endian-differ",
                f"{name.replace('_', ' ')}: little-endian {values[name]} but big-endian {values[f'{name}_be']}",
                VOLUME.offset_of(name, offset),
            )


def _boot_catalog(reader: Reader, info: Inspection, sector: int, at: int) -> None:
    offset = sector * SECTOR
    data = reader.read(offset, 64)
    if len(data) < 64:
        info.malformed(
            "iso.boot-catalog-past-eof", f"El Torito boot catalog sector {sector} lies past the end of the file", at
        )
        return
    values, group = CATALOG.read(data, offset)
    info.fields.append(group)
    words = sum(int.from_bytes(data[i : i + 2], "little") for i in range(0, 32, 2)) & 0xFFFF
    if values["header_id"] != 1 or values["key"] != b"\x55\xaa" or words:
        info.malformed(
            "iso.boot-validation-entry",
            f"El Torito validation entry at {offset} is invalid (id, key or checksum)",
            offset,
        )
    info.details["el_torito"] = {
        "catalog_sector": sector,
        "platform_id": values["platform_id"],
        "bootable": values["boot_indicator"] == 0x88,
        "load_rba": values["load_rba"],
    }


def _summarise(reader: Reader, info: Inspection, found: dict[str, Any]) -> None:
    info.virtual_size = reader.size  # qemu reads an ISO as raw
    primary = found.get("primary")
    if found["udf"]:
        info.details["udf"] = found["udf"]
    if primary is None:
        if not found["udf"]:
            info.malformed("iso.no-primary-descriptor", "no primary volume descriptor", FIRST)
        else:
            info.details["udf_only"] = True
        return
    if not found.get("terminated"):
        info.malformed("iso.no-terminator", "the volume descriptor set has no terminator", FIRST)
    block = primary["logical_block_size"]
    volume = primary["volume_space_size"] * block
    info.details.update(
        {
            "volume_id": clean_text(primary["volume_id"]).strip(),
            "system_id": clean_text(primary["system_id"]).strip(),
            "publisher_id": clean_text(primary["publisher_id"]).strip(),
            "application_id": clean_text(primary["application_id"]).strip(),
            "creation_date": clean_text(primary["creation_date"]),
            "logical_block_size": block,
            "volume_size": volume,
            "joliet_level": found.get("joliet"),
        }
    )
    if volume > reader.size:
        info.malformed(
            "iso.volume-past-eof",
            f"volume claims {volume} bytes, the file has {reader.size}: truncated image",
            VOLUME.offset_of("volume_space_size", FIRST),
        )
    if block not in (512, 1024, 2048):
        info.malformed(
            "iso.block-size",
            f"logical block size {block} is not 512, 1024 or 2048",
            VOLUME.offset_of("logical_block_size", FIRST),
        )
