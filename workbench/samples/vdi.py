"""Hand-built VDI images (VirtualBox header v1.1): dynamic, static and differencing.

UUIDs are written as VirtualBox does, little-endian GUIDs (``uuid.UUID.bytes_le``). A differencing
image names its parent by UUID only (``uuid_link``, VirtualBox's uuidLinkage).
"""

from __future__ import annotations

import struct
import uuid

MIB = 1 << 20
SECTOR = 512
NULL = "00000000-0000-0000-0000-000000000000"
IMAGE_UUID = "5e0c1f0a-9d3b-4c2a-8e71-0a1b2c3d4e5f"
PARENT_UUID = "c0ffee00-1234-4abc-9def-00112233aabb"
PARENT_MODIFY_UUID = "0badc0de-5678-4f00-8aaa-ffeeddccbbaa"
BANNER = b"<<< Oracle VM VirtualBox Disk Image >>>\n"


def vdi(
    *,
    disk_size: int = 16 * MIB,
    image_type: int = 1,
    link: str = NULL,
    parent: str = NULL,
    block_size: int = MIB,
    blocks: int | None = None,
    version: tuple[int, int] = (1, 1),
    description: str = "",
) -> bytes:
    """Header, block map and (static images only) every data block; dynamic images allocate nothing."""
    count = -(-disk_size // block_size) if blocks is None else blocks
    static = image_type == 2
    bmap_size = -(-count * 4 // SECTOR) * SECTOR
    offset_bmap, offset_data = SECTOR, SECTOR + bmap_size
    header = bytearray(SECTOR)
    header[: len(BANNER)] = BANNER
    struct.pack_into("<IHHIII", header, 64, 0xBEDA107F, version[1], version[0], 0x180, image_type, 0)
    header[84 : 84 + len(description)] = description.encode("latin-1")[:256]
    struct.pack_into(
        "<IIIIIIIQIIII",
        header,
        340,
        offset_bmap,
        offset_data,
        0,
        0,
        0,
        SECTOR,
        0,
        disk_size,
        block_size,
        0,
        count,
        count if static else 0,
    )
    for offset, text in ((392, IMAGE_UUID), (408, IMAGE_UUID), (424, link), (440, parent)):
        header[offset : offset + 16] = uuid.UUID(text).bytes_le
    bmap = b"".join(struct.pack("<I", i if static else 0xFFFFFFFF) for i in range(count)).ljust(bmap_size, b"\0")
    return bytes(header) + bmap + (bytes(count * block_size) if static else b"")


def differencing() -> bytes:
    """A differencing image whose parent is known only by UUID."""
    return vdi(image_type=4, link=PARENT_UUID, parent=PARENT_MODIFY_UUID)


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of the VDI images the ``--demo`` window shows."""
    return [("dynamic.vdi", "vdi", vdi()), ("differencing-parent-uuid.vdi", "vdi", differencing())]
