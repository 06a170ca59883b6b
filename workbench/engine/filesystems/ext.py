"""ext2/3/4: the superblock at 1024 (magic 0xEF53 at 56 of it), named as blkid names it."""

from __future__ import annotations

from typing import Any

from ..checksums import crc32c
from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import names, summary, superblock, utc

OFFSET = 1024
MAGIC = 0xEF53
SUPERBLOCK = Layout(
    "ext superblock",
    [
        Spec("inodes_count", 0, "I"),
        Spec("blocks_count_lo", 4, "I"),
        Spec("first_data_block", 20, "I"),
        Spec("log_block_size", 24, "I", "block size = 1024 << n"),
        Spec("blocks_per_group", 32, "I"),
        Spec("inodes_per_group", 40, "I"),
        Spec("mtime", 44, "I", "last mount (Unix time)"),
        Spec("wtime", 48, "I", "last write (Unix time)"),
        Spec("magic", 56, "H", "0xEF53", "hex"),
        Spec("state", 58, "H", "1 clean, 2 errors, 4 orphans being recovered", "hex"),
        Spec("rev_level", 76, "I"),
        Spec("first_ino", 84, "I"),
        Spec("inode_size", 88, "H"),
        Spec("feature_compat", 92, "I", "", "hex"),
        Spec("feature_incompat", 96, "I", "", "hex"),
        Spec("feature_ro_compat", 100, "I", "", "hex"),
        Spec("uuid", 104, "16s", "", "uuid"),
        Spec("volume_name", 120, "16s", "label", "text"),
        Spec("last_mounted", 136, "64s", "where it was last mounted", "text"),
        Spec("desc_size", 254, "H", "group descriptor size (64bit)"),
        Spec("mkfs_time", 264, "I"),
        Spec("blocks_count_hi", 336, "I"),
        Spec("checksum_type", 373, "B", "1 crc32c"),
        Spec("error_count", 404, "I"),
        Spec("checksum", 1020, "I", "CRC-32C of the superblock (metadata_csum)", "hex"),
    ],
    "<",
)
SIZE = SUPERBLOCK.size
COMPAT = {4: "has_journal", 8: "ext_attr", 16: "resize_inode", 32: "dir_index", 512: "sparse_super2"}
INCOMPAT = {
    1: "compression",
    2: "filetype",
    4: "needs_recovery",
    8: "journal_dev",
    16: "meta_bg",
    64: "extent",
    128: "64bit",
    256: "mmp",
    512: "flex_bg",
    1024: "ea_inode",
    4096: "dirdata",
    8192: "metadata_csum_seed",
    16384: "large_dir",
    32768: "inline_data",
    65536: "encrypt",
    131072: "casefold",
}
RO_COMPAT = {
    1: "sparse_super",
    2: "large_file",
    8: "huge_file",
    16: "uninit_bg",
    32: "dir_nlink",
    64: "extra_isize",
    256: "quota",
    512: "bigalloc",
    1024: "metadata_csum",
    4096: "read-only",
    8192: "project",
    32768: "verity",
    65536: "orphan_present",
}
EXT3_INCOMPAT = 0x2 | 0x4 | 0x10  # filetype, recover, meta_bg: what ext3 supports
EXT3_RO_COMPAT = 0x1 | 0x2 | 0x4
INCOMPAT_64BIT, INCOMPAT_JOURNAL_DEV, COMPAT_JOURNAL, RO_METADATA_CSUM = 0x80, 0x8, 0x4, 0x400
STATE_ERRORS, STATE_CLEAN = 0x2, 0x1


def probe(view: View) -> bool:
    at = SUPERBLOCK.offset_of("magic", OFFSET)
    return view.read(at, SUPERBLOCK.size_of("magic")) == MAGIC.to_bytes(2, "little")


def fs_type(values: dict[str, Any]) -> str:
    """blkid's choice: jbd, ext4 (features ext3 lacks), ext3 (a journal), else ext2."""
    incompat, ro_compat = values["feature_incompat"], values["feature_ro_compat"]
    if incompat & INCOMPAT_JOURNAL_DEV:
        return "jbd"
    if incompat & ~EXT3_INCOMPAT or ro_compat & ~EXT3_RO_COMPAT:
        return "ext4"
    return "ext3" if values["feature_compat"] & COMPAT_JOURNAL else "ext2"


def read_superblock(view: View, info: Inspection) -> tuple[dict[str, Any], bytes]:
    values, _, data = superblock(view, info, SUPERBLOCK, OFFSET)
    return values, data


def parse_values(view: View, info: Inspection, values: dict[str, Any], data: bytes) -> dict[str, Any]:
    if len(data) < SIZE:
        info.add("guest-malformed", f"ext superblock is truncated at {len(data)} bytes")
        return summary("ext")
    if values["feature_ro_compat"] & RO_METADATA_CSUM:
        computed = (
            crc32c(data[: SUPERBLOCK.offset_of("checksum")]) ^ 0xFFFFFFFF
        )  # ext4 keeps the CRC register without the final inversion
        if computed != values["checksum"]:
            info.add(
                "guest-malformed", f"ext superblock CRC-32C is 0x{values['checksum']:08x}, computed 0x{computed:08x}"
            )
    block = 1024 << values["log_block_size"] if values["log_block_size"] <= 6 else 0
    blocks = values["blocks_count_lo"]
    if values["feature_incompat"] & INCOMPAT_64BIT:
        blocks |= values["blocks_count_hi"] << 32
    errors = bool(values["state"] & STATE_ERRORS) or values["error_count"] > 0
    state = "errors" if errors else "clean" if values["state"] & STATE_CLEAN else "not clean"
    features = (
        names(values["feature_compat"], COMPAT)
        + names(values["feature_incompat"], INCOMPAT)
        + names(values["feature_ro_compat"], RO_COMPAT)
    )
    return summary(
        fs_type(values),
        label=SUPERBLOCK.shown(values, "volume_name") or None,
        uuid=SUPERBLOCK.shown(values, "uuid"),
        size=blocks * block,
        block_size=block,
        state=state,
        features=features,
        last_mount_time=utc(values["mtime"]),
        last_mount_path=SUPERBLOCK.shown(values, "last_mounted") or None,
        last_write_time=utc(values["wtime"]),
        created=utc(values["mkfs_time"]),
        inodes=values["inodes_count"],
    )


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, data = read_superblock(view, info)
    return parse_values(view, info, values, data)
