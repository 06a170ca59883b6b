"""VMware VMDK: sparse extents (``KDMV``, the older ESX ``COWD``) and text descriptors.

A VMDK is a set of files tied together by a text descriptor, embedded in a sparse extent or standing
alone. The descriptor's extent lines and its ``parentFileNameHint`` can name any host path; every one is
reported, none is ever opened. Layouts follow VMware's "Virtual Disk Format 1.1" and qemu's block/vmdk.c.
"""

from __future__ import annotations

import re

from ..fields import Field, Layout, Spec, bit_flags, clean_text
from ..findings import CRITICAL
from ..inspection import MAX_LIST, Inspection, reference_kind
from ..reader import Reader
from . import _vmdk_text as text
from ._vmdk_text import QEMU_DESC_MAX, Descriptor, Extent, Value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("vmdk",)
PRIORITY = 50

SECTOR = 512
KDMV, COWD = b"KDMV", b"COWD"
COWD_HEADER_LEN = 2048
PROBE_BYTES = 1024
QEMU_WINDOW_AT = 0x200  # vmdk_open: s->desc_offset of a KDMV or COWD file
QEMU_WINDOW = 20 * SECTOR  # vmdk_parent_open and vmdk_read_cid read DESC_SIZE bytes there
U64 = (1 << 64) - 1
GD_AT_END = 0xFFFF_FFFF_FFFF_FFFF  # streamOptimized: the real header is the footer near EOF
MARKER_FOOTER, MARKER_EOS = 3, 0
MAX_GTES_PER_GT = 512  # qemu: "L2 table size too big"
MAX_GRAIN_SECTORS = 0x200000  # qemu: "Invalid granularity"
MAX_L1_ENTRIES = 32 * 1024 * 1024  # qemu: "L1 size too big"
MAX_EXTENT_FINDINGS = 32  # one finding each; the rest are summed up in one
MAX_DDB = 64
NEWLINE_CHECK = b"\n \r\n"
COMPRESSION = {0: "none", 1: "deflate"}
EXTENT_TYPES = frozenset({"FLAT", "SPARSE", "ZERO", "VMFS", "VMFSSPARSE", "VMFSRDM", "VMFSRAW", "SESPARSE"})

KDMV_FLAGS = {
    0: "valid newline detection test",
    1: "redundant grain table",
    2: "zeroed-grain table entries",
    16: "compressed grains",
    17: "metadata markers",
}
KDMV_LAYOUT = Layout(
    "sparse extent header",
    [
        Spec("magic", 0, "4s", "KDMV", "text"),
        Spec("version", 4, "I", "1, 2 or 3"),
        Spec("flags", 8, "I", "", "hex"),
        Spec("capacity", 12, "Q", "virtual size in sectors"),
        Spec("grain_size", 20, "Q", "sectors per grain (cluster)"),
        Spec("descriptor_offset", 28, "Q", "embedded descriptor, in sectors (0: none)"),
        Spec("descriptor_size", 36, "Q", "embedded descriptor size, in sectors"),
        Spec("gtes_per_gt", 44, "I", "grain table entries per grain table"),
        Spec("rgd_offset", 48, "Q", "redundant grain directory, in sectors"),
        Spec("gd_offset", 56, "Q", "grain directory, in sectors (all ones: see the footer)", "hex"),
        Spec("overhead", 64, "Q", "sectors of metadata before the first grain"),
        Spec("unclean_shutdown", 72, "B", "non-zero: not closed cleanly"),
        Spec("newline_check", 73, "4s", "must be \\n \\r\\n (damaged by text-mode transfers)", "bytes"),
        Spec("compression", 77, "H", "0 none, 1 deflate (streamOptimized)"),
    ],
    "<",
    "VMDK4 hosted sparse extent",
)
KDMV_HEADER_LEN = KDMV_LAYOUT.size  # magic through compressAlgorithm
MARKER_LAYOUT = Layout(
    "marker", [Spec("value", 0, "Q"), Spec("size", 8, "I"), Spec("type", 12, "I", "3 footer, 0 end of stream")], "<"
)

COWD_ROOT = 0x01
COWD_FLAGS = {0: "root (no parent)", 1: "check capable", 2: "inconsistent"}
COWD_LAYOUT = Layout(
    "COWD header",
    [
        Spec("magic", 0, "4s", "COWD", "text"),
        Spec("version", 4, "I"),
        Spec("flags", 8, "I", "bit 0 root disk", "hex"),
        Spec("capacity", 12, "I", "virtual size in sectors"),
        Spec("grain_size", 16, "I", "sectors per grain"),
        Spec("gd_offset", 20, "I", "grain directory, in sectors"),
        Spec("gd_entries", 24, "I"),
        Spec("free_sector", 28, "I"),
    ],
    "<",
    "ESX sparse extent",
)
COWD_ROOT_SPECS = [Spec("cylinders", 32, "I"), Spec("heads", 36, "I"), Spec("sectors", 40, "I")]
COWD_CHILD_SPECS = [
    Spec("parent_file_name", 32, "1024s", "the parent disk (child disks only)", "text"),
    Spec("parent_generation", 1056, "I"),
]
COWD_TAIL_SPECS = [
    Spec("generation", 1060, "I"),
    Spec("name", 1064, "60s", "", "text"),
    Spec("description", 1124, "512s", "", "text"),
    Spec("saved_generation", 1636, "I"),
    Spec("unclean_shutdown", 1648, "I", "non-zero: not closed cleanly"),
]

_VERSION_LINE = rb'version\s*=\s*"?[1-3]"?'
_DRIVE = r"[A-Za-z]:"
_SEPARATORS = r"[/\\]"
_HEX_CID = r"[0-9a-fA-F]{1,8}"


def probe(reader: Reader) -> str | None:
    head = reader.read(0, PROBE_BYTES)
    if head[:4] in (KDMV, COWD):
        return "vmdk"
    return "vmdk" if _looks_like_descriptor(head) else None


def opens_when_declared(reader: Reader) -> bool:
    """qemu -f vmdk reads any file of 4 bytes or more as a text descriptor (vmdk_open, vmdk_read_desc)."""
    return reader.size >= 4


def _looks_like_descriptor(head: bytes) -> bool:
    """The descriptor banner, or (qemu's rule) only blank and comment lines before ``version=1..3``."""
    if head.lstrip().startswith(b"# Disk DescriptorFile"):
        return True
    for line in head.split(b"\n")[:-1]:  # the last piece may be cut by the probe window
        text = line.strip(b" \t\r")
        if not text or text.startswith(b"#"):
            continue
        return re.fullmatch(_VERSION_LINE, text) is not None
    return False


def parse(reader: Reader, info: Inspection) -> None:
    magic = reader.read(0, 4)
    if magic == KDMV:
        _parse_kdmv(reader, info)
    elif magic == COWD:
        _parse_cowd(reader, info)
    else:
        _parse_descriptor_file(reader, info)


# --- the text descriptor -----------------------------------------------------------------------------


def _public(ext: Extent, external: bool, kind: str) -> dict[str, Any]:
    return {
        "access": ext.access,
        "sectors": ext.sectors,
        "type": ext.type,
        "filename": ext.filename,
        "offset": ext.offset or 0,
        "external": external,
        "kind": kind,
    }


def _location(name: str) -> tuple[str, str]:
    """Where an extent's file name points: a short kind and a phrase for the finding."""
    if not name:
        return "none", "no file"
    ref = reference_kind(name)
    if ref != "path":
        return ref, f"{ref} name"
    if name.startswith(("\\\\", "//")):
        return "unc", "UNC network or device path"
    if re.match(_DRIVE, name):
        return "drive", "Windows drive path"
    if name.startswith(("/", "\\")):
        return "absolute", "absolute host path"
    parts = re.split(_SEPARATORS, name)
    if ".." in parts:
        return "parent", "relative path climbing out of the image's folder"
    if len(parts) > 1:
        return "subfolder", "relative path into a subfolder"
    return "sibling", "file beside the image"


def _apply_descriptor(desc: Descriptor, info: Inspection, self_allowed: bool) -> None:
    """Findings, extents and details from a parsed descriptor (the parent is reported with qemu's
    other candidates, see :func:`_report_parents`).

    ``self_allowed``: the descriptor is embedded in a sparse extent that holds data, so a single SPARSE
    extent named without any path is that file itself (qemu writes the image's own base name there).
    """
    create_type = desc.keys.get("createType")
    desc.node.value = create_type.text if create_type else None
    info.fields.append(desc.node)
    _report_extents(desc, info, self_allowed)
    _report_problems(desc, info)
    details = info.details
    if create_type:
        details["create_type"] = create_type.text
    for key, name in (("CID", "cid"), ("parentCID", "parent_cid")):
        if key in desc.keys:
            details[name] = _cid(desc.keys[key], info)
    ddb = {k: v.text[:256] for k, v in desc.keys.items() if k.startswith("ddb.")}
    if ddb:
        details["ddb"] = dict(list(ddb.items())[:MAX_DDB])
    details["extent_count"] = desc.extent_count


def _number(text: str) -> int | str:
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else text[:16]


def _cid(value: Value, info: Inspection) -> int | str:
    if re.fullmatch(_HEX_CID, value.text):
        return int(value.text, 16)
    info.malformed("vmdk.cid", f"content id {value.text[:80]!r} is not 1 to 8 hex digits", value.at)
    return value.text[:80]


def _how(ext: Extent) -> str:
    """Which reader takes the line as an extent, when they disagree, and whether qemu opens it."""
    opens = "; qemu opens it (vmdk_parse_extents)" if ext.qemu_opens else ""
    if ext.grammar == "qemu":
        return f"; not a well-formed extent line, but qemu's sscanf tokeniser reads it as one{opens}"
    if ext.grammar == "VMware":
        return "; qemu's sscanf tokeniser reads this line differently"
    return opens


def _report_extents(desc: Descriptor, info: Inspection, self_allowed: bool) -> None:
    """Every listed extent with its findings; past the list, each distinct file name is still a reference."""
    shown, referenced = 0, set[str]()
    for number, ext in enumerate(desc.extents, 1):
        kind, where = _location(ext.filename)
        if self_allowed and len(desc.extents) == 1 and ext.type == "SPARSE" and kind == "sibling":
            kind, where = "self", "this file"
        external = kind not in ("self", "none")
        _check_extent(ext, number, info)
        info.extents.append(_public(ext, external, kind))
        if not external:
            continue
        if shown < MAX_EXTENT_FINDINGS:
            shown += 1
            info.add(
                "external-extent",
                f"extent {number}: {ext.access} {ext.type} {ext.filename!r} ({where}), "
                f"{ext.sectors} sectors from sector {ext.offset or 0}{_how(ext)}",
                ext.at,
            )
        _extent_reference(info, ext, kind, referenced)
    for ext in desc.unlisted:
        _extent_reference(info, ext, _location(ext.filename)[0], referenced)
    listed = sum(1 for e in info.extents if e["external"])
    if listed + desc.unlisted_external > shown:
        info.add(
            "external-extent",
            f"{listed - shown} more extents in the extent list name another file, and {desc.unlisted_external} "
            f"past the first {MAX_LIST} listed (every line examined; {len(referenced)} distinct names referenced)",
        )
    if desc.extent_count > len(desc.extents):
        info.add(
            "read-budget",
            f"descriptor has {desc.extent_count} extents; every line read was examined, only the first "
            f"{len(desc.extents)} are listed and {len(desc.unlisted)} more distinct names referenced"
            + (f"; {desc.unnamed} more extents name files that are not in the report" if desc.unnamed else ""),
            desc.base,
            CRITICAL,
        )


def _extent_reference(info: Inspection, ext: Extent, kind: str, referenced: set[str]) -> None:
    """One reference per distinct file name: the same name is the same file."""
    if ext.filename not in referenced:
        referenced.add(ext.filename)
        info.reference("extent", ext.filename, ext.at, type=ext.type, access=ext.access, location=kind)


def _check_extent(ext: Extent, number: int, info: Inspection) -> None:
    if ext.type not in EXTENT_TYPES:
        info.malformed("vmdk.extent-type", f"extent {number} has unknown type {ext.type[:40]!r}", ext.at)
    elif ext.type == "FLAT" and ext.offset is None:
        info.malformed("vmdk.flat-extent-offset", f"FLAT extent {number} has no offset (qemu refuses the line)", ext.at)
    if ext.type != "ZERO" and not ext.filename:
        info.malformed("vmdk.extent-no-file", f"{ext.type[:40]} extent {number} names no file", ext.at)


def _qemu_hints(
    reader: Reader, info: Inspection, window_at: int | None, desc: Descriptor | None
) -> list[tuple[str, Value]]:
    """Every parent name qemu may take: vmdk_parent_open's window at ``window_at`` (whatever the header
    says about the descriptor), and the first hint of the descriptor text as parsed."""
    places = []
    if window_at is not None:
        window = reader.read(window_at, QEMU_WINDOW).ljust(QEMU_WINDOW, b"\0")  # zeros past the end, as qemu
        places.append((f"in the {QEMU_WINDOW} bytes at offset {window_at} (vmdk_parent_open)", window, window_at))
    if desc is not None:
        places.append((f"in the descriptor text at offset {desc.base}", desc.raw, desc.base))
    found = []
    for where, data, base in places:
        value, unterminated = text.hint(data, base)
        if value is not None:
            found.append((where, value))
        elif unterminated is not None:
            info.malformed(
                "vmdk.parent-hint-unterminated",
                f"'parentFileNameHint' at offset {unterminated} has no closing quote",
                unterminated,
            )
    return found


def _report_parents(info: Inspection, said: str, named: Value | None, qemu: list[tuple[str, Value]]) -> None:
    """The parent as the header or descriptor key names it (``said``), and every other name qemu takes."""
    names = set()
    if named is not None:
        info.set_backing(named.text, "vmdk", named.at)
        names.add(named.text)
    for where, value in qemu:
        if value.text in names:
            continue
        names.add(value.text)
        if info.backing is None:
            info.set_backing(value.text, "vmdk", value.at)
        else:
            info.reference("backing file (as qemu reads it)", value.text, value.at, format="vmdk")
        info.malformed(
            "vmdk.parent-hint-differs",
            f"qemu takes the parent name {value.text!r} from the first 'parentFileNameHint' {where}, even in a "
            f"comment or outside the declared descriptor; {said} says {named.text if named else None!r}",
            value.at,
        )


def _report_problems(desc: Descriptor, info: Inspection) -> None:
    if desc.bad_count:
        shown = "; ".join(f"{line!r} at offset {at}" for at, line in desc.bad)
        info.malformed(
            "vmdk.descriptor-line", f"{desc.bad_count} unparsable descriptor line(s): {shown}", desc.bad[0][0]
        )
    for key, count in list(desc.repeats.items())[:8]:
        info.malformed(
            "vmdk.descriptor-key-duplicate",
            f"descriptor key {key[:80]!r} appears {count} times; readers may take different ones",
            desc.keys[key].at,
        )


# --- sparse extents ----------------------------------------------------------------------------------


def _parse_kdmv(reader: Reader, info: Inspection) -> None:
    data = reader.read(0, SECTOR)
    values, group = KDMV_LAYOUT.read(data, 0)
    info.fields.append(group)
    if len(data) < KDMV_HEADER_LEN:
        info.malformed("vmdk.header-truncated", f"KDMV header is {len(data)} bytes long, {KDMV_HEADER_LEN} needed", 0)
        return
    qemu_hints = _qemu_hints(reader, info, QEMU_WINDOW_AT, None)  # first: a long descriptor must not starve it
    _flag_children(group, values["flags"], KDMV_FLAGS)
    # vmdk_open_vmdk4: capacity 0 in the header at offset 0 (before any footer) and a descriptor offset:
    # qemu opens the file through that descriptor alone, and its extents are other files
    through_descriptor = values["capacity"] == 0 and values["descriptor_offset"] != 0
    desc_at, desc_size = values["descriptor_offset"], values["descriptor_size"]
    if values["gd_offset"] == GD_AT_END:
        values = _stream_footer(reader, info) or values
    _check_kdmv(values, reader.size, info)
    capacity, grain = values["capacity"], values["grain_size"]
    info.cluster_size = grain * SECTOR if 0 < grain <= MAX_GRAIN_SECTORS else None  # else a malformed finding
    info.dirty = values["unclean_shutdown"] != 0
    if info.dirty:
        info.add("dirty", "sparse header: unclean shutdown flag set", KDMV_LAYOUT.offset_of("unclean_shutdown"))
    compression = COMPRESSION.get(values["compression"], f"unknown ({values['compression']})")
    info.details.update(subformat="sparse", version=values["version"], compression=compression)
    info.details["create_type"] = "streamOptimized" if values["compression"] == 1 else "monolithicSparse"
    desc = _embedded_descriptor(reader, info, desc_at, desc_size)
    if desc is not None:
        _apply_descriptor(desc, info, self_allowed=not through_descriptor)
        if "version" in desc.keys:
            info.details["descriptor_version"] = _number(desc.keys["version"].text)
        qemu_hints += _qemu_hints(reader, info, None, desc)
    _report_parents(info, "the descriptor's key", desc.keys.get("parentFileNameHint") if desc else None, qemu_hints)
    if not info.extents:  # no descriptor (an extent of a split disk): the file is its only extent
        info.extents.append(_self_extent(capacity))
    info.virtual_size = desc.sectors * SECTOR if through_descriptor and desc is not None else capacity * SECTOR


def _flag_children(group: Field, value: int, names: dict[int, str]) -> None:
    for node in group.children:
        if node.name == "flags":
            node.children.extend(bit_flags(value, names, node.offset, node.size))


def _self_extent(capacity: int) -> dict[str, Any]:
    return {
        "access": "RW",
        "sectors": capacity,
        "type": "SPARSE",
        "filename": "",
        "offset": 0,
        "external": False,
        "kind": "self",
    }


def _stream_footer(reader: Reader, info: Inspection) -> dict[str, Any] | None:
    """streamOptimized: footer marker, footer (a header copy) and end-of-stream marker in the last
    three sectors; the footer's header takes precedence over the one at offset 0 (as in qemu)."""
    base = reader.size - 3 * SECTOR
    if base < SECTOR:
        info.malformed(
            "vmdk.footer-missing",
            f"grain directory is 'at the end' but the {reader.size}-byte file has no footer",
            KDMV_LAYOUT.offset_of("gd_offset"),
        )
        return None
    data = reader.read(base, 3 * SECTOR)
    marker, marker_node = MARKER_LAYOUT.read(data[: MARKER_LAYOUT.size], base, "footer marker")
    header, header_node = KDMV_LAYOUT.read(data[SECTOR:], base + SECTOR, "footer header")
    eos, eos_node = MARKER_LAYOUT.read(
        data[2 * SECTOR : 2 * SECTOR + MARKER_LAYOUT.size], base + 2 * SECTOR, "end-of-stream marker"
    )
    info.fields.append(Field("stream footer", base, len(data), None, "", [marker_node, header_node, eos_node]))
    valid = (
        header.get("magic") == KDMV
        and (marker["size"], marker["type"]) == (0, MARKER_FOOTER)
        and (eos["value"], eos["size"], eos["type"]) == (0, 0, MARKER_EOS)
    )
    if not valid:
        info.malformed(
            "vmdk.footer-invalid",
            "grain directory is 'at the end' but the last three sectors are not a valid footer",
            base,
        )
        return None
    if header["gd_offset"] == GD_AT_END:
        info.malformed(
            "vmdk.footer-gd-at-end",
            "footer header also puts the grain directory 'at the end'",
            KDMV_LAYOUT.offset_of("gd_offset", base + SECTOR),
        )
    return header


def _check_kdmv(values: dict[str, Any], size: int, info: Inspection) -> None:
    """qemu's refusals (vmdk_open_vmdk4 and vmdk_add_extent), each a finding naming the values."""
    version, gtes, grain = values["version"], values["gtes_per_gt"], values["grain_size"]
    if not 1 <= version <= 3:
        info.add(
            "unknown-features", f"sparse header version {version} (qemu reads 1 to 3)", KDMV_LAYOUT.offset_of("version")
        )
    if gtes > MAX_GTES_PER_GT:
        info.malformed(
            "vmdk.gtes-per-gt",
            f"{gtes} grain table entries per table (qemu allows {MAX_GTES_PER_GT})",
            KDMV_LAYOUT.offset_of("gtes_per_gt"),
        )
    if not gtes or not grain:
        info.malformed(
            "vmdk.grain-coverage",
            f"grain size {grain} and {gtes} entries per table: no grain table coverage",
            KDMV_LAYOUT.offset_of("grain_size"),
        )
    elif grain > MAX_GRAIN_SECTORS:
        info.malformed(
            "vmdk.grain-size",
            f"grain size {grain} sectors exceeds qemu's limit of {MAX_GRAIN_SECTORS}",
            KDMV_LAYOUT.offset_of("grain_size"),
        )
    elif -(-values["capacity"] // (gtes * grain)) > MAX_L1_ENTRIES:
        info.malformed(
            "vmdk.capacity-too-large",
            f"capacity {values['capacity']} sectors needs a grain directory over qemu's limit",
            KDMV_LAYOUT.offset_of("capacity"),
        )
    if values["overhead"] * SECTOR > size:
        info.malformed(
            "vmdk.overhead-past-eof",
            f"data starts at sector {values['overhead']}, past the end of the {size}-byte file",
            KDMV_LAYOUT.offset_of("overhead"),
        )
    if values["gd_offset"] != GD_AT_END and values["gd_offset"] * SECTOR >= size:
        info.malformed(
            "vmdk.gd-past-eof",
            f"grain directory at sector {values['gd_offset']} is past the end of the file",
            KDMV_LAYOUT.offset_of("gd_offset"),
        )
    if values["flags"] & 1 and values["newline_check"] != NEWLINE_CHECK:
        info.malformed(
            "vmdk.newline-check",
            f"newline check bytes {values['newline_check'].hex()} altered (text-mode transfer?)",
            KDMV_LAYOUT.offset_of("newline_check"),
        )
    if values["compression"] not in COMPRESSION:
        info.add(
            "unknown-features",
            f"compression algorithm {values['compression']} unknown",
            KDMV_LAYOUT.offset_of("compression"),
        )


def _embedded_descriptor(reader: Reader, info: Inspection, offset: int, size: int) -> Descriptor | None:
    """The embedded descriptor, read the way vmdk_read_desc reads it: from ``offset << 9`` (a 64-bit
    shift that wraps) to the first NUL, the end of the file, or 1 MiB - 1 bytes, whatever
    ``descriptor_size`` says."""
    if not offset:
        return None
    start = (offset << 9) & U64
    if start != offset * SECTOR:
        info.malformed(
            "vmdk.descriptor-offset-wraps",
            f"descriptor offset of {offset} sectors wraps past 2**64: qemu reads at {start}",
            KDMV_LAYOUT.offset_of("descriptor_offset"),
        )
    if start >> 63:
        info.malformed(
            "vmdk.descriptor-unaddressable",
            f"descriptor at byte {start} is past what a reader can address",
            KDMV_LAYOUT.offset_of("descriptor_offset"),
        )
        return None
    if start >= reader.size:
        info.malformed(
            "vmdk.descriptor-past-eof",
            f"descriptor at sector {offset} is past the end of the {reader.size}-byte file",
            KDMV_LAYOUT.offset_of("descriptor_offset"),
        )
        return None
    length = size * SECTOR
    if not length:
        info.malformed(
            "vmdk.descriptor-size-zero",
            f"descriptor at sector {offset} has size 0",
            KDMV_LAYOUT.offset_of("descriptor_size"),
        )
    elif start + length > reader.size:
        info.malformed(
            "vmdk.descriptor-size-past-eof",
            f"descriptor of {size} sectors at sector {offset} runs past the end of the file",
            KDMV_LAYOUT.offset_of("descriptor_size"),
        )
    raw = _descriptor_text(reader, info, start, KDMV_LAYOUT.offset_of("descriptor_offset"))
    if length and len(raw) > length:
        info.malformed(
            "vmdk.descriptor-past-size",
            f"descriptor text runs {len(raw)} bytes, past its declared {size} sectors: all of it was examined, "
            f"as qemu reads a capacity-0 file's descriptor up to the first NUL",
            start + length,
        )
    return text.parse(raw, start)


def _descriptor_text(reader: Reader, info: Inspection, start: int, field_at: int | None) -> bytes:
    """qemu's descriptor text at ``start``; a cap or the read budget reached is critical."""
    limit = min(reader.size, QEMU_DESC_MAX)
    raw, status = text.read_c_string(reader, start, limit)
    if status == "cap":
        info.add(
            "read-budget",
            f"descriptor text at offset {start} runs {limit} bytes without a NUL: qemu reads no further "
            f"(vmdk_read_desc) and neither did the workbench; what follows was not examined",
            field_at,
            CRITICAL,
        )
    elif status == "budget":
        info.add(
            "read-budget",
            f"descriptor text at offset {start}: the read budget ran out after {len(raw)} of up to {limit} "
            f"bytes; the rest was not examined and may name other files",
            start + len(raw),
            CRITICAL,
        )
    return raw


def _parse_cowd(reader: Reader, info: Inspection) -> None:
    """ESX 2.x sparse (qemu's VMDK3Header); a child disk (flags bit 0 clear) names its parent."""
    data = reader.read(0, COWD_HEADER_LEN)
    flags = COWD_LAYOUT.unpack(data).get("flags", 0)
    layout = COWD_LAYOUT.extended(*(COWD_ROOT_SPECS if flags & COWD_ROOT else COWD_CHILD_SPECS), *COWD_TAIL_SPECS)
    values, group = layout.read(data, 0)
    info.fields.append(group)
    parent = clean_text(values.get("parent_file_name", b""))
    named = Value(parent, layout.offset_of("parent_file_name")) if parent else None
    # qemu reads a short header as zeros and its parent window too (vmdk_open_vmfs_sparse, vmdk_parent_open)
    _report_parents(info, "the COWD header", named, _qemu_hints(reader, info, QEMU_WINDOW_AT, None))
    if len(data) < COWD_HEADER_LEN:
        info.malformed(
            "vmdk.cowd-header-truncated", f"COWD header is {len(data)} bytes long, {COWD_HEADER_LEN} needed", 0
        )
        return
    _flag_children(group, flags, COWD_FLAGS)
    info.virtual_size = values["capacity"] * SECTOR
    info.cluster_size = values["grain_size"] * SECTOR or None
    info.extents.append(_self_extent(values["capacity"]))
    info.details.update(subformat="cowd", version=values["version"])
    if values["unclean_shutdown"]:
        info.dirty = True
        info.add("dirty", "COWD header: unclean shutdown flag set", layout.offset_of("unclean_shutdown"))


def _parse_descriptor_file(reader: Reader, info: Inspection) -> None:
    """A descriptor-only file: every extent it names is another host file.

    qemu -f vmdk reads any file without a sparse magic this way (vmdk_open, vmdk_open_desc_file), even
    one that does not start like a descriptor, so this runs whenever vmdk is declared.
    """
    if not _looks_like_descriptor(reader.read(0, PROBE_BYTES)):
        info.add(
            "format-mismatch",
            "declared vmdk, but the file neither starts with KDMV or COWD nor with a descriptor; qemu -f vmdk "
            "reads it as a text descriptor all the same, so it was parsed as one",
            0,
        )
    desc = text.parse(_descriptor_text(reader, info, 0, None), 0)
    _apply_descriptor(desc, info, self_allowed=False)
    qemu_hints = _qemu_hints(reader, info, 0, desc)
    _report_parents(info, "the descriptor's key", desc.keys.get("parentFileNameHint"), qemu_hints)
    info.details["subformat"] = "descriptor"
    if "version" in desc.keys:
        info.details["version"] = _number(desc.keys["version"].text)
    info.virtual_size = desc.sectors * SECTOR
    if not desc.extents:
        info.malformed("vmdk.no-extents", "descriptor lists no extents", 0)
