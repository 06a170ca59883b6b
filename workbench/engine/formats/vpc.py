"""Microsoft Virtual PC / Hyper-V VHD (qemu calls it vpc).

Layout from Microsoft's "Virtual Hard Disk Image Format Specification" and qemu's block/vpc.c: a 512-byte
footer (``conectix``) at the end of the file, the only structure of a fixed disk; dynamic and
differencing disks copy it at offset 0 and keep a dynamic header (``cxsparse``) whose eight parent
locators name the parent of a differencing disk (absolute and relative host paths, file URLs).
"""

from __future__ import annotations

from ..checks import is_power_of_two
from ..fields import Field, Layout, Spec, bit_flags, clean_text, utc_text, uuid_text
from ..findings import INFO
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("vpc",)
PRIORITY = 40
GUEST_DATA_AT_ZERO = True  # a fixed VHD is raw data then a footer: an MBR/GPT at 0 is the guest's
# the locators Hyper-V resolves relative to the image (parent chains follow only these)
RELATIVE_LOCATOR = ("platform", ("W2ru", "Wi2r"))

SECTOR = 512
FOOTER_LEN = 512
COOKIE = b"conectix"
DYN_COOKIE = b"cxsparse"
DYN_LEN = 1024
VERSION = 0x00010000
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
DISK_TYPES = {FIXED: "fixed", DYNAMIC: "dynamic", DIFFERENCING: "differencing"}
EPOCH = 946_684_800  # 2000-01-01 00:00:00 UTC, in seconds since 1970
LOCATOR_COUNT, LOCATOR_AT = 8, 576
LOCATOR_CAP = 64 << 10  # locator data read per locator: a Windows long path (32767 UTF-16 units) fits
MAX_SECTORS = 0xFF000000  # qemu's VHD_MAX_SECTORS: 2040 GiB, the format's limit
MAX_GEOMETRY = 65535 * 16 * 255
# qemu 7.2 (block/vpc.c, vpc_open and vpc_ignore_current_size): the disk size is cylinders x heads x
# sectors x 512, as Virtual PC computes it, except for creators known to write an exact current_size
# (Hyper-V "win ", qemu with force_size "qem2", Disk2vhd "d2v ", XenConverter "CTXS", XenServer "tap\0")
# and for the maximum geometry 65535/16/255 (CHS would truncate the disk). qemu-img writes "qemu" and a
# CHS-rounded current_size, so both rules agree on its images. (A 2024 qemu change inverts the list: only
# "vpc " and "qemu" keep the geometry rule.) Both sizes are reported; the larger is the virtual size.
CURRENT_SIZE_CREATORS = frozenset({b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"})

FEATURES = {0: "temporary disk", 1: "reserved (always set)"}
FOOTER = Layout(
    "footer",
    [
        Spec("cookie", 0, "8s", "conectix", "text"),
        Spec("features", 8, "I", "", "hex"),
        Spec("format_version", 12, "I", "0x00010000", "hex"),
        Spec("data_offset", 16, "Q", "dynamic header offset (all ones: fixed disk)", "hex"),
        Spec("timestamp", 24, "I", "seconds since 2000-01-01 00:00 UTC"),
        Spec("creator_app", 28, "4s", "", "text"),
        Spec("creator_version", 32, "I", "major.minor, 16 bits each", "hex"),
        Spec("creator_host_os", 36, "4s", "Wi2k or Mac", "text"),
        Spec("original_size", 40, "Q", "bytes at creation"),
        Spec("current_size", 48, "Q", "bytes"),
        Spec("cylinders", 56, "H"),
        Spec("heads", 58, "B"),
        Spec("sectors_per_track", 59, "B"),
        Spec("disk_type", 60, "I", "2 fixed, 3 dynamic, 4 differencing"),
        Spec("checksum", 64, "I", "ones' complement of the byte sum", "hex"),
        Spec("unique_id", 68, "16s", "", "uuid"),
        Spec("saved_state", 84, "B", "non-zero: the disk belongs to a saved (suspended) machine"),
    ],
    ">",
    "hard disk footer",
)
DYNAMIC_HEADER = Layout(
    "dynamic disk header",
    [
        Spec("cookie", 0, "8s", "cxsparse", "text"),
        Spec("data_offset", 8, "Q", "unused, all ones", "hex"),
        Spec("table_offset", 16, "Q", "block allocation table"),
        Spec("header_version", 24, "I", "0x00010000", "hex"),
        Spec("max_table_entries", 28, "I", "blocks the table can map"),
        Spec("block_size", 32, "I", "bytes per block (cluster)"),
        Spec("checksum", 36, "I", "ones' complement of the byte sum", "hex"),
        Spec("parent_unique_id", 40, "16s", "", "uuid"),
        Spec("parent_timestamp", 56, "I", "seconds since 2000-01-01 00:00 UTC"),
        Spec("parent_unicode_name", 64, "512s", "parent file name, UTF-16BE", "utf16be"),
    ],
    ">",
    "sparse disk header",
)
LOCATOR = Layout(
    "parent locator",
    [
        Spec("platform_code", 0, "4s", "W2ku, W2ru, Wi2k, Wi2r, MacX, Mac", "text"),
        Spec("data_space", 4, "I", "space reserved (sectors, or bytes for some writers)"),
        Spec("data_length", 8, "I", "bytes"),
        Spec("reserved", 12, "I"),
        Spec("data_offset", 16, "Q", "absolute file offset"),
    ],
    ">",
)
# platform code -> (encoding of its data, what the data is); earlier codes name the backing first
PLATFORMS: dict[bytes, tuple[str, str]] = {
    b"W2ku": ("utf-16-le", "absolute Windows path"),
    b"W2ru": ("utf-16-le", "relative Windows path"),
    b"MacX": ("utf-8", "file URL"),
    b"Wi2k": ("latin-1", "absolute Windows path (deprecated)"),
    b"Wi2r": ("latin-1", "relative Windows path (deprecated)"),
    b"Mac ": ("utf-8", "Mac OS alias"),
}
_PREFERENCE = list(PLATFORMS)


def probe(reader: Reader) -> str | None:
    if reader.read(0, len(COOKIE)) == COOKIE:
        return "vpc"
    return "vpc" if _tail_footer(reader) else None


def _tail_footer(reader: Reader) -> tuple[bytes, int] | None:
    """The footer at the end of the file, or the 511-byte footer some early Virtual PC releases wrote."""
    at, tail = reader.read_tail(FOOTER_LEN)
    if tail[:8] == COOKIE and len(tail) == FOOTER_LEN:
        return tail, at
    if tail[1:9] == COOKIE:
        return tail[1:], at + 1
    return None


def checksum(data: bytes, field_at: int) -> int:
    """Ones' complement of the byte sum, the checksum field counted as zero."""
    return ~(sum(data) - sum(data[field_at : field_at + 4])) & 0xFFFFFFFF


def _time(seconds: int) -> str:
    return utc_text(EPOCH + seconds)


def parse(reader: Reader, info: Inspection) -> None:
    found = _tail_footer(reader)
    head = reader.read(0, FOOTER_LEN)
    if found is None and head[:8] != COOKIE:
        info.malformed("vpc.footer-missing", "no 'conectix' footer at the end of the file or at offset 0")
        return
    footer, at = found or (head, 0)
    values, group = FOOTER.read(footer, at)
    info.fields.append(group)
    if len(footer) < FOOTER.size:
        info.malformed("vpc.footer-truncated", f"footer is {len(footer)} bytes long, {FOOTER.size} needed", at)
        return
    for node in group.children:
        if node.name == "features":
            node.children.extend(bit_flags(values["features"], FEATURES, node.offset, node.size))
    _checkchecksum("footer", footer, values["checksum"], FOOTER.offset_of("checksum"), at, info)
    _check_copy(head, footer, at, values, info)
    _footer_details(footer, values, info)
    disk_type = values["disk_type"]
    if values["format_version"] != VERSION:
        info.malformed(
            "vpc.footer-version",
            f"footer format version 0x{values['format_version']:08x}, expected 0x00010000",
            FOOTER.offset_of("format_version", at),
        )
    if values["saved_state"]:
        info.dirty = True
        info.add(
            "dirty",
            "saved-state flag set: the disk belongs to a suspended machine",
            FOOTER.offset_of("saved_state", at),
        )
    if disk_type in (DYNAMIC, DIFFERENCING):
        _parse_dynamic(reader, info, values["data_offset"], disk_type)
    elif disk_type != FIXED:
        info.malformed(
            "vpc.disk-type",
            f"disk type {disk_type} is not fixed (2), dynamic (3) or differencing (4)",
            FOOTER.offset_of("disk_type", at),
        )


def _checkchecksum(what: str, data: bytes, stored: int, field_at: int, at: int, info: Inspection) -> None:
    computed = checksum(data, field_at)
    if computed != stored:
        info.add(
            "checksum-mismatch",
            f"{what} checksum 0x{stored:08x} stored, 0x{computed:08x} computed (qemu refuses the image)",
            at + field_at,
        )


def _check_copy(head: bytes, footer: bytes, at: int, values: dict[str, Any], info: Inspection) -> None:
    """The footer at the end against its copy at offset 0 (qemu reads the copy first)."""
    has_copy = head[:8] == COOKIE
    if at == 0:
        info.malformed(
            "vpc.footer-only-at-start", "no footer at the end of the file, only the copy at offset 0 (truncated?)", 0
        )
    elif values["disk_type"] == FIXED and has_copy:
        info.malformed(
            "vpc.fixed-data-starts-with-footer",
            "fixed disk whose guest data begins with a VHD footer: readers that look at offset 0 first "
            "(qemu) take it for the image's own",
            0,
        )
    elif values["disk_type"] != FIXED and not has_copy:
        info.malformed(
            "vpc.dynamic-without-footer-copy", "dynamic disk without the footer copy at offset 0 (qemu refuses it)", 0
        )
    elif has_copy and head[: len(footer)] != footer:
        copy = FOOTER.unpack(head)
        differ = [name for name, value in values.items() if copy.get(name) != value]
        info.malformed(
            "vpc.footer-copy-differs", f"footer copy at offset 0 differs from the footer at the end in {differ}", 0
        )


def _footer_details(footer: bytes, values: dict[str, Any], info: Inspection) -> None:
    creator = values["creator_app"]
    chs = values["cylinders"] * values["heads"] * values["sectors_per_track"]
    by_current = creator in CURRENT_SIZE_CREATORS or chs == MAX_GEOMETRY
    # Virtual PC and qemu 7.2 (for most creators) read the geometry, Hyper-V and newer qemu current_size,
    # and qemu's force_size_calc option picks either: the limit is judged against the larger. The maximum
    # geometry is the writers' "see current_size" mark (qemu, Hyper-V), not a size of its own.
    current = values["current_size"] // SECTOR * SECTOR
    sizes = {"current_size": current}
    if chs != MAX_GEOMETRY:
        sizes["geometry"] = chs * SECTOR
    # a geometry one cylinder short of current_size is how every Hyper-V disk looks: noted, not flagged
    cylinder = values["heads"] * values["sectors_per_track"] * SECTOR
    rounding = 0 <= current - chs * SECTOR < max(cylinder, SECTOR)
    info.sizes(sizes, FOOTER.offset_of("current_size"), INFO if rounding else None)
    largest = max(sizes.values())
    if largest > MAX_SECTORS * SECTOR:
        info.malformed(
            "vpc.size-too-large",
            f"disk size {largest} is over the VHD limit of 2040 GiB (qemu refuses)",
            FOOTER.offset_of("current_size"),
        )
    version = values["creator_version"]
    info.details.update(
        disk_type=DISK_TYPES.get(values["disk_type"], f"unknown ({values['disk_type']})"),
        creator_app=clean_text(values["creator_app"]),
        creator_version=f"{version >> 16}.{version & 0xFFFF}",
        creator_host_os=clean_text(values["creator_host_os"]),
        timestamp=_time(values["timestamp"]),
        unique_id=uuid_text(values["unique_id"]),
        current_size=values["current_size"],
        original_size=values["original_size"],
        geometry=[values["cylinders"], values["heads"], values["sectors_per_track"]],
        geometry_size=chs * SECTOR,
        size_rule="current_size" if by_current else "geometry",  # the one qemu 7.2 uses by default
        saved_state=bool(values["saved_state"]),
        temporary=bool(values["features"] & 1),
    )


def _parse_dynamic(reader: Reader, info: Inspection, offset: int, disk_type: int) -> None:
    if offset + DYN_LEN > reader.size:
        info.malformed(
            "vpc.dynamic-header-past-eof",
            f"dynamic header at offset {offset} does not fit in the {reader.size}-byte file",
            FOOTER.offset_of("data_offset"),
        )
        return
    data = reader.read(offset, DYN_LEN)
    values, group = DYNAMIC_HEADER.read(data, offset)
    info.fields.append(group)
    if data[:8] != DYN_COOKIE:
        info.malformed("vpc.dynamic-header-signature", f"no 'cxsparse' dynamic header at offset {offset}", offset)
        return
    _checkchecksum("dynamic header", data, values["checksum"], DYNAMIC_HEADER.offset_of("checksum"), offset, info)
    _check_table(values, offset, reader.size, info)
    info.details.update(
        block_size=values["block_size"],
        max_table_entries=values["max_table_entries"],
        parent_uuid=uuid_text(values["parent_unique_id"]),
        parent_timestamp=_time(values["parent_timestamp"]),
        parent_name=clean_text(values["parent_unicode_name"], "utf-16-be"),
    )
    paths = _locators(reader, info, data, offset, group)
    _report_parent(info, values, offset, paths, disk_type)


def _check_table(values: dict[str, Any], offset: int, size: int, info: Inspection) -> None:
    """qemu's refusals for the block size and the block allocation table (BAT, never read here)."""
    block, entries, table = values["block_size"], values["max_table_entries"], values["table_offset"]
    if values["header_version"] != VERSION:
        info.malformed(
            "vpc.dynamic-header-version",
            f"dynamic header version 0x{values['header_version']:08x}, expected 0x00010000",
            DYNAMIC_HEADER.offset_of("header_version", offset),
        )
    if block < SECTOR or not is_power_of_two(block):
        info.malformed(
            "vpc.block-size",
            f"block size {block} is not a power of two of at least 512",
            DYNAMIC_HEADER.offset_of("block_size", offset),
        )
        return
    info.cluster_size = block
    if entries > MAX_SECTORS * SECTOR // block:
        info.malformed(
            "vpc.bat-too-large",
            f"{entries} table entries map more than the VHD limit of 2040 GiB",
            DYNAMIC_HEADER.offset_of("max_table_entries", offset),
        )
    if entries * block < (info.virtual_size or 0):
        info.malformed(
            "vpc.bat-too-small",
            f"{entries} blocks of {block} bytes cannot hold {info.virtual_size} bytes",
            DYNAMIC_HEADER.offset_of("max_table_entries", offset),
        )
    if table + entries * 4 > size:
        info.malformed(
            "vpc.bat-past-eof",
            f"block allocation table of {entries} entries at offset {table} runs past the end of the {size}-byte file",
            DYNAMIC_HEADER.offset_of("table_offset", offset),
        )


def _locators(reader: Reader, info: Inspection, data: bytes, offset: int, group: Field) -> list[dict[str, Any]]:
    """Each used locator's path, read only when its data is small and inside the file."""
    paths = []
    for number in range(1, LOCATOR_COUNT + 1):
        start = LOCATOR_AT + (number - 1) * LOCATOR.size
        raw = data[start : start + LOCATOR.size]
        if not any(raw):
            continue
        values, node = LOCATOR.read(raw, offset + start, f"parent locator {number}")
        group.add(node)
        text = _locator_data(reader, info, values["platform_code"], values, number, node)
        if text:
            paths.append({"platform": values["platform_code"], "path": text, "offset": values["data_offset"]})
    return paths


def _locator_data(
    reader: Reader, info: Inspection, code: bytes, values: dict[str, Any], number: int, node: Field
) -> str | None:
    where, length = values["data_offset"], values["data_length"]
    label = f"parent locator {number} ({code.decode('latin-1')!r})"
    if code not in PLATFORMS:
        info.malformed("vpc.locator-platform", f"{label}: unknown platform code", node.offset)
        return None
    if not length or where + length > reader.size:
        info.malformed(
            "vpc.locator-past-eof",
            f"{label}: {length} bytes of data at offset {where} are outside the {reader.size}-byte file",
        )
        return None
    if length > LOCATOR_CAP:
        info.cap(f"{label}: its {length} bytes of data were not examined (over {LOCATOR_CAP})", where)
        return None
    encoding, what = PLATFORMS[code]
    text = clean_text(reader.read(where, length), encoding)
    node.add(Field("data", where, length, text, what))
    if not text:
        info.malformed("vpc.locator-empty", f"{label}: its data is empty", where)
    return text or None


def _report_parent(
    info: Inspection, values: dict[str, Any], offset: int, paths: list[dict[str, Any]], disk_type: int
) -> None:
    """Every locator path as a reference; the most specific one (or the parent name) as the backing."""
    for item in paths:
        platform = item["platform"].decode("latin-1")
        info.reference("parent locator", item["path"], item["offset"], platform=platform)
    name = clean_text(values["parent_unicode_name"], "utf-16-be")
    uuid = uuid_text(values["parent_unique_id"])
    if disk_type != DIFFERENCING:
        if paths or name:
            info.malformed(
                "vpc.parent-on-non-differencing",
                f"a {DISK_TYPES[disk_type]} disk carries a parent name or parent locators",
                offset,
            )
    elif paths:
        best = min(paths, key=lambda item: _PREFERENCE.index(item["platform"]))
        platform = best["platform"].decode("latin-1")
        info.set_backing(best["path"], "vpc", best["offset"], platform=platform)
    else:
        field = "parent_unicode_name" if name else "parent_unique_id"
        info.set_backing(name or uuid, "vpc", DYNAMIC_HEADER.offset_of(field, offset), parent_uuid=uuid)
        return
    if name:
        info.reference("parent name", name, DYNAMIC_HEADER.offset_of("parent_unicode_name", offset))
