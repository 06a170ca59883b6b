"""Raw disks with MBR or GPT partition tables built byte by byte (the partitions themselves are zeros).

GPT disks get a protective MBR, the primary header and entry array, and the backup array and header at
the end, with correct CRC32s unless told otherwise. ``header`` overrides rewrite GPT header fields
(named as in the parser's ``GPT_HEADER`` layout, before the header CRC is computed) to make hostile variants.
"""

from __future__ import annotations

import struct
import uuid
import zlib

from workbench.engine.formats.partitions import (
    BOOT_SIGNATURE,
    GPT_ENTRY,
    GPT_HEADER,
    GPT_MIN_HEADER,
    GPT_SIGNATURE,
    MBR,
    MBR_ENTRY,
    MBR_TABLE,
)

SECTOR = 512
MIB = 1 << 20

EFI_SYSTEM = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
LINUX_FS = "0fc63daf-8483-4772-8e79-3d69d8477de4"
LINUX_SWAP = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
DISK_GUID = "6e2b7f0a-3c1d-4b9e-8f70-1a2b3c4d5e6f"


def mbr_sector(entries: list[tuple[int, int, int, int]], *, disk_id: int = 0x1234ABCD) -> bytes:
    """Sector 0 with up to four ``(status, type, start_lba, sectors)`` entries."""
    sector = bytearray(MBR.pack(disk_signature=disk_id, boot_signature=BOOT_SIGNATURE))
    for index, (status, kind, start, count) in enumerate(entries):
        at = MBR_TABLE + MBR_ENTRY.size * index
        sector[at : at + MBR_ENTRY.size] = MBR_ENTRY.pack(
            status=status,
            chs_first=b"\xfe\xff\xff",
            type=kind,
            chs_last=b"\xfe\xff\xff",
            start_lba=start,
            sectors=count,
        )
    return bytes(sector)


def mbr(entries: list[tuple[int, int, int, int]], *, size: int = 4 * MIB) -> bytes:
    """A raw disk of ``size`` bytes with an MBR."""
    return mbr_sector(entries).ljust(size, b"\0")


def mbr_extended(logical: list[tuple[int, int]], *, size: int = 8 * MIB, ext_start: int = 2048) -> bytes:
    """An MBR disk whose one extended partition holds ``(type, sectors)`` logical partitions.

    Each logical partition sits one MiB-aligned step after its extended boot record, as fdisk does.
    """
    ext_sectors = size // SECTOR - ext_start
    disk = bytearray(mbr([(0, 0x05, ext_start, ext_sectors)], size=size))
    ebr = ext_start
    for index, (kind, count) in enumerate(logical):
        following = ebr + 2048 + count
        link = (0, 0x05, following - ext_start, 2048 + logical[index + 1][1]) if index + 1 < len(logical) else None
        record = mbr_sector([(0, kind, 2048, count), *([link] if link else [])], disk_id=0)
        disk[ebr * SECTOR : (ebr + 1) * SECTOR] = record
        ebr = following
    return bytes(disk)


def mbr_chain(count: int, *, loop: bool = False, ext_start: int = 2048) -> bytes:
    """An extended partition with ``count`` extended boot records packed two sectors apart, each
    holding a one-sector logical partition; with ``loop`` the last record links back to itself."""
    size = (ext_start + 2 * count + 2048) * SECTOR
    disk = bytearray(mbr([(0, 0x05, ext_start, 2 * count + 2048)], size=size))
    for index in range(count):
        ebr = ext_start + 2 * index
        following = index if loop and index == count - 1 else index + 1
        link = [(0, 0x05, 2 * following, 2)] if following < count else []
        disk[ebr * SECTOR : (ebr + 1) * SECTOR] = mbr_sector([(0, 0x83, 1, 1), *link], disk_id=0)
    return bytes(disk)


def fat_boot_sector(*, size: int = 4 * MIB) -> bytes:
    """A FAT32 volume without a partition table, as mkfs.fat writes its boot sector (0x55AA, zero table)."""
    sector = bytearray(SECTOR)
    sector[0:11] = b"\xebX\x90mkfs.fat\x00"
    struct.pack_into("<HBH", sector, 11, 512, 1, 32)
    sector[71:82] = b"NO NAME    "
    sector[82:90] = b"FAT32   "
    sector[510:512] = b"\x55\xaa"
    return bytes(sector).ljust(size, b"\0")


def _entry(kind: str, first: int, last: int, name: str, number: int) -> bytes:
    return GPT_ENTRY.pack(
        type_guid=uuid.UUID(kind).bytes_le,
        unique_guid=uuid.UUID(int=0x1000 + number).bytes_le,
        first_lba=first,
        last_lba=last,
        name=name.encode("utf-16-le")[:72],
    )


def _header(values: dict[str, int], array_crc: int, overrides: dict[str, int], bad_crc: bool, sector: int) -> bytes:
    """One header copy, a whole logical block, its CRC32 over ``header_size`` bytes."""
    fields = {"revision": 0x00010000, "header_size": GPT_MIN_HEADER, **values, "entries_crc32": array_crc, **overrides}
    header = bytearray(GPT_HEADER.pack(signature=GPT_SIGNATURE, disk_guid=uuid.UUID(DISK_GUID).bytes_le, **fields))
    header = header.ljust(sector, b"\0")
    covered = min(fields["header_size"], sector)
    crc = zlib.crc32(bytes(header[:covered])) ^ (0xFFFFFFFF if bad_crc else 0)
    at = GPT_HEADER.offset_of("header_crc32")
    header[at : at + 4] = crc.to_bytes(4, "little")
    return bytes(header)


def gpt(
    partitions: list[tuple[str, int, int, str]],
    *,
    size: int = 8 * MIB,
    sector: int = SECTOR,
    entry_count: int = 128,
    header: dict[str, int] | None = None,
    bad_header_crc: bool = False,
    bad_entries_crc: bool = False,
    protective: bool = True,
) -> bytes:
    """A GPT disk; ``partitions`` are ``(type GUID, first LBA, last LBA, name)``."""
    lbas = size // sector
    array = b"".join(_entry(*part, number) for number, part in enumerate(partitions))
    array = array.ljust(entry_count * 128, b"\0")
    array_sectors = -(-len(array) // sector)
    values = {
        "first_usable_lba": 2 + array_sectors,
        "last_usable_lba": lbas - 2 - array_sectors,
        "entry_count": entry_count,
        "entry_size": 128,
    }
    array_crc = zlib.crc32(array) ^ (0xFFFFFFFF if bad_entries_crc else 0)
    overrides = header or {}
    primary_values = {**values, "my_lba": 1, "alternate_lba": lbas - 1, "entries_lba": 2}
    primary = _header(primary_values, array_crc, overrides, bad_header_crc, sector)
    backup_lba = lbas - 1 - array_sectors
    backup_values = {**values, "my_lba": lbas - 1, "alternate_lba": 1, "entries_lba": backup_lba}
    backup = _header(backup_values, array_crc, {}, False, sector)
    disk = bytearray(size)
    if protective:
        disk[0:SECTOR] = mbr_sector([(0, 0xEE, 1, min(lbas - 1, 0xFFFFFFFF))])
    disk[sector : 2 * sector] = primary
    disk[2 * sector : 2 * sector + len(array)] = array
    disk[backup_lba * sector : backup_lba * sector + len(array)] = array
    disk[(lbas - 1) * sector :] = backup
    return bytes(disk)


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of raw disks carrying a GPT and an MBR with logical partitions."""
    return [
        ("gpt-disk.img", "raw", gpt([(EFI_SYSTEM, 2048, 4095, "EFI system"), (LINUX_FS, 4096, 14335, "root")])),
        ("mbr-disk.img", "raw", mbr_extended([(0x83, 2048), (0x82, 2048)])),
    ]
