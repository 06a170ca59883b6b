"""Hand-built VHDX images: dynamic, fixed and differencing (qemu-img cannot create the last).

Layout: the 1 MiB header section (file identifier, two headers, two region tables), a 1 MiB log, a
64 KiB BAT at 2 MiB and a 128 KiB metadata region right after it (table in its first 64 KiB, items
after). Headers and region tables carry correct CRC-32C checksums unless a test breaks them;
:func:`fix_checksums` recomputes them after a test has edited the bytes.
"""

from __future__ import annotations

import struct
import uuid

from workbench.engine.formats.vhdx import (
    BAT,
    FILE_PARAMETERS,
    LOGICAL_SECTOR_SIZE,
    METADATA,
    PAGE_83,
    PARENT_LOCATOR,
    PHYSICAL_SECTOR_SIZE,
    VHDX_LOCATOR_TYPE,
    VIRTUAL_DISK_SIZE,
    checksum,
)

KIB = 1024
MIB = 1024 * KIB
HEADER_OFFSETS = (64 * KIB, 128 * KIB)
REGION_OFFSETS = (192 * KIB, 256 * KIB)
LOG_OFFSET = MIB
BAT_OFFSET = 2 * MIB
BAT_LENGTH = 64 * KIB
METADATA_OFFSET = BAT_OFFSET + BAT_LENGTH
METADATA_LENGTH = 128 * KIB
ITEMS_START = 64 * KIB
NULL = "00000000-0000-0000-0000-000000000000"
PARENT_LINKAGE = "{83f8638b-8dca-4152-b4d5-d5f7d1b1e8b3}"

# Hostile parent locator: every path key names a host file.
HOST_PATHS = [
    ("parent_linkage", PARENT_LINKAGE),
    ("relative_path", "..\\..\\..\\..\\etc\\shadow"),
    ("volume_path", "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\Secrets\\parent.vhdx"),
    ("absolute_win32_path", "C:\\ProgramData\\Secrets\\parent.vhdx"),
]


def guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


def header(sequence: int, *, log_guid: str = NULL, log_offset: int = LOG_OFFSET, log_length: int = MIB) -> bytes:
    """A 4 KiB header with its CRC-32C."""
    block = bytearray(4 * KIB)
    struct.pack_into(
        "<4sIQ16s16s16sHHIQ",
        block,
        0,
        b"head",
        0,
        sequence,
        guid("6f1d6c5e-2f0a-4c8e-9d3b-0a1b2c3d4e5f"),
        guid("a1b2c3d4-e5f6-4a0b-8c1d-2e3f4a5b6c7d"),
        guid(log_guid),
        0,
        1,
        log_length,
        log_offset,
    )
    struct.pack_into("<I", block, 4, checksum(bytes(block)))
    return bytes(block)


def region_table(entries: list[tuple[str, int, int, int]], *, count: int | None = None) -> bytes:
    """A 64 KiB region table of ``(guid, offset, length, flags)`` entries with its CRC-32C."""
    table = bytearray(64 * KIB)
    struct.pack_into("<4sIII", table, 0, b"regi", 0, len(entries) if count is None else count, 0)
    for index, (kind, offset, length, flags) in enumerate(entries):
        struct.pack_into("<16sQII", table, 16 + 32 * index, guid(kind), offset, length, flags)
    struct.pack_into("<I", table, 4, checksum(bytes(table)))
    return bytes(table)


def parent_locator(pairs: list[tuple[str, str]], *, locator_type: str = VHDX_LOCATOR_TYPE) -> bytes:
    """A parent locator item: header, key/value entries, then the UTF-16LE strings."""
    strings = bytearray()
    entries = bytearray()
    start = 20 + 12 * len(pairs)
    for key, value in pairs:
        key_bytes, value_bytes = key.encode("utf-16-le"), value.encode("utf-16-le")
        key_at = start + len(strings)
        strings += key_bytes
        value_at = start + len(strings)
        strings += value_bytes
        entries += struct.pack("<IIHH", key_at, value_at, len(key_bytes), len(value_bytes))
    return struct.pack("<16sHH", guid(locator_type), 0, len(pairs)) + bytes(entries) + bytes(strings)


def metadata_region(items: list[tuple[str, bytes, int]], *, count: int | None = None) -> bytes:
    """The metadata table and its ``(guid, data, flags)`` items, each placed 8-byte aligned after 64 KiB."""
    region = bytearray(METADATA_LENGTH)
    struct.pack_into("<8sHH", region, 0, b"metadata", 0, len(items) if count is None else count)
    offset = ITEMS_START
    for index, (kind, data, flags) in enumerate(items):
        struct.pack_into("<16sIIII", region, 32 * (index + 1), guid(kind), offset, len(data), flags, 0)
        region[offset : offset + len(data)] = data
        offset += -(-len(data) // 8) * 8
    return bytes(region)


def standard_items(
    *, virtual_size: int, block_size: int, fixed: bool, has_parent: bool, sector: int = 512
) -> list[tuple[str, bytes, int]]:
    flags = (1 if fixed else 0) | (2 if has_parent else 0)
    return [
        (FILE_PARAMETERS, struct.pack("<II", block_size, flags), 0x4),
        (VIRTUAL_DISK_SIZE, struct.pack("<Q", virtual_size), 0x6),
        (PAGE_83, guid("0d8e3f4c-1b2a-4c5d-8e9f-a0b1c2d3e4f5"), 0x6),
        (LOGICAL_SECTOR_SIZE, struct.pack("<I", sector), 0x6),
        (PHYSICAL_SECTOR_SIZE, struct.pack("<I", 4096), 0x6),
    ]


def vhdx(
    *,
    virtual_size: int = 16 * MIB,
    block_size: int = MIB,
    fixed: bool = False,
    parent: list[tuple[str, str]] | None = None,
    regions: list[tuple[str, int, int, int]] | None = None,
    region_count: int | None = None,
    items: list[tuple[str, bytes, int]] | None = None,
    metadata_count: int | None = None,
    log_guid: str = NULL,
    creator: str = "Disk Image Workbench samples",
) -> bytes:
    """A whole VHDX file; ``parent`` makes it differencing with those locator key/value pairs."""
    if items is None:
        items = standard_items(
            virtual_size=virtual_size, block_size=block_size, fixed=fixed, has_parent=parent is not None
        )
        if parent is not None:
            items.append((PARENT_LOCATOR, parent_locator(parent), 0x4))
    if regions is None:
        regions = [(BAT, BAT_OFFSET, BAT_LENGTH, 1), (METADATA, METADATA_OFFSET, METADATA_LENGTH, 1)]
    image = bytearray(METADATA_OFFSET + METADATA_LENGTH)
    image[0:8] = b"vhdxfile"
    encoded = creator.encode("utf-16-le")[:512]
    image[8 : 8 + len(encoded)] = encoded
    for index, offset in enumerate(HEADER_OFFSETS):
        image[offset : offset + 4 * KIB] = header(index + 1, log_guid=log_guid)
    table = region_table(regions, count=region_count)
    for offset in REGION_OFFSETS:
        image[offset : offset + len(table)] = table
    image[METADATA_OFFSET:] = metadata_region(items, count=metadata_count)
    return bytes(image)


def fix_checksums(image: bytearray) -> None:
    """Recompute the CRC-32C of both headers and both region tables after ``image`` was edited."""
    for offset, size in [(o, 4 * KIB) for o in HEADER_OFFSETS] + [(o, 64 * KIB) for o in REGION_OFFSETS]:
        block = image[offset : offset + size]
        if len(block) == size:
            struct.pack_into("<I", image, offset + 4, checksum(bytes(block)))


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of the VHDX images the ``--demo`` window shows."""
    return [
        ("dynamic.vhdx", "vhdx", vhdx()),
        ("differencing-host-paths.vhdx", "vhdx", vhdx(parent=HOST_PATHS)),
    ]
