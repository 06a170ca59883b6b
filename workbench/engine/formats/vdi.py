"""VDI (VirtualBox): a 512-byte little-endian header after a 64-byte text banner, then the block map.

Field names follow qemu's block/vdi.c; the descriptions give VirtualBox's names (VDIHEADER1). The four
UUIDs are stored as little-endian GUIDs (qemu's ``uuid_convert`` swaps the first three groups to print
them, as VirtualBox's RTUuidToStr does), so they are shown with kind ``guid``. A differencing image
names its parent only by UUID (``uuidLinkage``): VirtualBox resolves it through its media registry.
"""

from __future__ import annotations

from ..fields import Layout, Spec, clean_text, uuid_text
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("vdi",)
PRIORITY = 50

HEADER_SIZE = 512
SIGNATURE = 0xBEDA107F
SECTOR = 512
BLOCK_SIZE = 1 << 20  # the only block size qemu opens
MAX_BLOCKS = 0x3FFFFFFF  # qemu: VDI_BLOCKS_IN_IMAGE_MAX
MAX_DISK_SIZE = MAX_BLOCKS * BLOCK_SIZE
NULL_GUID = "00000000-0000-0000-0000-000000000000"
IMAGE_TYPES = {1: "dynamic", 2: "static", 3: "undo", 4: "differencing"}
PARENT_TYPES = (3, 4)

HEADER = Layout(
    "header",
    [
        Spec("text", 0, "64s", "banner, e.g. <<< Oracle VM VirtualBox Disk Image >>> (not checked)", "text"),
        Spec("signature", 64, "I", "0xBEDA107F", "hex"),
        Spec("version_minor", 68, "H", "qemu reads 1.1"),
        Spec("version_major", 70, "H"),
        Spec("header_size", 72, "I", "bytes of the header after the version (0x180 or 0x190)"),
        Spec("image_type", 76, "I", "1 dynamic, 2 static (fixed), 3 undo, 4 differencing"),
        Spec("image_flags", 80, "I", "fFlags", "hex"),
        Spec("description", 84, "256s", "szComment", "text"),
        Spec("offset_bmap", 340, "I", "offBlocks: file offset of the block map"),
        Spec("offset_data", 344, "I", "offData: file offset of the first block"),
        Spec("cylinders", 348, "I", "legacy geometry"),
        Spec("heads", 352, "I", "legacy geometry"),
        Spec("sectors", 356, "I", "legacy geometry"),
        Spec("sector_size", 360, "I", "must be 512"),
        Spec("unused1", 364, "I"),
        Spec("disk_size", 368, "Q", "cbDisk: virtual size in bytes"),
        Spec("block_size", 376, "I", "cbBlock: bytes per block (qemu: 1 MiB only)"),
        Spec("block_extra", 380, "I", "cbBlockExtra: bytes before each block's data"),
        Spec("blocks_in_image", 384, "I", "cBlocks"),
        Spec("blocks_allocated", 388, "I", "cBlocksAllocated"),
        Spec("uuid_image", 392, "16s", "uuidCreate: this image", "guid"),
        Spec("uuid_last_snap", 408, "16s", "uuidModify: this image's last modification", "guid"),
        Spec("uuid_link", 424, "16s", "uuidLinkage: the parent image (differencing only)", "guid"),
        Spec("uuid_parent", 440, "16s", "uuidParentModify: the parent's last modification", "guid"),
    ],
    "<",
)


def probe(reader: Reader) -> str | None:
    return "vdi" if reader.read(64, 4) == SIGNATURE.to_bytes(4, "little") else None


def parse(reader: Reader, info: Inspection) -> None:
    values, group, complete = info.structure(reader, HEADER, 0, "vdi.header-truncated", size=HEADER_SIZE)
    if not complete and "uuid_parent" not in values:
        return
    version = (values.get("version_major"), values.get("version_minor"))
    info.details["version"] = f"{version[0]}.{version[1]}"
    if version != (1, 1):
        info.add(
            "unknown-features",
            f"VDI version {version[0]}.{version[1]}: qemu reads only 1.1",
            HEADER.offset_of("version_minor"),
        )
        if version[0] != 1:
            return
    kind = values["image_type"]
    info.details.update(
        {
            "image_type": IMAGE_TYPES.get(kind, f"unknown ({kind})"),
            "description": clean_text(values["description"]),
            "uuid": uuid_text(values["uuid_image"], mixed_endian=True),
            "blocks_in_image": values["blocks_in_image"],
            "blocks_allocated": values["blocks_allocated"],
        }
    )
    if kind not in IMAGE_TYPES:
        info.malformed("vdi.image-type", f"image type {kind} is not 1..4", HEADER.offset_of("image_type"))
    disk_size = values["disk_size"]
    info.virtual_size = -(-disk_size // SECTOR) * SECTOR  # qemu rounds odd sizes up to a sector
    info.cluster_size = values["block_size"]
    _check_header(info, values)
    _check_layout(reader, info, values)
    _parent(info, values)


def _check_header(info: Inspection, v: dict[str, Any]) -> None:
    """The header values qemu's vdi_open refuses."""
    if v["block_size"] != BLOCK_SIZE:
        info.add(
            "unknown-features",
            f"block size {v['block_size']}: qemu opens only 1 MiB blocks",
            HEADER.offset_of("block_size"),
        )
    problems = []
    if v["sector_size"] != SECTOR:
        problems.append(
            ("vdi.sector-size", f"sector size {v['sector_size']} is not 512", HEADER.offset_of("sector_size"))
        )
    for name in ("offset_bmap", "offset_data"):
        if v[name] % SECTOR:
            problems.append(("vdi.offset-unaligned", f"{name} {v[name]} is not sector aligned", HEADER.offset_of(name)))
    if v["disk_size"] > MAX_DISK_SIZE:
        problems.append(
            (
                "vdi.size-too-large",
                f"disk size {v['disk_size']} exceeds qemu's maximum {MAX_DISK_SIZE}",
                HEADER.offset_of("disk_size"),
            )
        )
    if v["blocks_in_image"] > MAX_BLOCKS:
        problems.append(
            (
                "vdi.blocks-too-many",
                f"{v['blocks_in_image']} blocks exceed qemu's maximum {MAX_BLOCKS}",
                HEADER.offset_of("blocks_in_image"),
            )
        )
    room = v["blocks_in_image"] * v["block_size"]
    if v["disk_size"] > room:
        problems.append(
            (
                "vdi.block-map-too-small",
                f"disk size {v['disk_size']} exceeds the {room} bytes its block map can address",
                HEADER.offset_of("disk_size"),
            )
        )
    if v["blocks_allocated"] > v["blocks_in_image"]:
        problems.append(
            (
                "vdi.blocks-allocated",
                f"{v['blocks_allocated']} blocks allocated of {v['blocks_in_image']}",
                HEADER.offset_of("blocks_allocated"),
            )
        )
    for check, detail, offset in problems:
        info.malformed(check, detail, offset)


def _check_layout(reader: Reader, info: Inspection, v: dict[str, Any]) -> None:
    """Block map and data blocks must lie inside the file and not overlap the header or each other."""
    bmap_end = v["offset_bmap"] + 4 * v["blocks_in_image"]
    data_end = v["offset_data"] + v["blocks_allocated"] * (v["block_size"] + v["block_extra"])
    if v["offset_bmap"] < HEADER_SIZE:
        info.malformed(
            "vdi.block-map-in-header",
            f"block map offset {v['offset_bmap']} lies inside the 512-byte header",
            HEADER.offset_of("offset_bmap"),
        )
    if bmap_end > v["offset_data"]:
        info.malformed(
            "vdi.block-map-overlaps-data",
            f"block map {v['offset_bmap']}..{bmap_end} runs into the data at {v['offset_data']}",
            HEADER.offset_of("offset_data"),
        )
    if bmap_end > reader.size:
        info.malformed(
            "vdi.block-map-past-eof",
            f"block map ends at {bmap_end}, past the end of the file ({reader.size})",
            HEADER.offset_of("offset_bmap"),
        )
    if data_end > reader.size:
        info.malformed(
            "vdi.data-past-eof",
            f"{v['blocks_allocated']} allocated blocks from {v['offset_data']} end at {data_end}, past the end of "
            f"the file ({reader.size})",
            HEADER.offset_of("offset_data"),
        )


def _parent(info: Inspection, v: dict[str, Any]) -> None:
    """A differencing (or undo) image, or any non-null parent UUID, names a parent by UUID."""
    link, parent_modify = (uuid_text(v[name], mixed_endian=True) for name in ("uuid_link", "uuid_parent"))
    if parent_modify != NULL_GUID:
        info.reference("parent modification uuid", parent_modify, HEADER.offset_of("uuid_parent"), kind="uuid")
    if link != NULL_GUID:
        info.set_backing(link, "vdi", HEADER.offset_of("uuid_link"), kind="uuid")
    elif parent_modify != NULL_GUID:
        info.set_backing(parent_modify, "vdi", HEADER.offset_of("uuid_parent"), kind="uuid")
    elif v["image_type"] in PARENT_TYPES:
        info.malformed(
            "vdi.parent-uuid-missing",
            f"{IMAGE_TYPES[v['image_type']]} image with null parent UUIDs",
            HEADER.offset_of("uuid_link"),
        )
    if info.backing and v["image_type"] not in PARENT_TYPES:
        kind = IMAGE_TYPES.get(v["image_type"], f"type {v['image_type']}")
        info.malformed(
            "vdi.parent-uuid-unexpected",
            f"{kind} image with a parent UUID: only undo and differencing images have one",
            HEADER.offset_of("image_type"),
        )
    if info.backing:
        info.details["parent_resolution"] = "by UUID through the VirtualBox media registry, not by path"
