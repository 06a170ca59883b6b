"""Hand-built VHDX images: dynamic, fixed and differencing (qemu-img cannot create the last).

Layout: the 1 MiB header section (file identifier, two headers, two region tables), a 1 MiB log, a
64 KiB BAT at 2 MiB and a 128 KiB metadata region right after it (table in its first 64 KiB, items
after). Headers and region tables carry correct CRC-32C checksums unless a test breaks them;
:func:`fix_checksums` recomputes them after a test has edited the bytes.
"""

from __future__ import annotations

import uuid

from workbench.engine.fields import Layout
from workbench.engine.formats.vhdx import (
    BAT,
    FILE_ID,
    FILE_PARAMETERS,
    HEADER,
    ITEMS,
    LOCATOR_ENTRY,
    LOCATOR_HEADER,
    LOGICAL_SECTOR_SIZE,
    METADATA,
    METADATA_ENTRY,
    METADATA_HEADER,
    PAGE_83,
    PARENT_LOCATOR,
    PHYSICAL_SECTOR_SIZE,
    REGION_ENTRY,
    REGION_HEADER,
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


def _signed(block: bytes, layout: Layout) -> bytes:
    """``block`` with its CRC-32C in the layout's checksum field (the same place in headers and region tables)."""
    at = layout.offset_of("checksum")
    return block[:at] + checksum(block).to_bytes(4, "little") + block[at + 4 :]


def guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


def header(sequence: int, *, log_guid: str = NULL, log_offset: int = LOG_OFFSET, log_length: int = MIB) -> bytes:
    """A 4 KiB header with its CRC-32C."""
    block = HEADER.pack(
        signature=b"head",
        sequence_number=sequence,
        file_write_guid=guid("6f1d6c5e-2f0a-4c8e-9d3b-0a1b2c3d4e5f"),
        data_write_guid=guid("a1b2c3d4-e5f6-4a0b-8c1d-2e3f4a5b6c7d"),
        log_guid=guid(log_guid),
        version=1,
        log_length=log_length,
        log_offset=log_offset,
    ).ljust(4 * KIB, b"\0")
    return _signed(block, HEADER)


def region_table(entries: list[tuple[str, int, int, int]], *, count: int | None = None) -> bytes:
    """A 64 KiB region table of ``(guid, offset, length, flags)`` entries with its CRC-32C."""
    table = bytearray(64 * KIB)
    table[: REGION_HEADER.size] = REGION_HEADER.pack(
        signature=b"regi", entry_count=len(entries) if count is None else count
    )
    for index, (kind, offset, length, flags) in enumerate(entries):
        at = REGION_HEADER.size + REGION_ENTRY.size * index
        table[at : at + REGION_ENTRY.size] = REGION_ENTRY.pack(
            guid=guid(kind), file_offset=offset, length=length, flags=flags
        )
    return _signed(bytes(table), REGION_HEADER)


def parent_locator(pairs: list[tuple[str, str]], *, locator_type: str = VHDX_LOCATOR_TYPE) -> bytes:
    """A parent locator item: header, key/value entries, then the UTF-16LE strings."""
    strings = bytearray()
    entries = bytearray()
    start = LOCATOR_HEADER.size + LOCATOR_ENTRY.size * len(pairs)
    for key, value in pairs:
        key_bytes, value_bytes = key.encode("utf-16-le"), value.encode("utf-16-le")
        key_at = start + len(strings)
        strings += key_bytes
        value_at = start + len(strings)
        strings += value_bytes
        entries += LOCATOR_ENTRY.pack(
            key_offset=key_at, value_offset=value_at, key_length=len(key_bytes), value_length=len(value_bytes)
        )
    head = LOCATOR_HEADER.pack(locator_type=guid(locator_type), key_value_count=len(pairs))
    return head + bytes(entries) + bytes(strings)


def metadata_region(items: list[tuple[str, bytes, int]], *, count: int | None = None) -> bytes:
    """The metadata table and its ``(guid, data, flags)`` items, each placed 8-byte aligned after 64 KiB."""
    region = bytearray(METADATA_LENGTH)
    count = len(items) if count is None else count
    region[: METADATA_HEADER.size] = METADATA_HEADER.pack(signature=b"metadata", entry_count=count)
    offset = ITEMS_START
    for index, (kind, data, flags) in enumerate(items):
        at = METADATA_ENTRY.size * (index + 1)  # the table's header takes the first entry's room
        entry = METADATA_ENTRY.pack(item_id=guid(kind), offset=offset, length=len(data), flags=flags)
        region[at : at + METADATA_ENTRY.size] = entry
        region[offset : offset + len(data)] = data
        offset += -(-len(data) // 8) * 8
    return bytes(region)


def standard_items(
    *, virtual_size: int, block_size: int, fixed: bool, has_parent: bool, sector: int = 512
) -> list[tuple[str, bytes, int]]:
    flags = (1 if fixed else 0) | (2 if has_parent else 0)
    return [
        (FILE_PARAMETERS, ITEMS[FILE_PARAMETERS].pack(block_size=block_size, flags=flags), 0x4),
        (VIRTUAL_DISK_SIZE, ITEMS[VIRTUAL_DISK_SIZE].pack(virtual_disk_size=virtual_size), 0x6),
        (PAGE_83, ITEMS[PAGE_83].pack(page_83_id=guid("0d8e3f4c-1b2a-4c5d-8e9f-a0b1c2d3e4f5")), 0x6),
        (LOGICAL_SECTOR_SIZE, ITEMS[LOGICAL_SECTOR_SIZE].pack(logical_sector_size=sector), 0x6),
        (PHYSICAL_SECTOR_SIZE, ITEMS[PHYSICAL_SECTOR_SIZE].pack(physical_sector_size=4096), 0x6),
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
    image[: FILE_ID.size] = FILE_ID.pack(signature=b"vhdxfile", creator=creator.encode("utf-16-le")[:512])
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
            image[offset : offset + size] = _signed(bytes(block), HEADER)


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of the VHDX images the ``--demo`` window shows."""
    return [
        ("dynamic.vhdx", "vhdx", vhdx()),
        ("differencing-host-paths.vhdx", "vhdx", vhdx(parent=HOST_PATHS)),
    ]
