"""NTFS: the boot sector, and the $Volume record (MFT entry 3) for the label, version and dirty flag."""

from __future__ import annotations

from typing import Any

from ..fields import Field, Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock

OEM_ID = b"NTFS    "
BOOT_SECTOR = Layout(
    "NTFS boot sector",
    [
        Spec("oem_id", 3, "8s", "NTFS", "text"),
        Spec("bytes_per_sector", 11, "H"),
        Spec("sectors_per_cluster", 13, "B", "values above 0x80 mean 2^(256-n) sectors"),
        Spec("total_sectors", 40, "Q"),
        Spec("mft_cluster", 48, "Q"),
        Spec("mft_mirror_cluster", 56, "Q"),
        Spec("clusters_per_mft_record", 64, "b", "negative: 2^-n bytes"),
        Spec("serial", 72, "Q", "", "hex"),
    ],
    "<",
)
RECORD = Layout(
    "MFT record header",
    [
        Spec("magic", 0, "4s", "FILE"),
        Spec("usa_offset", 4, "H", "update sequence array"),
        Spec("usa_count", 6, "H"),
        Spec("attributes_offset", 20, "H"),
    ],
    "<",
)
RECORD_MAGIC = b"FILE"
ATTRIBUTE = Layout(
    "MFT attribute header",
    [
        Spec("type", 0, "I"),
        Spec("length", 4, "I"),
        Spec("non_resident", 8, "B"),
        Spec("value_length", 16, "I", "resident"),
        Spec("value_offset", 20, "H", "resident"),
        Spec("resident_flags", 22, "B"),
        Spec("reserved", 23, "B"),
    ],
    "<",
)
VOLUME_INFO = Layout("$VOLUME_INFORMATION", [Spec("major", 8, "B"), Spec("minor", 9, "B"), Spec("flags", 10, "H")], "<")
USN = 2  # bytes of the update sequence number at the end of every sector
VOLUME_RECORD = 3
VOLUME_NAME, VOLUME_INFORMATION, END = 0x60, 0x70, 0xFFFFFFFF
MAX_ATTRIBUTES = 64


def probe(view: View) -> bool:
    return view.read(BOOT_SECTOR.offset_of("oem_id"), len(OEM_ID)) == OEM_ID


def _scale(code: int, unit: int) -> int:
    """NTFS's size encoding: positive counts units, negative n means 2^-n bytes."""
    return code * unit if code > 0 else 1 << min(-code, 31)


def _fixups(record: bytearray, sector: int) -> bool:
    """Apply the update sequence array; False when a sector's check value does not match."""
    header = RECORD.unpack_from(record)
    usa, count = header["usa_offset"], header["usa_count"]
    if usa + USN * count > len(record) or count < 1:
        return False
    check = record[usa : usa + USN]
    for index in range(1, count):
        end = index * sector
        if end > len(record) or record[end - USN : end] != check:
            return False
        record[end - USN : end] = record[usa + USN * index : usa + USN * (index + 1)]
    return True


def _volume(view: View, info: Inspection, values: dict[str, Any]) -> dict[str, Any]:
    bps = values["bytes_per_sector"]
    spc = values["sectors_per_cluster"]
    cluster = bps * spc if spc <= 0x80 else bps << min(256 - spc, 20)
    size = _scale(values["clusters_per_mft_record"], cluster)
    if not 256 <= size <= 65536 or bps not in (256, 512, 1024, 2048, 4096):
        info.add("guest-malformed", f"NTFS MFT record size {size} or sector size {bps} is not plausible")
        return {}
    offset = values["mft_cluster"] * cluster + VOLUME_RECORD * size
    record = bytearray(view.read(offset, size))
    info.fields.append(Field("NTFS $Volume record", view.guest_offset(offset), len(record), None, "MFT entry 3"))
    if len(record) < size or RECORD.unpack_from(record)["magic"] != RECORD_MAGIC or not _fixups(record, min(bps, size)):
        info.add("guest-malformed", f"NTFS $Volume record at volume offset {offset} is not a valid FILE record")
        return {}
    found: dict[str, Any] = {}
    at = RECORD.unpack_from(record)["attributes_offset"]
    for _ in range(MAX_ATTRIBUTES):
        if at + ATTRIBUTE.size > size:
            break
        attribute = ATTRIBUTE.unpack_from(record, at)
        kind, length = attribute["type"], attribute["length"]
        if kind == END or length < ATTRIBUTE.size or at + length > size:
            break
        if attribute["non_resident"] == 0:
            start = at + attribute["value_offset"]
            value = bytes(record[start : start + attribute["value_length"]])
            if kind == VOLUME_NAME:
                found["label"] = value.decode("utf-16-le", errors="replace")
            elif kind == VOLUME_INFORMATION and len(value) >= VOLUME_INFO.size:
                info_values = VOLUME_INFO.unpack(value)
                found["version"] = f"{info_values['major']}.{info_values['minor']}"
                found["flags"] = info_values["flags"]
        at += length
    return found


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, _ = superblock(view, info, BOOT_SECTOR, 0, 512)
    volume = _volume(view, info, values)
    flags = volume.get("flags", 0)
    sectors = values["sectors_per_cluster"]
    return summary(
        "ntfs",
        label=volume.get("label") or None,
        uuid=f"{values['serial']:016X}",
        size=values["total_sectors"] * values["bytes_per_sector"],
        block_size=values["bytes_per_sector"] * sectors if sectors <= 0x80 else None,
        state="dirty" if flags & 1 else "clean" if volume else None,
        version=volume.get("version"),
    )
