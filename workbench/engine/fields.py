"""The field tree: every parsed value with the offset and size of the bytes behind it.

A structure is declared once, as a :class:`Layout` of :class:`Spec` rows: offsets, size, typed values (for
the parser's logic), the :class:`Field` group (for the report and the hex view) and the bytes test builders
write all come from it. Display conversion (hex, text, UUIDs) happens only in the field tree.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence

from .limits import MAX_STRING
from .record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

LAST_SECOND = 253_402_300_800  # 10000-01-01 00:00:00 UTC
MAX_TEXT = MAX_STRING  # no string taken from an image is longer than this in a report


def clean_text(raw: bytes, encoding: str = "latin-1", cap: int = MAX_TEXT) -> str:
    """Decode image bytes to a string cut at the first NUL and capped in length.

    Control characters stay in the string (the report is data); every display escapes them.
    """
    text = raw.split(b"\0", 1)[0] if encoding in ("latin-1", "ascii", "utf-8") else raw
    decoded = text.decode(encoding, errors="replace")
    if encoding.startswith("utf-16"):
        decoded = decoded.split("\0", 1)[0]
    return decoded[:cap]


class Field(Record):
    """One node of the field tree: a named range of the image and what it decodes to."""

    __slots__ = ("name", "offset", "size", "value", "description", "children")

    def __init__(
        self,
        name: str,
        offset: int,
        size: int,
        value: Any = None,
        description: str = "",
        children: list[Field] | None = None,
    ) -> None:
        self.name, self.offset, self.size, self.value, self.description = name, offset, size, value, description
        self.children: list[Field] = [] if children is None else children

    def add(self, child: Field) -> Field:
        self.children.append(child)
        return child

    def to_json(self) -> dict[str, Any]:
        node: dict[str, Any] = {
            "name": self.name,
            "offset": self.offset,
            "size": self.size,
            "value": self.value,
            "description": self.description,
        }
        if self.children:
            node["children"] = [child.to_json() for child in self.children]
        return node


class Spec(Record):
    """One row of a structure layout: ``fmt`` is a :mod:`struct` code without byte order.

    ``kind`` says how the value is shown: ``int``, ``hex``, ``text`` (NUL-terminated latin-1),
    ``utf16le``/``utf16be``, ``bytes`` (hex dump), ``uuid`` (RFC 4122 big-endian bytes),
    ``guid`` (Microsoft mixed-endian GUID).
    """

    __slots__ = ("name", "offset", "fmt", "description", "kind")

    def __init__(self, name: str, offset: int, fmt: str, description: str = "", kind: str = "int") -> None:
        self.name, self.offset, self.fmt, self.description, self.kind = name, offset, fmt, description, kind


def utc_text(seconds: int) -> str:
    """Seconds since 1970 as ``datetime.fromtimestamp(seconds, UTC).isoformat()`` gives them, without importing
    :mod:`datetime` (~1.5 ms of each engine child's start for the qcow2 and VHD header timestamps)."""
    if not 0 <= seconds < LAST_SECOND:  # the years strftime prints as datetime does: 1970 to 9999
        raise ValueError(f"timestamp out of range: {seconds}")
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


def uuid_text(raw: bytes, mixed_endian: bool = False) -> str:
    """16 bytes as ``str(uuid.UUID(bytes=raw))`` (or ``bytes_le``: Microsoft's GUID order) gives them, without
    importing :mod:`uuid`, which imports :mod:`platform` (3 ms at start-up for a string format)."""
    if mixed_endian:
        raw = raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def _shown(raw: Any, kind: str) -> Any:
    if kind == "hex":
        return f"0x{raw:x}"
    if kind == "text":
        return clean_text(raw)
    if kind in ("utf16le", "utf16be"):
        return clean_text(raw, "utf-16-le" if kind == "utf16le" else "utf-16-be")
    if kind == "bytes":
        return raw.hex()
    if kind == "uuid":
        return uuid_text(raw)
    if kind == "guid":
        return uuid_text(raw, mixed_endian=True)
    return raw


class Layout:
    """One structure declared once: its rows give the offsets (:meth:`offset_of`), the size, the typed
    values a parser works with (:meth:`unpack`: ints and bytes, never display text), the field tree with
    descriptions (:meth:`read`) and the bytes a test builder writes (:meth:`pack`)."""

    def __init__(self, name: str, specs: Sequence[Spec], endian: str = ">", description: str = "") -> None:
        self.name, self.specs, self.endian, self.description = name, tuple(specs), endian, description
        self._rows = {spec.name: spec for spec in self.specs}
        self.size = max((s.offset + struct.calcsize(endian + s.fmt) for s in self.specs), default=0)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._rows)

    def offset_of(self, name: str, base: int = 0) -> int:
        """The offset of row ``name`` (plus ``base``: where the structure lies in the image)."""
        return base + self._rows[name].offset

    def size_of(self, name: str) -> int:
        return struct.calcsize(self.endian + self._rows[name].fmt)

    def extended(self, *specs: Spec, name: str | None = None, description: str | None = None) -> Layout:
        """This layout with more rows (a later version of the structure)."""
        return Layout(
            name or self.name,
            [*self.specs, *specs],
            self.endian,
            self.description if description is None else description,
        )

    def only(self, *names: str) -> Layout:
        """The rows named, in declaration order (a prefix that two structures share)."""
        return Layout(self.name, [s for s in self.specs if s.name in names], self.endian, self.description)

    def _rows_in(self, data: bytes | bytearray) -> Iterator[tuple[Spec, int, Any]]:
        for spec in self.specs:
            size = struct.calcsize(self.endian + spec.fmt)
            if spec.offset + size <= len(data):
                yield spec, size, struct.unpack_from(self.endian + spec.fmt, data, spec.offset)[0]

    def unpack(self, data: bytes | bytearray) -> dict[str, Any]:
        """Typed values (ints, bytes) of the rows that fit in ``data``; a truncated structure leaves the
        rows past its end out, so callers check ``name in values`` or ``len(data)`` first."""
        return {spec.name: raw for spec, _, raw in self._rows_in(data)}

    def unpack_from(self, data: bytes | bytearray, offset: int = 0) -> dict[str, Any]:
        """Every row's typed value for the structure at ``offset`` in ``data``; a row past the end of ``data``
        (a truncated read) reads as zero."""
        values = self.unpack(data[offset : offset + self.size])
        for spec in self.specs:
            if spec.name not in values:
                fmt = self.endian + spec.fmt
                values[spec.name] = struct.unpack(fmt, bytes(struct.calcsize(fmt)))[0]
        return values

    def shown(self, values: dict[str, Any], name: str, default: Any = None) -> Any:
        """Row ``name`` of ``values`` as the field tree shows it (text, UUID, hex dump); ``default`` when the
        row was past the end of the bytes read. For a summary taken from the same structure."""
        return _shown(values[name], self._rows[name].kind) if name in values else default

    def read(self, data: bytes, base: int, label: str | None = None) -> tuple[dict[str, Any], Field]:
        """:meth:`unpack` and the field group (display values) of ``data``, which starts at image offset ``base``."""
        values: dict[str, Any] = {}
        group = Field(label or self.name, base, min(self.size, len(data)), None, self.description)
        for spec, size, raw in self._rows_in(data):
            values[spec.name] = raw
            group.add(Field(spec.name, base + spec.offset, size, _shown(raw, spec.kind), spec.description))
        return values, group

    def pack(self, **values: Any) -> bytes:
        """The structure's bytes with ``values`` (rows not given are zero): for builders and tests."""
        unknown = set(values) - set(self._rows)
        if unknown:
            raise KeyError(f"{self.name} has no rows {sorted(unknown)}")
        out = bytearray(self.size)
        for spec in self.specs:
            if spec.name in values:
                struct.pack_into(self.endian + spec.fmt, out, spec.offset, values[spec.name])
        return bytes(out)


def bit_flags(value: int, names: dict[int, str], offset: int, size: int) -> list[Field]:
    """One child field per set bit, named from ``names`` or ``unknown bit N``."""
    out = []
    for bit in range(size * 8):
        if value >> bit & 1:
            label = names.get(bit, f"unknown bit {bit}")
            out.append(Field(label, offset, size, True, f"bit {bit}"))
    return out
