"""XFS: the big-endian superblock ``XFSB`` at 0; version 5 carries a CRC-32C over the sector."""

from __future__ import annotations

from typing import Any

from ..checksums import crc32c
from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import names, summary, superblock

MAGIC = b"XFSB"
SUPERBLOCK = Layout(
    "XFS superblock",
    [
        Spec("magic", 0, "4s", "XFSB", "bytes"),
        Spec("block_size", 4, "I"),
        Spec("data_blocks", 8, "Q"),
        Spec("uuid", 32, "16s", "", "uuid"),
        Spec("log_start", 48, "Q"),
        Spec("root_inode", 56, "Q"),
        Spec("ag_blocks", 84, "I"),
        Spec("ag_count", 88, "I"),
        Spec("version", 100, "H", "low 4 bits: version", "hex"),
        Spec("sector_size", 102, "H"),
        Spec("inode_size", 104, "H"),
        Spec("label", 108, "12s", "", "text"),
        Spec("in_progress", 126, "B", "mkfs did not finish"),
        Spec("inode_count", 128, "Q"),
        Spec("features_compat", 208, "I", "", "hex"),
        Spec("features_ro_compat", 212, "I", "", "hex"),
        Spec("features_incompat", 216, "I", "", "hex"),
        Spec("crc", 224, "I", "CRC-32C of the sector with this field zeroed (v5, little-endian)", "hex"),
    ],
    ">",
)
CRC_AT, CRC_END = SUPERBLOCK.offset_of("crc"), SUPERBLOCK.offset_of("crc") + SUPERBLOCK.size_of("crc")
INCOMPAT = {1: "ftype", 2: "spinodes", 4: "meta_uuid", 8: "bigtime", 16: "needsrepair", 32: "nrext64"}
RO_COMPAT = {1: "finobt", 2: "rmapbt", 4: "reflink", 8: "inobtcount"}


def probe(view: View) -> bool:
    return view.read(SUPERBLOCK.offset_of("magic"), len(MAGIC)) == MAGIC


def parse(view: View, info: Inspection) -> dict[str, Any]:
    values, _, data = superblock(view, info, SUPERBLOCK, 0, 512)
    version = values.get("version", 0) & 0xF
    features: list[str] = []
    if version == 5 and len(data) >= CRC_END:
        sector = view.read(0, values["sector_size"]) if 512 <= values["sector_size"] <= 32768 else data
        stored = int.from_bytes(sector[CRC_AT:CRC_END], "little")  # the one little-endian field
        computed = crc32c(sector[:CRC_AT] + bytes(CRC_END - CRC_AT) + sector[CRC_END:])
        if stored != computed:
            info.add("guest-malformed", f"XFS superblock CRC-32C is 0x{stored:08x}, computed 0x{computed:08x}")
        features = names(values["features_incompat"], INCOMPAT) + names(values["features_ro_compat"], RO_COMPAT)
    return summary(
        "xfs",
        label=SUPERBLOCK.shown(values, "label") or None,
        uuid=SUPERBLOCK.shown(values, "uuid"),
        size=values.get("data_blocks", 0) * values.get("block_size", 0),
        block_size=values.get("block_size"),
        state="mkfs in progress" if values.get("in_progress") else None,
        features=features,
        version=version,
    )
