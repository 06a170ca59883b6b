"""VMDK descriptor text read the way qemu's block/vmdk.c reads it, and the way VMware's grammar does.

qemu treats a descriptor as one C string (it ends at the first NUL) and finds things in it with C
library calls, not with a grammar: ``vmdk_parse_extents`` runs ``sscanf`` from every line start,
``vmdk_parse_description`` and ``vmdk_parent_open`` use ``strstr``. This module emulates those calls
and also reads the lines the way VMware's specification writes them; the caller reports the union.
"""

from __future__ import annotations

import re

from ..fields import MAX_TEXT, Field, clean_text
from ..inspection import MAX_LIST
from ..reader import BudgetExceeded, Reader
from ..record import Record

QEMU_DESC_MAX = (1 << 20) - 1  # vmdk_read_desc: MIN(file size, 1 MiB - 1) bytes
READ_STEP = 64 << 10
HINT = b"parentFileNameHint"
QEMU_TYPES = frozenset({b"FLAT", b"SPARSE", b"VMFS", b"VMFSSPARSE", b"SESPARSE"})
ACCESS_WORDS = frozenset({"RW", "RDONLY", "NOACCESS"})
MAX_KEYS = 256  # key=value lines kept in the field tree
KEPT_KEYS = 4096  # distinct keys remembered (memory stays bounded); the ones read below always are
NAMED_KEYS = frozenset({"version", "CID", "parentCID", "createType", "parentFileNameHint"})
MAX_BAD_SHOWN = 3
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

# The patterns are compiled on first use (``re`` keeps them): most images have no descriptor.
# sscanf(p, "%10s %" SCNd64 " %10s \"%511[^\n\r\"]\" %" SCNd64, ...), from the first non-space byte:
# possessive quantifiers because sscanf never gives back what a conversion consumed.
_SSCANF_EXTENT = (
    rb'(\S{1,10}+)(?:\s*+([+-]?\d++)(?:\s*+(\S{1,10}+)(?:\s*+"([^\n\r"]{1,511}+)(?:"\s*+([+-]?\d++))?)?)?)?'
)
_TEXT_LINE = rb"(?m)^[ \t\r\f\v]*+(\S[^\n]*)"  # lines with text; blank ones cost nothing
_ACCESS_INITIALS = (b"R", b"N")  # RW, RDONLY, NOACCESS: no other line can be an extent
_TO_QUOTE_OR_NUL = rb'[^"\0]*+'
# VMware's grammar, on one line with its blanks stripped
_EXTENT = rb'(RW|RDONLY|NOACCESS)\s+(\d{1,20})\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d{1,20}))?)?'
_KEY = rb"([A-Za-z][\w.]*)\s*=\s*(.*)"


class Value(Record):
    __slots__ = ("text", "at")

    def __init__(self, text: str, at: int) -> None:
        self.text, self.at = text, at


class Extent(Record):
    __slots__ = ("access", "sectors", "type", "filename", "offset", "at", "grammar")

    def __init__(
        self, access: str, sectors: int, type: str, filename: str, offset: int | None, at: int, grammar: str
    ) -> None:
        self.access, self.sectors, self.type, self.filename = access, sectors, type, filename
        self.offset = offset  # in sectors, None when the line has none
        self.at = at
        self.grammar = grammar  # "both", "qemu" (only qemu's sscanf reads it so) or "VMware" (only the written grammar)

    @property
    def qemu_opens(self) -> bool:
        """Whether vmdk_parse_extents gets as far as bdrv_open_child for this line."""
        if self.grammar == "VMware" or self.access != "RW" or self.sectors <= 0 or not self.filename:
            return False
        if self.type == "FLAT":
            return self.offset is not None and self.offset >= 0
        if self.type.encode() in QEMU_TYPES:
            return self.offset is None
        return False


class Descriptor(Record):
    """What a descriptor's text says; ``extents`` keeps the first MAX_LIST extents, all are counted."""

    __slots__ = (
        "base",
        "node",
        "raw",
        "keys",
        "repeats",
        "extents",
        "extent_count",
        "unlisted_external",
        "unlisted",
        "unlisted_names",
        "unnamed",
        "sectors",
        "bad",
        "bad_count",
    )

    def __init__(self, base: int, node: Field, raw: bytes) -> None:
        self.base, self.node, self.raw = base, node, raw
        self.keys: dict[str, Value] = {}
        self.repeats: dict[str, int] = {}
        self.extents: list[Extent] = []
        self.extent_count = 0
        self.unlisted_external = 0  # extents past the list that name a file
        self.unlisted: list[Extent] = []  # their first MAX_LIST distinct names
        self.unlisted_names: set[str] = set()
        self.unnamed = 0  # extents whose names could not be kept: the list of names was full
        self.sectors = 0
        self.bad: list[tuple[int, str]] = []
        self.bad_count = 0

    def add_key(self, at: int, line: bytes, match: re.Match[bytes]) -> None:
        key = clean_text(match.group(1)[:256], "utf-8")
        value = clean_text(_unquote(match.group(2).strip()), "utf-8")
        if key in self.keys:
            self.repeats[key] = self.repeats.get(key, 1) + 1
            return
        if len(self.keys) >= KEPT_KEYS and key not in NAMED_KEYS:
            return
        self.keys[key] = Value(value, at)
        if len(self.keys) <= MAX_KEYS:
            self.node.add(Field(key, at, len(line), value, "descriptor key"))

    def add_extent(self, ext: Extent, length: int) -> None:
        self.extent_count += 1
        self.sectors += max(ext.sectors, 0)  # qemu skips lines of zero or fewer sectors
        if len(self.extents) >= MAX_LIST:
            self.unlisted_external += bool(ext.filename)
            if not ext.filename or ext.filename in self.unlisted_names:
                return
            if len(self.unlisted) < MAX_LIST:
                self.unlisted_names.add(ext.filename)
                self.unlisted.append(ext)
            else:
                self.unnamed += 1
            return
        self.extents.append(ext)
        what = f"{ext.access} {ext.sectors} sectors {ext.type}" + (
            f" from sector {ext.offset}" if ext.offset is not None else ""
        )
        if ext.grammar != "both":
            what += f" (read so by {ext.grammar} only)"
        self.node.add(Field(f"extent {len(self.extents)}", ext.at, length, ext.filename, what))

    def add_bad(self, at: int, line: bytes) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_SHOWN:
            self.bad.append((at, clean_text(line[:80], "utf-8")))


def _unquote(value: bytes) -> bytes:
    return value[1:-1] if len(value) >= 2 and value[:1] == value[-1:] == b'"' else value


def _c_int64(digits: bytes | None) -> int | None:
    """What sscanf's %lld stores: signs and leading zeros accepted, overflow saturated (strtoll)."""
    if digits is None:
        return None
    return min(max(int(digits), INT64_MIN), INT64_MAX)


def _sscanf_extent(raw: bytes, start: int, base: int) -> tuple[Extent | None, int]:
    """qemu's sscanf of an extent line from the non-space byte at ``start``: the extent (when it has an
    access word, a number and a type) and where the scan stopped."""
    match = re.compile(_SSCANF_EXTENT).match(raw, start)
    if match is None:
        return None, start
    access, sectors, kind, name, offset = match.groups()
    access_text = clean_text(access, "utf-8")
    if kind is None or access_text not in ACCESS_WORDS:
        return None, match.end()
    ext = Extent(
        access_text,
        _c_int64(sectors) or 0,
        clean_text(kind, "utf-8"),
        clean_text(name, "utf-8") if name else "",
        _c_int64(offset),
        base + start,
        "qemu",
    )
    return ext, match.end()


def _vmware_extent(line: bytes, at: int) -> Extent | None:
    match = re.fullmatch(_EXTENT, line)
    if match is None:
        return None
    access, sectors, kind, name, offset = match.groups()
    return Extent(
        access.decode(),
        int(sectors),
        kind.decode(),
        clean_text(name, "utf-8") if name else "",
        int(offset) if offset else None,
        at,
        "VMware",
    )


def parse(raw: bytes, base: int) -> Descriptor:
    """Every line of the descriptor text ``raw`` (at image offset ``base``), in one bounded pass.

    qemu's sscanf runs from every line start and skips blanks, newlines included, so one extent may
    span several lines; from a blank line it reaches the same extent as from the next line with text,
    so each line with text is scanned once, from its first non-space byte.
    """
    desc = Descriptor(base, Field("descriptor", base, len(raw), None, "text descriptor"), raw)
    covered_to = 0
    for match in re.finditer(_TEXT_LINE, raw):
        pos, line = match.start(), match.group(1).rstrip()
        qemu_ext = None
        if line[:1] in _ACCESS_INITIALS:
            qemu_ext, stop = _sscanf_extent(raw, match.start(1), base)
        _line(desc, line, base + pos, len(match.group()), qemu_ext, pos < covered_to)
        if qemu_ext is not None:
            covered_to = max(covered_to, stop)
    return desc


def _line(desc: Descriptor, line: bytes, at: int, length: int, qemu_ext: Extent | None, covered: bool) -> None:
    initial = line[:1]
    vmware = _vmware_extent(line, at) if initial in _ACCESS_INITIALS else None
    if qemu_ext is not None:
        if vmware is not None and (vmware.filename, vmware.type) == (qemu_ext.filename, qemu_ext.type):
            qemu_ext.grammar = "both"
            vmware = None
        desc.add_extent(qemu_ext, length)
    if vmware is not None:
        desc.add_extent(vmware, length)
    if qemu_ext is not None or vmware is not None or initial == b"#":
        return
    key = re.fullmatch(_KEY, line)
    if key is not None:
        desc.add_key(at, line, key)
    elif not covered:
        desc.add_bad(at, line)


def hint(window: bytes, base: int) -> tuple[Value | None, int | None]:
    """The parent name as vmdk_parent_open takes it from ``window`` (a buffer qemu reads, at ``base``).

    ``strstr`` finds the first ``parentFileNameHint`` before the first NUL (comments included), two
    characters are skipped (even the NUL that ends the string), and ``strchr`` takes the name up to
    the next double quote. Returns the name, or the offset of a hint whose quote never comes.
    """
    text_end = window.find(b"\0")
    at = window.find(HINT, 0, text_end if text_end >= 0 else len(window))
    if at < 0:
        return None, None
    start = min(at + len(HINT) + 2, len(window))
    match = re.compile(_TO_QUOTE_OR_NUL).match(window, start)
    end = match.end() if match else start  # the pattern matches the empty string: always a match
    if end >= len(window) or window[end] != ord('"'):
        return None, base + at
    return Value(clean_text(window[start:end], "utf-8", MAX_TEXT), base + at), None


def read_c_string(reader: Reader, start: int, limit: int) -> tuple[bytes, str]:
    """Bytes from ``start`` up to the first NUL, the end of the file (qemu reads zeros past it) or
    ``limit`` bytes, read in steps so that a short descriptor costs little.

    The status says why it stopped: ``end`` (NUL or end of file), ``cap`` (``limit`` bytes without an
    end: the reader stops there too) or ``budget`` (the read budget ran out before either).
    """
    pieces: list[bytes] = []
    pos, stop = start, start + limit
    while pos < stop:
        if pos >= reader.size:
            return b"".join(pieces), "end"
        want = min(READ_STEP, stop - pos)
        try:
            data = reader.read(pos, want)
        except BudgetExceeded:
            want = min(want, reader.remaining())
            if not want:
                return b"".join(pieces), "budget"
            data = reader.read(pos, want)
        nul = data.find(b"\0")
        if nul >= 0:
            pieces.append(data[:nul])
            return b"".join(pieces), "end"
        pieces.append(data)
        pos += len(data)
        if not data:
            break
    return b"".join(pieces), "end" if pos >= reader.size else "cap"
