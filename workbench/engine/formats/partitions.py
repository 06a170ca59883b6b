"""MBR and GPT partition tables: a summary of the guest's own layout, never its filesystems.

MBR: four 16-byte entries at 446 and the signature 0x55AA at 510; logical partitions follow a chain of
extended boot records, walked at most MAX_LOGICAL steps. GPT (UEFI specification, chapter 5): a
little-endian header in LBA 1 (byte 512, or 4096 on 4K-sector disks) with CRC32 checksums over itself
and over its partition entry array, a backup header at its alternate LBA, and a protective MBR in LBA 0.
"""

from __future__ import annotations

import zlib

from ..checks import is_power_of_two, overlaps
from ..fields import Field, Layout, Spec, uuid_text
from ..findings import WARNING
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("mbr", "gpt")
PRIORITY = 5
LAYOUT = True

MBR_SECTOR = 512
BOOT_SIGNATURE = b"\x55\xaa"
GPT_SIGNATURE = b"EFI PART"
EXTENDED = frozenset({0x05, 0x0F, 0x85})
PROTECTIVE = 0xEE
MAX_LOGICAL = 64
MAX_ENTRIES = 128  # entries parsed; the UEFI minimum array (16 KiB) holds 128 of 128 bytes
ARRAY_CAP = 128 * 1024  # an entry array up to this size is read whole and its CRC32 verified
MAX_ENTRY_SIZE = 4096
GPT_MIN_HEADER = 92
MBR_TABLE = 446  # the four primary entries

# Boot sectors of volumes without a partition table also end in 0x55AA: their file system marks.
VBR_MARKS = ((3, b"NTFS    "), (3, b"EXFAT   "), (54, b"FAT12   "), (54, b"FAT16   "), (82, b"FAT32   "))

MBR_TYPES = {
    0x01: "FAT12",
    0x04: "FAT16 <32M",
    0x05: "extended",
    0x06: "FAT16",
    0x07: "NTFS/exFAT",
    0x0B: "FAT32",
    0x0C: "FAT32 LBA",
    0x0E: "FAT16 LBA",
    0x0F: "extended LBA",
    0x82: "Linux swap",
    0x83: "Linux",
    0x85: "Linux extended",
    0x8E: "Linux LVM",
    0xA5: "FreeBSD",
    0xEE: "protective GPT",
    0xEF: "EFI System",
    0xFD: "Linux RAID",
}

GPT_TYPES = {
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI System",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
    "a19d880f-05fc-4d3b-a006-743f0f84911e": "Linux RAID",
}
UNUSED_GUID = "00000000-0000-0000-0000-000000000000"

MBR = Layout(
    "MBR",
    [
        Spec("disk_signature", 440, "I", "disk identifier", "hex"),
        Spec("boot_signature", 510, "2s", "55aa", "bytes"),
    ],
    "<",
    "master boot record (LBA 0)",
)
MBR_ENTRY = Layout(
    "entry",
    [
        Spec("status", 0, "B", "0x80 bootable, 0x00 not", "hex"),
        Spec("chs_first", 1, "3s", "CHS address of the first sector (legacy)", "bytes"),
        Spec("type", 4, "B", "partition type", "hex"),
        Spec("chs_last", 5, "3s", "CHS address of the last sector (legacy)", "bytes"),
        Spec("start_lba", 8, "I", "first sector (512 bytes)"),
        Spec("sectors", 12, "I", "number of sectors"),
    ],
    "<",
)
GPT_HEADER = Layout(
    "GPT header",
    [
        Spec("signature", 0, "8s", "EFI PART", "bytes"),
        Spec("revision", 8, "I", "0x00010000 for 1.0", "hex"),
        Spec("header_size", 12, "I", "92 up to the logical block size"),
        Spec("header_crc32", 16, "I", "CRC32 of the header with this field zeroed", "hex"),
        Spec("my_lba", 24, "Q", "LBA of this header"),
        Spec("alternate_lba", 32, "Q", "LBA of the other header copy"),
        Spec("first_usable_lba", 40, "Q", "first LBA a partition may use"),
        Spec("last_usable_lba", 48, "Q", "last LBA a partition may use"),
        Spec("disk_guid", 56, "16s", "disk GUID", "guid"),
        Spec("entries_lba", 72, "Q", "start of the partition entry array"),
        Spec("entry_count", 80, "I", "number of entries in the array"),
        Spec("entry_size", 84, "I", "bytes per entry: 128 x 2^n"),
        Spec("entries_crc32", 88, "I", "CRC32 of the entry array", "hex"),
    ],
    "<",
)
GPT_ENTRY = Layout(
    "entry",
    [
        Spec("type_guid", 0, "16s", "partition type", "guid"),
        Spec("unique_guid", 16, "16s", "partition GUID", "guid"),
        Spec("first_lba", 32, "Q", "first LBA"),
        Spec("last_lba", 40, "Q", "last LBA (inclusive)"),
        Spec("attributes", 48, "Q", "attribute bits", "hex"),
        Spec("name", 56, "72s", "name (UTF-16LE)", "utf16le"),
    ],
    "<",
)


def _gpt_sector(reader: Reader) -> int | None:
    """The logical block size whose LBA 1 holds a GPT header signature."""
    for sector in (512, 4096):
        if reader.read(sector, 8) == GPT_SIGNATURE:
            return sector
    return None


def _looks_like_mbr(sector: bytes) -> bool:
    """0x55AA and four entries that are each all zero or plausible, in a sector that is no volume boot sector.

    Plausible: boot flag 0x00 or 0x80, a type, a start after LBA 0 and a length. A FAT or NTFS boot sector
    also ends in 0x55AA and leaves the table area zero (it would read as an empty MBR): its marks exclude it.
    """
    if len(sector) < MBR_SECTOR or sector[510:512] != BOOT_SIGNATURE:
        return False
    if any(sector[at : at + len(mark)] == mark for at, mark in VBR_MARKS):
        return False
    for index in range(4):
        entry = sector[MBR_TABLE + MBR_ENTRY.size * index : MBR_TABLE + MBR_ENTRY.size * (index + 1)]
        values = MBR_ENTRY.unpack(entry)
        start, count = values["start_lba"], values["sectors"]
        if any(entry) and (values["status"] not in (0x00, 0x80) or not values["type"] or not start or not count):
            return False
    return True


def probe(reader: Reader) -> str | None:
    if _gpt_sector(reader):
        return "gpt"
    return "mbr" if _looks_like_mbr(reader.read(0, MBR_SECTOR)) else None


REPORTED = ("index", "type", "start", "size")  # a partition's keys in ``details``; ``code``/``name`` are typed extras


def parse(reader: Reader, info: Inspection) -> None:
    entries(reader, info)


def entries(reader: Reader, info: Inspection) -> list[dict[str, Any]]:
    """Parse the table into ``info`` and return its partitions with the typed extras the guest view uses:
    ``code`` (the MBR type byte, else ``None``) and ``name`` (the GPT name, else ``None``)."""
    partitions = _parse_gpt(reader, info) if info.format == "gpt" else _parse_mbr(reader, info)
    info.details["partition_table"] = info.format
    info.details["partitions"] = [{key: part[key] for key in REPORTED} for part in partitions]
    return partitions


def _type_name(code: int) -> str:
    return f"0x{code:02x} {MBR_TYPES.get(code, 'unknown')}"


def _mbr_partition(index: int, code: int, start: int, size: int) -> dict[str, Any]:
    return {"index": index, "type": _type_name(code), "start": start, "size": size, "code": code, "name": None}


def _ends_past_eof(info: Inspection, what: str, end: int, size: int, offset: int) -> None:
    if end > size:
        info.malformed(
            f"{info.format}.partition-past-eof",
            f"{what} ends at byte {end}, past the end of the file ({size} bytes)",
            offset,
        )


def _check_overlaps(info: Inspection, spans: list[tuple[int, int, str]], offset: int) -> None:
    """``spans``: (first byte, end byte, label); no two may share a byte."""
    for first, second in overlaps(spans):
        info.malformed(f"{info.format}.partitions-overlap", f"{first} and {second} overlap", offset)


# ---------------------------------------------------------------- MBR


def _mbr_entries(data: bytes, base: int, group: Field, count: int, first_index: int) -> list[dict[str, Any]]:
    entries = []
    for slot in range(count):
        at = MBR_TABLE + MBR_ENTRY.size * slot
        values, entry_group = MBR_ENTRY.read(data[at : at + MBR_ENTRY.size], base + at, f"entry {first_index + slot}")
        entry_group.value = _type_name(values["type"])
        group.add(entry_group)
        entries.append(values | {"offset": base + at})
    return entries


def _parse_mbr(reader: Reader, info: Inspection) -> list[dict[str, Any]]:
    data = reader.read(0, MBR_SECTOR)
    _, group = MBR.read(data, 0)
    info.fields.append(group)
    if len(data) < MBR_SECTOR or data[510:512] != BOOT_SIGNATURE:
        info.malformed("mbr.signature", "no MBR boot signature 0x55AA at byte 510", MBR.offset_of("boot_signature"))
        return []
    partitions = []
    spans = []
    extended_seen = False
    for index, entry in enumerate(_mbr_entries(data, 0, group, 4, 1), start=1):
        if entry["status"] not in (0x00, 0x80):
            info.malformed(
                "mbr.boot-flag",
                f"MBR entry {index} boot flag 0x{entry['status']:02x} is neither 0x00 nor 0x80",
                entry["offset"],
            )
        if not entry["type"]:
            continue
        start, end = entry["start_lba"] * MBR_SECTOR, (entry["start_lba"] + entry["sectors"]) * MBR_SECTOR
        label = f"partition {index} ({_type_name(entry['type'])})"
        partitions.append(_mbr_partition(index, entry["type"], start, end - start))
        spans.append((start, end, label))
        if entry["start_lba"] == 0 or entry["sectors"] == 0:
            info.malformed(
                "mbr.entry-range",
                f"{label} starts at sector {entry['start_lba']} with {entry['sectors']} sectors",
                entry["offset"],
            )
        _ends_past_eof(info, label, end, reader.size, MBR_ENTRY.offset_of("start_lba", entry["offset"]))
        if entry["type"] == PROTECTIVE:
            info.malformed(
                "mbr.gpt-missing", f"{label} announces a GPT, but there is no GPT header in LBA 1", entry["offset"]
            )
        if entry["type"] in EXTENDED and not extended_seen:  # DOS allows one extended partition
            extended_seen = True
            partitions += _logical(reader, info, entry["start_lba"], entry["sectors"])
    _check_overlaps(info, spans, MBR_TABLE)
    return partitions


def _logical(reader: Reader, info: Inspection, ext_start: int, ext_sectors: int) -> list[dict[str, Any]]:
    """Walk the chain of extended boot records: each holds one logical partition and a link to the next."""
    found: list[dict[str, Any]] = []
    seen: set[int] = set()
    ebr = ext_start
    for index in range(5, 5 + MAX_LOGICAL):
        offset = ebr * MBR_SECTOR
        data = reader.read(offset, MBR_SECTOR)
        group = Field(f"extended boot record {index}", offset, len(data), ebr, "logical partition and link to the next")
        info.fields.append(group)
        if len(data) < MBR_SECTOR or data[510:512] != BOOT_SIGNATURE:
            info.malformed("mbr.ebr-signature", f"no extended boot record (0x55AA) at sector {ebr}", offset)
            return found
        seen.add(ebr)
        logical, link = _mbr_entries(data, offset, group, 2, index)
        if logical["type"]:
            start = (ebr + logical["start_lba"]) * MBR_SECTOR
            size = logical["sectors"] * MBR_SECTOR
            label = f"logical partition {index} ({_type_name(logical['type'])})"
            found.append(_mbr_partition(index, logical["type"], start, size))
            if start + size > (ext_start + ext_sectors) * MBR_SECTOR:
                info.malformed(
                    "mbr.logical-past-extended", f"{label} reaches past its extended partition", logical["offset"]
                )
            _ends_past_eof(info, label, start + size, reader.size, MBR_ENTRY.offset_of("start_lba", logical["offset"]))
        if not link["type"] or not link["start_lba"]:
            return found
        ebr = ext_start + link["start_lba"]
        if ebr in seen:
            info.malformed("mbr.ebr-loop", f"extended boot record chain loops back to sector {ebr}", link["offset"])
            return found
    info.add(
        "read-budget", f"extended partition chain not followed past {MAX_LOGICAL} logical partitions", ebr * MBR_SECTOR
    )
    return found


# ---------------------------------------------------------------- GPT


def _protective_mbr(reader: Reader, info: Inspection) -> None:
    """LBA 0 of a GPT disk: one 0xEE entry (protective) or 0xEE beside others (a hybrid MBR)."""
    data = reader.read(0, MBR_SECTOR)
    _, group = MBR.read(data, 0, "protective MBR")
    group.description = "LBA 0 of a GPT disk"
    info.fields.append(group)
    if len(data) < MBR_SECTOR or data[510:512] != BOOT_SIGNATURE:
        info.malformed(
            "gpt.protective-mbr-missing",
            "GPT disk without a protective MBR (no 0x55AA at byte 510)",
            MBR.offset_of("boot_signature"),
            WARNING,
        )
        info.details["mbr"] = "missing"
        return
    types = {entry["type"] for entry in _mbr_entries(data, 0, group, 4, 1)} - {0}
    if PROTECTIVE not in types:
        info.malformed(
            "gpt.protective-entry-missing", "GPT disk whose MBR has no 0xEE protective entry", MBR_TABLE, WARNING
        )
    info.details["mbr"] = "protective" if types == {PROTECTIVE} else "hybrid" if PROTECTIVE in types else "legacy"


def _parse_gpt(reader: Reader, info: Inspection) -> list[dict[str, Any]]:
    _protective_mbr(reader, info)
    sector = _gpt_sector(reader)
    if sector is None:
        info.malformed("gpt.signature", "no GPT header signature 'EFI PART' at byte 512 or 4096", 512)
        return []
    info.details["sector_size"] = sector
    header = _gpt_header(reader, info, sector, 1, "GPT header")
    if header is None:
        return []
    info.details["disk_guid"] = uuid_text(header["disk_guid"], mixed_endian=True)
    partitions = _gpt_entries(reader, info, sector, header)
    _backup_header(reader, info, sector, header["alternate_lba"])
    return partitions


def _gpt_header(reader: Reader, info: Inspection, sector: int, lba: int, name: str) -> dict[str, Any] | None:
    """Decode and check one header copy; ``None`` when it cannot be used."""
    offset = lba * sector
    data = reader.read(offset, sector)
    values, group = GPT_HEADER.read(data, offset, name)
    group.description = f"GPT header in LBA {lba}"
    info.fields.append(group)
    if len(data) < GPT_MIN_HEADER or data[:8] != GPT_SIGNATURE:
        info.malformed(
            "gpt.header-incomplete", f"{name}: no complete 'EFI PART' header at byte {offset}", offset, WARNING
        )
        return None
    size = values["header_size"]
    if not GPT_MIN_HEADER <= size <= sector:
        info.malformed(
            "gpt.header-size",
            f"{name}: header size {size} is outside {GPT_MIN_HEADER}..{sector}",
            GPT_HEADER.offset_of("header_size", offset),
        )
        return None
    computed = zlib.crc32(data[:16] + bytes(4) + data[20:size])
    if computed != values["header_crc32"]:
        info.add(
            "checksum-mismatch",
            f"{name}: header CRC32 is 0x{values['header_crc32']:08x}, computed 0x{computed:08x}",
            GPT_HEADER.offset_of("header_crc32", offset),
        )
    if values["my_lba"] != lba:
        info.malformed(
            "gpt.my-lba",
            f"{name}: my LBA is {values['my_lba']}, found at LBA {lba}",
            GPT_HEADER.offset_of("my_lba", offset),
        )
    if values["first_usable_lba"] > values["last_usable_lba"]:
        info.malformed(
            "gpt.usable-range",
            f"{name}: first usable LBA {values['first_usable_lba']} is after the last {values['last_usable_lba']}",
            GPT_HEADER.offset_of("first_usable_lba", offset),
        )
    return values


def _entry_array(reader: Reader, info: Inspection, sector: int, header: dict[str, Any]) -> bytes | None:
    """The entry array (whole when it is small enough to verify its CRC32, else its first entries)."""
    size, count, lba = header["entry_size"], header["entry_count"], header["entries_lba"]
    if size < 128 or size > MAX_ENTRY_SIZE or not is_power_of_two(size):
        info.malformed(
            "gpt.entry-size",
            f"GPT entry size {size} is not 128 x 2^n up to {MAX_ENTRY_SIZE}",
            GPT_HEADER.offset_of("entry_size", sector),
        )
        return None
    start, total = lba * sector, count * size
    if lba < 2 or start >= reader.size:
        info.malformed(
            "gpt.entries-placement",
            f"GPT entry array at LBA {lba} is not between the header and the end of the file ({reader.size} bytes)",
            GPT_HEADER.offset_of("entries_lba", sector),
        )
        return None
    if start + total > header["first_usable_lba"] * sector:
        info.malformed(
            "gpt.entries-overlap-usable",
            f"GPT entry array ({count} entries of {size} bytes at LBA {lba}) runs into the first usable "
            f"LBA {header['first_usable_lba']}",
            GPT_HEADER.offset_of("entry_count", sector),
        )
    if total > ARRAY_CAP:
        info.add(
            "read-budget",
            f"GPT entry array is {total} bytes: only {MAX_ENTRIES} entries read, CRC32 not verified",
            start,
        )
        return reader.read(start, min(count, MAX_ENTRIES) * size)
    array = reader.read(start, total)
    if len(array) < total:
        info.malformed(
            "gpt.entries-truncated",
            f"GPT entry array ends at end of file ({len(array)} of {total} bytes)",
            start + len(array),
        )
    elif zlib.crc32(array) != header["entries_crc32"]:
        info.add(
            "checksum-mismatch",
            f"GPT entry array CRC32 is 0x{header['entries_crc32']:08x}, computed 0x{zlib.crc32(array):08x}",
            GPT_HEADER.offset_of("entries_crc32", sector),
        )
    return array


def _gpt_entries(reader: Reader, info: Inspection, sector: int, header: dict[str, Any]) -> list[dict[str, Any]]:
    array = _entry_array(reader, info, sector, header)
    if array is None:
        return []
    size, base = header["entry_size"], header["entries_lba"] * sector
    group = Field("GPT partition entries", base, len(array), header["entry_count"], "used entries of the array")
    info.fields.append(group)
    partitions = []
    spans = []
    for number in range(min(header["entry_count"], MAX_ENTRIES, len(array) // size)):
        at = number * size
        values, entry_group = GPT_ENTRY.read(array[at : at + GPT_ENTRY.size], base + at, f"entry {number + 1}")
        type_guid = uuid_text(values["type_guid"], mixed_endian=True)
        if type_guid == UNUSED_GUID:
            continue
        kind = GPT_TYPES.get(type_guid, type_guid)
        entry_group.value = kind
        group.add(entry_group)
        first, last = values["first_lba"], values["last_lba"]
        label = f"partition {number + 1} ({kind})"
        partitions.append(
            {
                "index": number + 1,
                "type": kind,
                "start": first * sector,
                "size": max(0, last + 1 - first) * sector,
                "code": None,
                "name": GPT_ENTRY.shown(values, "name") or None,
            }
        )
        spans.append((first * sector, (last + 1) * sector, label))
        if first > last or first < header["first_usable_lba"] or last > header["last_usable_lba"]:
            info.malformed(
                "gpt.partition-outside-usable",
                f"{label} spans LBA {first}..{last}, outside the usable {header['first_usable_lba']}.."
                f"{header['last_usable_lba']}",
                GPT_ENTRY.offset_of("first_lba", base + at),
            )
        _ends_past_eof(info, label, (last + 1) * sector, reader.size, GPT_ENTRY.offset_of("last_lba", base + at))
    if header["entry_count"] > MAX_ENTRIES and any(array[MAX_ENTRIES * size :]):
        info.add(
            "read-budget", f"GPT has {header['entry_count']} entries; only the first {MAX_ENTRIES} are listed", base
        )
    _check_overlaps(info, spans, base)
    return partitions


def _backup_header(reader: Reader, info: Inspection, sector: int, lba: int) -> None:
    if lba < 2:
        info.malformed(
            "gpt.backup-before-primary",
            f"backup GPT header LBA {lba} is not after the primary header",
            GPT_HEADER.offset_of("alternate_lba", sector),
        )
    elif lba * sector >= reader.size:
        info.malformed(
            "gpt.backup-past-eof",
            f"backup GPT header at LBA {lba} is past the end of the file",
            GPT_HEADER.offset_of("alternate_lba", sector),
            WARNING,
        )
    else:
        _gpt_header(reader, info, sector, lba, "backup GPT header")
