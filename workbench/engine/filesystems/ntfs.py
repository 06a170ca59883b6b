"""NTFS: the boot sector, and the $Volume record (MFT entry 3) for the label, version and dirty flag."""

from __future__ import annotations

import struct
from typing import Any

from ..fields import Field, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock

SPECS = [
    Spec("oem_id", 3, "8s", "NTFS", "text"),
    Spec("bytes_per_sector", 11, "H"),
    Spec("sectors_per_cluster", 13, "B", "values above 0x80 mean 2^(256-n) sectors"),
    Spec("total_sectors", 40, "Q"),
    Spec("mft_cluster", 48, "Q"),
    Spec("mft_mirror_cluster", 56, "Q"),
    Spec("clusters_per_mft_record", 64, "b", "negative: 2^-n bytes"),
    Spec("serial", 72, "Q", "", "hex"),
]
VOLUME_RECORD = 3
VOLUME_NAME, VOLUME_INFORMATION, END = 0x60, 0x70, 0xFFFFFFFF
MAX_ATTRIBUTES = 64


def probe(view: View) -> bool:
    return view.read(3, 8) == b"NTFS    "


def _scale(code: int, unit: int) -> int:
    """NTFS's size encoding: positive counts units, negative n means 2^-n bytes."""
    return code * unit if code > 0 else 1 << min(-code, 31)


def _fixups(record: bytearray, sector: int) -> bool:
    """Apply the update sequence array; False when a sector's check value does not match."""
    usa, count = struct.unpack_from("<HH", record, 4)
    if usa + 2 * count > len(record) or count < 1:
        return False
    check = record[usa : usa + 2]
    for index in range(1, count):
        end = index * sector
        if end > len(record) or record[end - 2 : end] != check:
            return False
        record[end - 2 : end] = record[usa + 2 * index : usa + 2 * index + 2]
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
    if len(record) < size or record[:4] != b"FILE" or not _fixups(record, min(bps, size)):
        info.add("guest-malformed", f"NTFS $Volume record at volume offset {offset} is not a valid FILE record")
        return {}
    found: dict[str, Any] = {}
    at = struct.unpack_from("<H", record, 20)[0]
    for _ in range(MAX_ATTRIBUTES):
        if at + 24 > size:
            break
        kind, length = struct.unpack_from("<II", record, at)
        if kind == END or length < 24 or at + length > size:
            break
        if record[at + 8] == 0:  # resident
            value_length, value_offset = struct.unpack_from("<IH", record, at + 16)
            value = bytes(record[at + value_offset : at + value_offset + value_length])
            if kind == VOLUME_NAME:
                found["label"] = value.decode("utf-16-le", errors="replace")
            elif kind == VOLUME_INFORMATION and len(value) >= 12:
                found["version"] = f"{value[8]}.{value[9]}"
                found["flags"] = struct.unpack_from("<H", value, 10)[0]
        at += length
    return found


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, _ = superblock(view, info, "NTFS boot sector", 0, 512, SPECS, "<")
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
