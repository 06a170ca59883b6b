"""The field tree: every parsed value with the offset and size of the bytes behind it.

Parsers describe a structure as a list of :class:`Spec` rows and call :func:`decode`, which returns the
decoded values (for the parser's logic) and a :class:`Field` group (for the report and the hex view).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .limits import MAX_STRING

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


@dataclass
class Field:
    """One node of the field tree: a named range of the image and what it decodes to."""

    name: str
    offset: int
    size: int
    value: Any = None
    description: str = ""
    children: list[Field] = field(default_factory=list)

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


@dataclass(frozen=True)
class Spec:
    """One row of a structure layout: ``fmt`` is a :mod:`struct` code without byte order.

    ``kind`` says how the value is shown: ``int``, ``hex``, ``text`` (NUL-terminated latin-1),
    ``utf16le``/``utf16be``, ``bytes`` (hex dump), ``uuid`` (RFC 4122 big-endian bytes),
    ``guid`` (Microsoft mixed-endian GUID).
    """

    name: str
    offset: int
    fmt: str
    description: str = ""
    kind: str = "int"


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


def decode(
    name: str, data: bytes, base: int, specs: list[Spec], endian: str = ">", description: str = ""
) -> tuple[dict[str, Any], Field]:
    """Decode ``specs`` from ``data`` (which starts at image offset ``base``).

    Rows that do not fit in ``data`` (a truncated header) are left out of both results, so callers
    check ``name in values`` or compare ``len(data)`` before relying on a value.
    """
    values: dict[str, Any] = {}
    group = Field(name, base, len(data), None, description)
    for spec in specs:
        size = struct.calcsize(endian + spec.fmt)
        if spec.offset + size > len(data):
            continue
        (raw,) = struct.unpack_from(endian + spec.fmt, data, spec.offset)
        values[spec.name] = _shown(raw, spec.kind) if spec.kind != "hex" else raw
        group.add(Field(spec.name, base + spec.offset, size, _shown(raw, spec.kind), spec.description))
    if specs:
        group.size = max(s.offset + struct.calcsize(endian + s.fmt) for s in specs)
        group.size = min(group.size, len(data))
    return values, group


def bit_flags(value: int, names: dict[int, str], offset: int, size: int) -> list[Field]:
    """One child field per set bit, named from ``names`` or ``unknown bit N``."""
    out = []
    for bit in range(size * 8):
        if value >> bit & 1:
            label = names.get(bit, f"unknown bit {bit}")
            out.append(Field(label, offset, size, True, f"bit {bit}"))
    return out
