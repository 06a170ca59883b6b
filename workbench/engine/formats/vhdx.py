"""VHDX (Hyper-V): file identifier, two headers, two region tables, the metadata region, the parent locator.

Layout from Microsoft's [MS-VHDX] specification (all little-endian, GUIDs in Microsoft mixed-endian
order). Each check names what qemu's block/vhdx.c does with the same value: it picks the valid header
with the higher sequence number, reads only the first region table, refuses more than 2047 region or
metadata entries, unknown *required* regions or items, and differencing images.
"""

from __future__ import annotations

from ..checks import is_power_of_two, overlaps
from ..checksums import crc32c
from ..fields import Field, Layout, Spec, clean_text, uuid_text
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("vhdx",)
PRIORITY = 50
# the locator key Hyper-V resolves relative to the image (parent chains follow only it)
RELATIVE_LOCATOR = ("key", ("relative_path",))

KIB = 1024
MIB = 1024 * KIB
SIGNATURE = b"vhdxfile"
HEADER_OFFSETS = (64 * KIB, 128 * KIB)
HEADER_SIZE = 4 * KIB  # the CRC covers the whole 4 KiB, not only the 80 defined bytes
REGION_OFFSETS = (192 * KIB, 256 * KIB)
REGION_TABLE_SIZE = 64 * KIB
HEADER_SECTION = MIB
MAX_ENTRIES = 2047  # region table and metadata table, per spec
ENTRY_SIZE = 32
MAX_ITEM_LENGTH = MIB  # metadata item, per spec
MIN_ITEM_OFFSET = 64 * KIB  # items start after the 64 KiB metadata table, per spec
LOCATOR_READ = 64 * KIB  # bytes of a parent locator inspected
MAX_DISK_SIZE = 64 << 40  # 64 TiB, per spec
SECTOR_SIZES = (512, 4096)
NULL_GUID = "00000000-0000-0000-0000-000000000000"

BAT = "2dc27766-f623-4200-9d64-115e9bfd4a08"
METADATA = "8b7ca206-4790-4b9a-b8fe-575f050f886e"
REGION_NAMES = {BAT: "BAT", METADATA: "metadata"}

FILE_PARAMETERS = "caa16737-fa36-4d43-b3b6-33f0aa44e76b"
VIRTUAL_DISK_SIZE = "2fa54224-cd1b-4876-b211-5dbed83bf4b8"
LOGICAL_SECTOR_SIZE = "8141bf1d-a96f-4709-ba47-f233a8faab5f"
PHYSICAL_SECTOR_SIZE = "cda348c7-445d-4471-9cc9-e9885251c556"
PAGE_83 = "beca12ab-b2e6-4523-93ef-c309e000c746"
PARENT_LOCATOR = "a8d35f2d-b30b-454d-abf7-d3d84834ab0c"
VHDX_LOCATOR_TYPE = "b04aefb7-d19e-4a81-b789-25b8e9445913"

PARAM_LEAVE_ALLOCATED = 0x1
PARAM_HAS_PARENT = 0x2
REGION_REQUIRED = 0x1
ITEM_REQUIRED = 0x4

PATH_KEYS = ("relative_path", "volume_path", "absolute_win32_path")
BACKING_PREFERENCE = ("relative_path", "absolute_win32_path", "volume_path")
LINKAGE_KEYS = ("parent_linkage", "parent_linkage2")

FILE_ID = Layout(
    "file identifier",
    [
        Spec("signature", 0, "8s", "vhdxfile", "text"),
        Spec("creator", 8, "512s", "UTF-16 name of the program that created the file (diagnostic only)", "utf16le"),
    ],
    "<",
)

HEADER = Layout(
    "header",
    [
        Spec("signature", 0, "4s", "head", "text"),
        Spec("checksum", 4, "I", "CRC-32C of the 4 KiB header with this field zeroed", "hex"),
        Spec("sequence_number", 8, "Q", "the valid header with the higher number is current"),
        Spec("file_write_guid", 16, "16s", "changed before the first write to the file", "guid"),
        Spec("data_write_guid", 32, "16s", "changed before the first guest-visible write", "guid"),
        Spec("log_guid", 48, "16s", "non-null: the log holds entries that must be replayed", "guid"),
        Spec("log_version", 64, "H", "must be 0"),
        Spec("version", 66, "H", "must be 1"),
        Spec("log_length", 68, "I", "bytes, a multiple of 1 MiB"),
        Spec("log_offset", 72, "Q", "bytes, a multiple of 1 MiB"),
    ],
    "<",
)

REGION_HEADER = Layout(
    "region table",
    [
        Spec("signature", 0, "4s", "regi", "text"),
        Spec("checksum", 4, "I", "CRC-32C of the 64 KiB table with this field zeroed", "hex"),
        Spec("entry_count", 8, "I", "at most 2047"),
        Spec("reserved", 12, "I"),
    ],
    "<",
)

REGION_ENTRY = Layout(
    "entry",
    [
        Spec("guid", 0, "16s", "region type: BAT or metadata are known", "guid"),
        Spec("file_offset", 16, "Q", "bytes from the start of the file"),
        Spec("length", 24, "I", "bytes"),
        Spec("flags", 28, "I", "bit 0: required (a reader must understand it)", "hex"),
    ],
    "<",
)

METADATA_HEADER = Layout(
    "metadata table",
    [
        Spec("signature", 0, "8s", "metadata", "text"),
        Spec("reserved", 8, "H"),
        Spec("entry_count", 10, "H", "at most 2047"),
    ],
    "<",
)

METADATA_ENTRY = Layout(
    "entry",
    [
        Spec("item_id", 0, "16s", "item type", "guid"),
        Spec("offset", 16, "I", "bytes from the start of the metadata region (at least 64 KiB)"),
        Spec("length", 20, "I", "bytes (at most 1 MiB)"),
        Spec("flags", 24, "I", "bit 0 user, bit 1 virtual disk, bit 2 required", "hex"),
        Spec("reserved", 28, "I"),
    ],
    "<",
)

ITEMS: dict[str, Layout] = {
    FILE_PARAMETERS: Layout(
        "file parameters",
        [
            Spec("block_size", 0, "I", "payload block size: a power of 2 from 1 MiB to 256 MiB"),
            Spec("flags", 4, "I", "bit 0 leave blocks allocated (fixed), bit 1 has parent", "hex"),
        ],
        "<",
    ),
    VIRTUAL_DISK_SIZE: Layout("virtual disk size", [Spec("virtual_disk_size", 0, "Q", "bytes seen by the guest")], "<"),
    LOGICAL_SECTOR_SIZE: Layout("logical sector size", [Spec("logical_sector_size", 0, "I", "512 or 4096")], "<"),
    PHYSICAL_SECTOR_SIZE: Layout("physical sector size", [Spec("physical_sector_size", 0, "I", "512 or 4096")], "<"),
    PAGE_83: Layout("page 83 data", [Spec("page_83_id", 0, "16s", "SCSI page 0x83 identifier", "guid")], "<"),
}
ITEM_NAMES = {guid: layout.name for guid, layout in ITEMS.items()} | {PARENT_LOCATOR: "parent locator"}

LOCATOR_HEADER = Layout(
    "parent locator",
    [
        Spec("locator_type", 0, "16s", "B04AEFB7-D19E-4A81-B789-25B8E9445913 for a VHDX parent", "guid"),
        Spec("reserved", 16, "H"),
        Spec("key_value_count", 18, "H", "key/value pairs that follow"),
    ],
    "<",
)
LOCATOR_HEADER_SIZE = LOCATOR_HEADER.size

LOCATOR_ENTRY = Layout(
    "entry",
    [
        Spec("key_offset", 0, "I", "bytes from the start of the locator"),
        Spec("value_offset", 4, "I", "bytes from the start of the locator"),
        Spec("key_length", 8, "H", "bytes (UTF-16LE)"),
        Spec("value_length", 10, "H", "bytes (UTF-16LE)"),
    ],
    "<",
)
LOCATOR_ENTRY_SIZE = LOCATOR_ENTRY.size


def checksum(block: bytes) -> int:
    """The CRC-32C of a header or region table: the block with its checksum field (bytes 4..8) zeroed."""
    return crc32c(block[:4] + bytes(4) + block[8:])


def probe(reader: Reader) -> str | None:
    return "vhdx" if reader.read(0, 8) == SIGNATURE else None


def parse(reader: Reader, info: Inspection) -> None:
    data = reader.read(0, 8 + 512)
    values, group = FILE_ID.read(data, 0)
    info.fields.append(group)
    info.details["creator"] = clean_text(values.get("creator", b""), "utf-16-le")
    header = _current_header(reader, info)
    if header is None:
        return
    _check_log(reader, info, header)
    entries = _region_table(reader, info)
    if entries is None:
        return
    regions = _regions(reader, info, entries, header)
    if METADATA not in regions:
        return
    meta = regions[METADATA]
    items = _metadata_items(reader, info, meta)
    params = _item_values(reader, info, meta["file_offset"], items)
    _apply_parameters(info, params)
    if BAT in regions:
        _check_bat_size(info, params, regions[BAT])
    has_parent = bool(params.get("flags", 0) & PARAM_HAS_PARENT)
    if PARENT_LOCATOR in items:
        _parent_locator(reader, info, items[PARENT_LOCATOR], has_parent)
    elif has_parent:
        info.malformed(
            "vhdx.parent-without-locator",
            "file parameters say the image has a parent but there is no parent locator item",
        )


# --- headers and log -------------------------------------------------------------------------------


def _checked(
    reader: Reader,
    info: Inspection,
    check: str,
    label: str,
    offset: int,
    size: int,
    layout: Layout,
    signature: bytes,
    note: str,
) -> tuple[dict[str, Any] | None, Field]:
    """A structure's values when it is whole, signed and its CRC-32C holds; its field group either way.
    ``check`` prefixes the check ids (``vhdx.header``: ``vhdx.header-truncated``, ``vhdx.header-signature``)."""
    values, group, complete = info.structure(reader, layout, offset, check + "-truncated", label, size)
    group.value = "invalid"
    if not complete:
        return None, group
    if values["signature"] != signature:
        info.malformed(
            check + "-signature",
            f"{label} at {offset}: signature {clean_text(values['signature'])!r}, expected {signature.decode()!r}",
            offset,
        )
        return None, group
    computed = checksum(reader.read(offset, size))  # served from the reader's cache
    if computed != values["checksum"]:
        detail = f"{label} at {offset}: stored CRC-32C 0x{values['checksum']:08x}, computed 0x{computed:08x}{note}"
        info.add("checksum-mismatch", detail, layout.offset_of("checksum", offset))
        return None, group
    return values, group


def _read_header(reader: Reader, info: Inspection, index: int) -> tuple[dict[str, Any] | None, Field]:
    """One header and its field group; the values only when signature, checksum and version hold."""
    offset = HEADER_OFFSETS[index]
    label = f"header {index + 1}"
    values, group = _checked(
        reader, info, "vhdx.header", label, offset, HEADER_SIZE, HEADER, b"head", "; readers ignore this header"
    )
    if values is None:
        return None, group
    if values["version"] != 1:
        info.malformed(
            "vhdx.header-version",
            f"{label}: version {values['version']}, only 1 is defined",
            HEADER.offset_of("version", offset),
        )
        return None, group
    group.value = "valid"
    return values, group


def _current_header(reader: Reader, info: Inspection) -> dict[str, Any] | None:
    """The valid header with the higher sequence number (identical twins are allowed, as Disk2VHD writes)."""
    read = [_read_header(reader, info, index) for index in (0, 1)]
    valid = [(values["sequence_number"], index) for index, (values, _) in enumerate(read) if values]
    if not valid:
        info.malformed(
            "vhdx.no-valid-header", "neither header at 64 KiB nor at 128 KiB is valid: no reader can open the image", 0
        )
        return None
    first, second = read[0][0], read[1][0]
    if first and second and first["sequence_number"] == second["sequence_number"] and first != second:
        info.malformed(
            "vhdx.headers-same-sequence",
            f"both headers have sequence number {first['sequence_number']} but differ: which one is current "
            "is undefined (qemu refuses the image)",
            HEADER.offset_of("sequence_number", HEADER_OFFSETS[0]),
        )
    _, index = max(valid, key=lambda item: (item[0], -item[1]))
    for other, (values, group) in enumerate(read):
        if values is not None:  # the values come back only for a valid header; the group's value is display
            group.value = "current" if other == index else "not current"
    info.details["current_header"] = index + 1
    return read[index][0]


def _check_log(reader: Reader, info: Inspection, header: dict[str, Any]) -> None:
    offset, length = header["log_offset"], header["log_length"]
    where = HEADER_OFFSETS[info.details["current_header"] - 1]
    if header["log_version"] != 0:
        info.malformed(
            "vhdx.log-version",
            f"log version {header['log_version']}, only 0 is defined (qemu refuses)",
            HEADER.offset_of("log_version", where),
        )
    if offset < MIB or offset % MIB or length % MIB:
        info.malformed(
            "vhdx.log-unaligned",
            f"log at offset {offset} with length {length}: the specification wants both in 1 MiB multiples, "
            "after the 1 MiB header section (qemu refuses a misplaced log)",
            HEADER.offset_of("log_length", where),
        )
    if offset + length > reader.size:
        info.malformed(
            "vhdx.log-past-eof",
            f"log {offset}+{length} ends past the end of the file ({reader.size})",
            HEADER.offset_of("log_offset", where),
        )
    log_guid = uuid_text(header["log_guid"], mixed_endian=True)
    if log_guid != NULL_GUID:
        info.dirty = True
        info.add(
            "dirty",
            f"log GUID {log_guid} is set: the log ({length} bytes at {offset}) must be replayed before "
            "the image is consistent; qemu replays valid entries on a read-write open and refuses a read-only one",
            HEADER.offset_of("log_guid", where),
        )
    info.details["log"] = {"guid": log_guid, "offset": offset, "length": length}


# --- region table ----------------------------------------------------------------------------------


def _read_region_table(reader: Reader, info: Inspection, index: int) -> tuple[bytes | None, Field]:
    """The entry bytes of one region table when it is valid, and its field group."""
    offset = REGION_OFFSETS[index]
    label = f"region table {index + 1}"
    values, group = _checked(
        reader, info, "vhdx.region-table", label, offset, REGION_TABLE_SIZE, REGION_HEADER, b"regi", ""
    )
    if values is None:
        return None, group
    data = reader.read(offset, REGION_TABLE_SIZE)  # served from the reader's cache
    count = values["entry_count"]
    if count > MAX_ENTRIES:
        info.malformed(
            "vhdx.region-count",
            f"{label}: entry count {count} exceeds the limit of {MAX_ENTRIES} (qemu refuses)",
            offset,
        )
        return None, group
    group.value = "valid"
    return data[16 : 16 + count * ENTRY_SIZE], group


def _region_table(reader: Reader, info: Inspection) -> list[dict[str, Any]] | None:
    """The entries of the first valid region table (qemu reads only the first one)."""
    tables = [_read_region_table(reader, info, index) for index in (0, 1)]
    (first, _), (second, _) = tables
    if first is not None and second is not None and first != second:
        info.malformed(
            "vhdx.region-tables-differ",
            "region tables 1 and 2 hold different entries: qemu reads only table 1, other readers may use table 2",
            REGION_OFFSETS[1],
        )
    chosen = 0 if first is not None else 1
    raw, group = tables[chosen]
    if raw is None:
        info.malformed(
            "vhdx.no-valid-region-table", "neither region table at 192 KiB nor at 256 KiB is valid", REGION_OFFSETS[0]
        )
        return None
    if chosen == 1:
        info.malformed(
            "vhdx.region-table-1-invalid",
            "region table 1 is invalid: qemu refuses the image, other readers use table 2",
        )
    group.value = "in use"
    info.details["region_table"] = chosen + 1
    base = REGION_OFFSETS[chosen] + 16
    entries = []
    for number in range(len(raw) // ENTRY_SIZE):
        start = number * ENTRY_SIZE
        values, entry = REGION_ENTRY.read(raw[start : start + ENTRY_SIZE], base + start, f"entry {number}")
        values["guid"] = uuid_text(values["guid"], mixed_endian=True)  # the region's type, as the table names it
        entry.value = REGION_NAMES.get(values["guid"], "unknown region")
        group.add(entry)
        values["at"] = base + start
        entries.append(values)
    return entries


def _regions(
    reader: Reader, info: Inspection, entries: list[dict[str, Any]], header: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The BAT and metadata regions, after bounds, duplicate and overlap checks."""
    found: dict[str, dict[str, Any]] = {}
    spans = [(0, HEADER_SECTION, "header section"), (header["log_offset"], header["log_length"], "log")]
    for entry in entries:
        guid, start, length = entry["guid"], entry["file_offset"], entry["length"]
        name = REGION_NAMES.get(guid)
        label = f"{name} region" if name else f"region {guid}"
        spans.append((start, length, label))
        if start + length > reader.size:
            info.malformed(
                "vhdx.region-past-eof",
                f"{label} {start}+{length} ends past the end of the file ({reader.size})",
                entry["at"],
            )
        if name is None:
            if entry["flags"] & REGION_REQUIRED:
                info.add(
                    "unknown-features",
                    f"required region {guid} is unknown: a reader must refuse the image (qemu does)",
                    entry["at"],
                )
            continue
        if guid in found:
            info.malformed("vhdx.region-duplicate", f"the {name} region is listed twice (qemu refuses)", entry["at"])
            continue
        found[guid] = entry
    _check_overlaps(info, spans)
    missing = [REGION_NAMES[guid] for guid in (BAT, METADATA) if guid not in found]
    if missing:
        info.malformed("vhdx.region-missing", f"required region(s) missing: {', '.join(missing)}", REGION_OFFSETS[0])
    info.details["regions"] = {
        REGION_NAMES[g]: {"offset": e["file_offset"], "length": e["length"]} for g, e in found.items()
    }
    return found


def _check_overlaps(info: Inspection, spans: list[tuple[int, int, str]]) -> None:
    """Regions, log and header section must not share bytes."""
    pairs = overlaps((start, start + length, label) for start, length, label in spans)
    found = [f"{later} overlaps {earlier}" for earlier, later in pairs]
    if found:
        shown = "; ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        info.malformed("vhdx.overlap", f"overlapping structures: {shown} (qemu refuses)")


# --- metadata --------------------------------------------------------------------------------------


def _metadata_items(reader: Reader, info: Inspection, region: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The usable known items of the metadata table: id -> entry, with ``data_at`` the item's file offset."""
    base, region_length = region["file_offset"], region["length"]
    head = reader.read(base, ENTRY_SIZE)
    values, group = METADATA_HEADER.read(head, base)
    info.fields.append(group)
    if len(head) < ENTRY_SIZE or values.get("signature") != b"metadata":
        info.malformed(
            "vhdx.metadata-signature",
            f"no metadata table header at {base} (signature {clean_text(values.get('signature', b''))!r})",
            base,
        )
        return {}
    count = values["entry_count"]
    if count > MAX_ENTRIES:
        info.malformed(
            "vhdx.metadata-count",
            f"metadata entry count {count} exceeds the limit of {MAX_ENTRIES} (qemu refuses)",
            METADATA_HEADER.offset_of("entry_count", base),
        )
        count = MAX_ENTRIES
    if (count + 1) * ENTRY_SIZE > region_length:
        info.malformed(
            "vhdx.metadata-past-region",
            f"metadata table of {count} entries does not fit its {region_length}-byte region",
            METADATA_HEADER.offset_of("entry_count", base),
        )
        count = max(0, region_length // ENTRY_SIZE - 1)
    data = reader.read(base + ENTRY_SIZE, count * ENTRY_SIZE)
    if len(data) < count * ENTRY_SIZE:
        info.malformed(
            "vhdx.metadata-truncated",
            f"metadata table truncated: {len(data) // ENTRY_SIZE} of {count} entries in the file",
            base,
        )
        count = len(data) // ENTRY_SIZE
    items: dict[str, dict[str, Any]] = {}
    for number in range(count):
        at = base + ENTRY_SIZE * (number + 1)
        chunk = data[number * ENTRY_SIZE : (number + 1) * ENTRY_SIZE]
        entry, field = METADATA_ENTRY.read(chunk, at, f"entry {number}")
        entry["item_id"] = uuid_text(entry["item_id"], mixed_endian=True)  # the item's type
        field.value = ITEM_NAMES.get(entry["item_id"], "unknown item")
        group.add(field)
        entry["at"] = at
        if _item_usable(reader, info, entry, region, items):
            items[entry["item_id"]] = entry
    return items


def _item_usable(
    reader: Reader, info: Inspection, entry: dict[str, Any], region: dict[str, Any], items: dict[str, Any]
) -> bool:
    """Whether a metadata entry is a known, unique item whose bytes lie inside the region and the file."""
    item, offset, length, at = entry["item_id"], entry["offset"], entry["length"], entry["at"]
    name = ITEM_NAMES.get(item)
    if name is None:
        if entry["flags"] & ITEM_REQUIRED:
            info.add(
                "unknown-features", f"required metadata item {item} is unknown: a reader must refuse the image", at
            )
        return False
    if item in items:
        info.malformed("vhdx.metadata-item-duplicate", f"metadata item {name} is listed twice (qemu refuses)", at)
        return False
    problems = []
    if length > MAX_ITEM_LENGTH:
        problems.append(f"length {length} exceeds 1 MiB")
    if length and offset < MIN_ITEM_OFFSET:
        problems.append(f"offset {offset} lies inside the 64 KiB table")
    if offset + length > region["length"]:
        problems.append(f"{offset}+{length} ends past the {region['length']}-byte region")
    if region["file_offset"] + offset + length > reader.size:
        problems.append(f"ends past the end of the file ({reader.size})")
    if problems:
        info.malformed("vhdx.metadata-item-placement", f"metadata item {name}: {'; '.join(problems)}", at)
        return False
    entry["data_at"] = region["file_offset"] + offset
    return True


def _item_values(reader: Reader, info: Inspection, base: int, items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Decode the fixed-size known items (file parameters, sizes, page 83)."""
    values: dict[str, Any] = {}
    for guid, layout in ITEMS.items():
        entry = items.get(guid)
        if entry is None:
            continue
        name, need = layout.name, layout.size
        if entry["length"] < need:
            info.malformed(
                "vhdx.metadata-item-size",
                f"metadata item {name} is {entry['length']} bytes, needs {need}",
                entry["data_at"],
            )
            continue
        found, group = layout.read(reader.read(entry["data_at"], need), entry["data_at"])
        info.fields.append(group)
        values.update(found)
    missing = [ITEMS[guid].name for guid in ITEMS if guid not in items]
    if missing:
        info.malformed(
            "vhdx.metadata-item-missing",
            f"required metadata item(s) missing: {', '.join(missing)} (qemu refuses)",
            base,
        )
    return values


def _apply_parameters(info: Inspection, params: dict[str, Any]) -> None:
    block = params.get("block_size")
    if block is not None:
        if MIB <= block <= 256 * MIB and is_power_of_two(block):
            info.cluster_size = block
        else:
            info.malformed(
                "vhdx.block-size", f"block size {block} is not a power of 2 from 1 MiB to 256 MiB (qemu refuses)"
            )
    for key in ("logical_sector_size", "physical_sector_size"):
        if key in params and params[key] not in SECTOR_SIZES:
            info.malformed("vhdx.sector-size", f"{key.replace('_', ' ')} {params[key]} is neither 512 nor 4096")
    size = params.get("virtual_disk_size")
    if size is not None:
        info.virtual_size = size
        sector = params.get("logical_sector_size")
        if sector in SECTOR_SIZES and size % sector:
            info.malformed(
                "vhdx.size-unaligned", f"virtual disk size {size} is not a multiple of the {sector}-byte logical sector"
            )
        if size > MAX_DISK_SIZE:
            info.malformed("vhdx.size-too-large", f"virtual disk size {size} exceeds the 64 TiB maximum of the format")
    flags = params.get("flags", 0)
    info.details.update(
        {
            "block_size": block,
            "logical_sector_size": params.get("logical_sector_size"),
            "physical_sector_size": params.get("physical_sector_size"),
            "page_83_id": uuid_text(params["page_83_id"], mixed_endian=True) if "page_83_id" in params else None,
            "has_parent": bool(flags & PARAM_HAS_PARENT),
            "leave_blocks_allocated": bool(flags & PARAM_LEAVE_ALLOCATED),
            "subformat": "differencing"
            if flags & PARAM_HAS_PARENT
            else "fixed"
            if flags & PARAM_LEAVE_ALLOCATED
            else "dynamic",
        }
    )


def _check_bat_size(info: Inspection, params: dict[str, Any], bat: dict[str, Any]) -> None:
    """The BAT must hold an entry per payload block plus the interleaved sector-bitmap entries (as qemu counts)."""
    block, sector, size = (params.get(k) for k in ("block_size", "logical_sector_size", "virtual_disk_size"))
    if info.cluster_size is None or sector not in SECTOR_SIZES or size is None:
        return
    chunk_ratio = (1 << 23) * sector // block
    blocks = -(-size // block)
    if params.get("flags", 0) & PARAM_HAS_PARENT:
        needed = -(-blocks // chunk_ratio) * (chunk_ratio + 1)
    else:
        needed = blocks + (blocks - 1) // chunk_ratio if blocks else 0
    if needed * 8 > bat["length"]:
        info.malformed(
            "vhdx.bat-too-small",
            f"BAT region of {bat['length']} bytes holds {bat['length'] // 8} entries, the disk needs {needed} "
            "(qemu refuses)",
            bat["at"],
        )


# --- parent locator --------------------------------------------------------------------------------


def _parent_locator(reader: Reader, info: Inspection, entry: dict[str, Any], has_parent: bool) -> None:
    base, length = entry["data_at"], entry["length"]
    if length > LOCATOR_READ:
        missed = length - LOCATOR_READ
        info.cap(f"parent locator of {length} bytes: the {missed} past {LOCATOR_READ} were not examined", base)
    data = reader.read(base, min(length, LOCATOR_READ))
    values, group = LOCATOR_HEADER.read(data, base)
    info.fields.append(group)
    if len(data) < LOCATOR_HEADER_SIZE:
        info.malformed(
            "vhdx.locator-truncated", f"parent locator of {len(data)} bytes is shorter than its 20-byte header", base
        )
        return
    locator_type = uuid_text(values["locator_type"], mixed_endian=True)
    vhdx_type = locator_type == VHDX_LOCATOR_TYPE
    if not vhdx_type:
        info.add("unknown-features", f"parent locator type {locator_type} is not the VHDX locator", base)
    count = values["key_value_count"]
    room = (len(data) - LOCATOR_HEADER_SIZE) // LOCATOR_ENTRY_SIZE
    if count > room:
        info.malformed(
            "vhdx.locator-count",
            f"parent locator declares {count} key/value pairs, its bytes hold {room}",
            LOCATOR_HEADER.offset_of("key_value_count", base),
        )
        count = room
    pairs = _locator_pairs(info, data, base, count, group)  # every pair: ``room`` bounds them
    info.details["parent_locator"] = {key: value for key, value, _ in pairs[:64]}
    for key, value, at in pairs:
        if key in PATH_KEYS:
            info.reference("parent locator", value, at, key=key)
        elif key in LINKAGE_KEYS:
            info.details[key] = value
    if vhdx_type and "parent_linkage" not in info.details:
        info.malformed("vhdx.locator-no-linkage", "VHDX parent locator without the required parent_linkage key", base)
    paths = {key: (value, at) for key, value, at in pairs if key in PATH_KEYS}
    if not has_parent:
        if paths:  # a reader that trusts the locator over the flag (or a flag flipped later) opens them
            shown = ", ".join(sorted(paths))
            info.malformed(
                "vhdx.locator-without-parent-flag",
                f"parent locator with parent paths ({shown}) but the has-parent flag is clear",
                base,
            )
    else:
        best = next((key for key in BACKING_PREFERENCE if key in paths), None)
        if best is None:
            info.malformed("vhdx.locator-no-path", "differencing image whose parent locator names no parent path", base)
        else:
            info.set_backing(paths[best][0], "vhdx", paths[best][1], key=best)


def _locator_pairs(info: Inspection, data: bytes, base: int, count: int, group: Field) -> list[tuple[str, str, int]]:
    """Key/value strings (UTF-16LE, bounds-checked inside the locator) and the offset of each value."""
    pairs = []
    for number in range(count):
        start = LOCATOR_HEADER_SIZE + number * LOCATOR_ENTRY_SIZE
        chunk = data[start : start + LOCATOR_ENTRY_SIZE]
        entry, field = LOCATOR_ENTRY.read(chunk, base + start, f"entry {number}")
        group.add(field)
        texts = []
        for part in ("key", "value"):
            offset, length = entry[f"{part}_offset"], entry[f"{part}_length"]
            if not length or offset + length > len(data):
                info.malformed(
                    "vhdx.locator-entry-range",
                    f"parent locator entry {number}: {part} {offset}+{length} is empty or outside the locator",
                    base + start,
                )
                break
            text = clean_text(data[offset : offset + length], "utf-16-le")
            field.add(Field(part, base + offset, length, text, "UTF-16LE"))
            texts.append(text)
        if len(texts) == 2:
            field.value = texts[0]
            pairs.append((texts[0], texts[1], base + entry["value_offset"]))
    return pairs
