"""Btrfs: the superblock at 64 KiB (``_BHRfS_M`` at 64 of it), CRC-32C over bytes 32..4096."""

from __future__ import annotations

from typing import Any

from ..checksums import crc32c
from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import names, summary, superblock

OFFSET = 64 << 10
SIZE = 4096  # the superblock and what its checksum covers
MAGIC = b"_BHRfS_M"
SUPERBLOCK = Layout(
    "Btrfs superblock",
    [
        Spec("csum", 0, "32s", "checksum of bytes 32..4096 (CRC-32C in the first 4)", "bytes"),
        Spec("fsid", 32, "16s", "filesystem UUID", "uuid"),
        Spec("bytenr", 48, "Q", "where this copy sits"),
        Spec("magic", 64, "8s", "_BHRfS_M", "text"),
        Spec("generation", 72, "Q"),
        Spec("total_bytes", 112, "Q"),
        Spec("bytes_used", 120, "Q"),
        Spec("num_devices", 136, "Q"),
        Spec("sectorsize", 144, "I"),
        Spec("nodesize", 148, "I"),
        Spec("incompat_flags", 188, "Q", "", "hex"),
        Spec("csum_type", 196, "H", "0 crc32c, 1 xxhash, 2 sha256, 3 blake2"),
        Spec("dev_uuid", 267, "16s", "this device's UUID", "uuid"),
        Spec("label", 299, "256s", "", "text"),
    ],
    "<",
)
INCOMPAT = {
    1: "mixed_backref",
    2: "default_subvol",
    4: "mixed_groups",
    8: "compress_lzo",
    16: "compress_zstd",
    32: "big_metadata",
    64: "extended_iref",
    128: "raid56",
    256: "skinny_metadata",
    512: "no_holes",
    1024: "metadata_uuid",
    2048: "raid1c34",
    4096: "zoned",
    8192: "extent_tree_v2",
    16384: "raid_stripe_tree",
    32768: "simple_quota",
}


def probe(view: View) -> bool:
    return view.read(SUPERBLOCK.offset_of("magic", OFFSET), len(MAGIC)) == MAGIC


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, data = superblock(view, info, SUPERBLOCK, OFFSET, SIZE)
    if values.get("csum_type") == 0 and len(data) == SIZE:
        stored = int.from_bytes(values["csum"][:4], "little")
        computed = crc32c(data[SUPERBLOCK.size_of("csum") :])
        if stored != computed:
            info.add("guest-malformed", f"Btrfs superblock CRC-32C is 0x{stored:08x}, computed 0x{computed:08x}")
    return summary(
        "btrfs",
        label=SUPERBLOCK.shown(values, "label") or None,
        uuid=SUPERBLOCK.shown(values, "fsid"),
        size=values.get("total_bytes"),
        block_size=values.get("sectorsize"),
        features=names(values.get("incompat_flags", 0), INCOMPAT),
        uuid_sub=SUPERBLOCK.shown(values, "dev_uuid"),
        generation=values.get("generation"),
        devices=values.get("num_devices"),
    )
