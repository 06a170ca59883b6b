"""Guest filesystems, one module per family: each has ``probe(view)`` and ``parse(view, info)``.

``identify`` tries them in a fixed order (the signatures do not overlap, except that a FAT boot
sector is recognised only when it is no NTFS or exFAT one) and returns the first match's summary.
"""

from __future__ import annotations

from typing import Any

from ..guest_disk import View
from ..inspection import Inspection
from . import btrfs, exfat, ext, ext_files, fat, iso9660, ntfs, squashfs, swap, xfs

MODULES = (ext, xfs, btrfs, ntfs, exfat, fat, iso9660, swap, squashfs)


def identify(view: View, info: Inspection) -> dict[str, Any] | None:
    """The filesystem at the start of ``view``, or ``None``."""
    for module in MODULES:
        if module.probe(view):
            return module.parse(view, info)
    return None


def operating_system(view: View, info: Inspection, filesystem: dict[str, Any]) -> dict[str, Any] | None:
    """The OS found on a filesystem that looks like a root filesystem (ext2/3/4 for now)."""
    if filesystem["type"] not in ("ext2", "ext3", "ext4"):
        return None
    values, _ = ext.read_superblock(view, Inspection("ext"))  # already read: from the cache, no new fields
    return ext_files.operating_system(view, values, info)
