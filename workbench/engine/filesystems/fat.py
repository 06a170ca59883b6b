"""FAT12/16/32: the BIOS parameter block of the boot sector; the FAT type follows from the cluster count."""

from __future__ import annotations

from typing import Any

from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock

BPB = Layout(
    "FAT boot sector",
    [
        Spec("oem_name", 3, "8s", "", "text"),
        Spec("bytes_per_sector", 11, "H"),
        Spec("sectors_per_cluster", 13, "B"),
        Spec("reserved_sectors", 14, "H"),
        Spec("fat_count", 16, "B"),
        Spec("root_entries", 17, "H"),
        Spec("total_sectors_16", 19, "H"),
        Spec("media", 21, "B", "", "hex"),
        Spec("fat_size_16", 22, "H"),
        Spec("total_sectors_32", 32, "I"),
    ],
    "<",
)
EXTENDED_16 = Layout(
    "FAT extended BPB",
    [
        Spec("boot_signature", 38, "B", "0x29: serial, label and type follow", "hex"),
        Spec("serial", 39, "I", "", "hex"),
        Spec("label", 43, "11s", "", "text"),
        Spec("fs_type", 54, "8s", "", "text"),
    ],
    "<",
    "FAT12/16 extended boot record",
)
EXTENDED_32 = Layout(
    "FAT extended BPB",
    [
        Spec("fat_size_32", 36, "I"),
        Spec("root_cluster", 44, "I"),
        Spec("boot_signature", 66, "B", "0x29: serial, label and type follow", "hex"),
        Spec("serial", 67, "I", "", "hex"),
        Spec("label", 71, "11s", "", "text"),
        Spec("fs_type", 82, "8s", "", "text"),
    ],
    "<",
    "FAT32 extended boot record",
)
SECTOR_END = Layout("boot sector signature", [Spec("signature", 510, "2s", "55 aa", "bytes")], "<")
SIGNATURE = b"\x55\xaa"
OTHER_BOOT_SECTORS = (b"NTFS    ", b"EXFAT   ")  # the same signature, with these names: not FAT


def probe(view: View) -> bool:
    sector = view.read(0, SECTOR_END.size)
    if len(sector) < SECTOR_END.size or SECTOR_END.unpack(sector)["signature"] != SIGNATURE:
        return False
    bpb = BPB.unpack(sector)
    if bpb["oem_name"] in OTHER_BOOT_SECTORS:
        return False
    bps, spc = bpb["bytes_per_sector"], bpb["sectors_per_cluster"]
    return bps in (512, 1024, 2048, 4096) and spc > 0 and not spc & (spc - 1) and bpb["fat_count"] in (1, 2)


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, _ = superblock(view, info, BPB, 0, SECTOR_END.size)
    extended = EXTENDED_32 if values["fat_size_16"] == 0 else EXTENDED_16
    ext, _, _ = superblock(view, info, extended, 0, SECTOR_END.size)
    bps, spc = values["bytes_per_sector"], values["sectors_per_cluster"]
    total = values["total_sectors_16"] or values["total_sectors_32"]
    fat_size = values["fat_size_16"] or ext.get("fat_size_32", 0)
    root_sectors = (values["root_entries"] * 32 + bps - 1) // bps
    data = total - values["reserved_sectors"] - values["fat_count"] * fat_size - root_sectors
    clusters = max(0, data) // spc
    version = "FAT12" if clusters < 4085 else "FAT16" if clusters < 65525 else "FAT32"
    has_ext = ext.get("boot_signature") in (0x28, 0x29)
    serial = ext.get("serial", 0) if has_ext else None
    label = extended.shown(ext, "label", "").rstrip() if ext.get("boot_signature") == 0x29 else ""
    return summary(
        "vfat",
        label=label if label and label != "NO NAME" else None,
        uuid=f"{serial >> 16:04X}-{serial & 0xFFFF:04X}" if serial is not None else None,
        size=total * bps,
        block_size=bps * spc,
        version=version,
        clusters=clusters,
    )
