"""Hand-built VDI images (VirtualBox header v1.1): dynamic, static and differencing.

UUIDs are written as VirtualBox does, little-endian GUIDs (``uuid.UUID.bytes_le``). A differencing
image names its parent by UUID only (``uuid_link``, VirtualBox's uuidLinkage).
"""

from __future__ import annotations

import struct
import uuid

from workbench.engine.formats.vdi import HEADER, SIGNATURE

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
    header = HEADER.pack(
        text=BANNER,
        signature=SIGNATURE,
        version_minor=version[1],
        version_major=version[0],
        header_size=0x180,
        image_type=image_type,
        description=description.encode("latin-1")[:256],
        offset_bmap=offset_bmap,
        offset_data=offset_data,
        sector_size=SECTOR,
        disk_size=disk_size,
        block_size=block_size,
        blocks_in_image=count,
        blocks_allocated=count if static else 0,
        uuid_image=uuid.UUID(IMAGE_UUID).bytes_le,
        uuid_last_snap=uuid.UUID(IMAGE_UUID).bytes_le,
        uuid_link=uuid.UUID(link).bytes_le,
        uuid_parent=uuid.UUID(parent).bytes_le,
    ).ljust(SECTOR, b"\0")
    bmap = b"".join(struct.pack("<I", i if static else 0xFFFFFFFF) for i in range(count)).ljust(bmap_size, b"\0")
    return header + bmap + (bytes(count * block_size) if static else b"")


def differencing() -> bytes:
    """A differencing image whose parent is known only by UUID."""
    return vdi(image_type=4, link=PARENT_UUID, parent=PARENT_MODIFY_UUID)


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of the VDI images the ``--demo`` window shows."""
    return [("dynamic.vdi", "vdi", vdi()), ("differencing-parent-uuid.vdi", "vdi", differencing())]
