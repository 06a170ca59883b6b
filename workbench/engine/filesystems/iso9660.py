"""ISO 9660: the primary volume descriptor in sector 16 (byte 32768), ``CD001`` at byte 1 of it."""

from __future__ import annotations

from typing import Any

from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock

PVD = 32768
IDENTIFIER = b"CD001"
DESCRIPTOR = Layout(
    "ISO 9660 primary volume descriptor",
    [
        Spec("type", 0, "B", "1 primary volume descriptor"),
        Spec("identifier", 1, "5s", "CD001", "text"),
        Spec("system_id", 8, "32s", "", "text"),
        Spec("volume_id", 40, "32s", "the label", "text"),
        Spec("volume_space_size", 80, "I", "logical blocks (both-endian; little-endian half)"),
        Spec("logical_block_size", 128, "H", "(little-endian half)"),
        Spec("created", 813, "16s", "YYYYMMDDHHMMSSCC", "text"),
        Spec("modified", 830, "16s", "YYYYMMDDHHMMSSCC", "text"),
    ],
    "<",
)


def _date_uuid(digits: str) -> str | None:
    """blkid's UUID for ISO 9660: the modification (else creation) date as YYYY-MM-DD-HH-MM-SS-CC."""
    if len(digits) != 16 or not digits.isdigit() or not digits.strip("0"):
        return None
    parts = [digits[:4]] + [digits[i : i + 2] for i in range(4, 16, 2)]
    return "-".join(parts)


def probe(view: View) -> bool:
    return view.read(DESCRIPTOR.offset_of("identifier", PVD), len(IDENTIFIER)) == IDENTIFIER


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, _ = superblock(view, info, DESCRIPTOR, PVD, 881)
    block = values.get("logical_block_size", 0)
    return summary(
        "iso9660",
        label=DESCRIPTOR.shown(values, "volume_id", "").rstrip() or None,
        uuid=_date_uuid(DESCRIPTOR.shown(values, "modified", ""))
        or _date_uuid(DESCRIPTOR.shown(values, "created", "")),
        size=values.get("volume_space_size", 0) * block,
        block_size=block,
        system=DESCRIPTOR.shown(values, "system_id", "").rstrip() or None,
    )
