"""exFAT: the main boot sector (``EXFAT   `` at 3) and the volume label entry of the root directory."""

from __future__ import annotations

from typing import Any

from ..fields import Field, Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock

BOOT_SECTOR = Layout(
    "exFAT boot sector",
    [
        Spec("fs_name", 3, "8s", "EXFAT", "text"),
        Spec("partition_offset", 64, "Q"),
        Spec("volume_length", 72, "Q", "sectors"),
        Spec("fat_offset", 80, "I"),
        Spec("fat_length", 84, "I"),
        Spec("cluster_heap_offset", 88, "I", "sectors"),
        Spec("cluster_count", 92, "I"),
        Spec("root_cluster", 96, "I"),
        Spec("serial", 100, "I", "", "hex"),
        Spec("revision", 104, "H", "", "hex"),
        Spec("volume_flags", 106, "H", "bit 1: volume dirty", "hex"),
        Spec("bytes_per_sector_shift", 108, "B"),
        Spec("sectors_per_cluster_shift", 109, "B"),
        Spec("fat_count", 110, "B"),
    ],
    "<",
)
FS_NAME = b"EXFAT   "
LABEL_ENTRY_LAYOUT = Layout(
    "exFAT volume label entry",
    [Spec("type", 0, "B"), Spec("count", 1, "B", "characters"), Spec("label", 2, "22s", "", "utf16le")],
    "<",
)
ENTRY = 32  # bytes of a directory entry
LABEL_ENTRY = 0x83
ROOT_READ = 64 << 10  # bytes of the root directory searched for the label entry


def probe(view: View) -> bool:
    return view.read(BOOT_SECTOR.offset_of("fs_name"), len(FS_NAME)) == FS_NAME


def _label(view: View, info: Inspection, values: dict[str, Any]) -> str | None:
    sector_shift, cluster_shift = values["bytes_per_sector_shift"], values["sectors_per_cluster_shift"]
    if not 9 <= sector_shift <= 12 or sector_shift + cluster_shift > 25 or values["root_cluster"] < 2:
        return None
    cluster = 1 << (sector_shift + cluster_shift)
    start = (values["cluster_heap_offset"] << sector_shift) + (values["root_cluster"] - 2) * cluster
    data = view.read(start, min(cluster, ROOT_READ))
    for at in range(0, len(data) - ENTRY + 1, ENTRY):
        entry = LABEL_ENTRY_LAYOUT.unpack_from(data, at)
        if entry["type"] == 0:
            break
        if entry["type"] == LABEL_ENTRY:
            count = min(entry["count"], 11)
            text = entry["label"][: 2 * count].decode("utf-16-le", errors="replace")
            info.fields.append(Field(LABEL_ENTRY_LAYOUT.name, view.guest_offset(start + at), ENTRY, text))
            return text
    return None


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, _ = superblock(view, info, BOOT_SECTOR, 0, 512)
    sector = 1 << values["bytes_per_sector_shift"] if values["bytes_per_sector_shift"] < 16 else 0
    serial = values["serial"]
    dirty = bool(values["volume_flags"] & 2)
    return summary(
        "exfat",
        label=_label(view, info, values),
        uuid=f"{serial >> 16:04X}-{serial & 0xFFFF:04X}",
        size=values["volume_length"] * sector,
        block_size=sector << values["sectors_per_cluster_shift"] if values["sectors_per_cluster_shift"] < 26 else None,
        state="dirty" if dirty else "clean",
        version=f"{values['revision'] >> 8}.{values['revision'] & 0xFF}",
    )
