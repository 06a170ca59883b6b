"""SquashFS: the little-endian superblock ``hsqs`` at 0 (no label or UUID)."""

from __future__ import annotations

from typing import Any

from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock, utc

COMPRESSION = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
MAGIC = b"hsqs"
SUPERBLOCK = Layout(
    "squashfs superblock",
    [
        Spec("magic", 0, "4s", "hsqs", "bytes"),
        Spec("inode_count", 4, "I"),
        Spec("mod_time", 8, "I", "last modification (Unix time)"),
        Spec("block_size", 12, "I"),
        Spec("fragments", 16, "I"),
        Spec("compression", 20, "H", "1 gzip, 2 lzma, 3 lzo, 4 xz, 5 lz4, 6 zstd"),
        Spec("block_log", 22, "H"),
        Spec("flags", 24, "H", "", "hex"),
        Spec("id_count", 26, "H"),
        Spec("major", 28, "H"),
        Spec("minor", 30, "H"),
        Spec("root_inode", 32, "Q", "", "hex"),
        Spec("bytes_used", 40, "Q"),
    ],
    "<",
)


def probe(view: View) -> bool:
    return view.read(SUPERBLOCK.offset_of("magic"), len(MAGIC)) == MAGIC


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, _ = superblock(view, info, SUPERBLOCK, 0, 96)
    return summary(
        "squashfs",
        size=values.get("bytes_used"),
        block_size=values.get("block_size"),
        version=f"{values.get('major')}.{values.get('minor')}",
        compression=COMPRESSION.get(values.get("compression", 0), "unknown"),
        modified=utc(values.get("mod_time", 0)),
        inodes=values.get("inode_count"),
    )
