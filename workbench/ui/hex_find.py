"""Finding bytes in the regions the engine sent (hex bytes, text, regular expression), go-to-offset
parsing, and the copy-as formats. Pure functions: the find bar and the window only call them."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

MODES = ("hex", "text", "regex")
MAX_NEEDLE = 4096
Regions = Sequence[tuple[int, bytes]]


def needle(text: str, mode: str) -> bytes | re.Pattern[bytes]:
    """What to look for; ``ValueError`` with a reason for a bad hex string or regular expression."""
    if not text:
        raise ValueError("nothing to find")
    if mode == "hex":
        digits = re.sub(r"[\s,:]|0x", "", text, flags=re.IGNORECASE)
        try:
            found = bytes.fromhex(digits)
        except ValueError:
            raise ValueError(f"not hex bytes: {text[:40]!r}") from None
    elif mode == "text":
        found = text.encode("utf-8")
    else:
        try:
            return re.compile(text.encode("utf-8"), re.DOTALL)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    if len(found) > MAX_NEEDLE:
        raise ValueError(f"longer than {MAX_NEEDLE} bytes")
    return found


def _matches(data: bytes, what: bytes | re.Pattern[bytes]) -> list[tuple[int, int]]:
    """``(start, length)`` of the matches in one region (non-empty ones only)."""
    if isinstance(what, bytes):
        found, at = [], data.find(what)
        while at >= 0:
            found.append((at, len(what)))
            at = data.find(what, at + 1)
        return found
    return [(m.start(), m.end() - m.start()) for m in what.finditer(data) if m.end() > m.start()]


def find(
    regions: Regions, what: bytes | re.Pattern[bytes], start: int, backwards: bool = False
) -> tuple[int, int] | None:
    """The first match after ``start`` (before it, ``backwards``), wrapping around; ``(offset, length)``."""
    every = [(offset + at, size) for offset, data in regions for at, size in _matches(data, what)]
    if not every:
        return None
    if backwards:
        before = [m for m in every if m[0] < start]
        return before[-1] if before else every[-1]
    after = [m for m in every if m[0] > start]
    return after[0] if after else every[0]


def parse_offset(text: str, current: int | None) -> int:
    """``0x1f0``, ``1f0h``, ``496``, or relative to ``current``: ``+16``, ``-0x10``; ``ValueError`` if bad."""
    value = text.strip().replace("_", "")
    sign = value[:1] if value[:1] in "+-" else ""
    body = value[1:].strip() if sign else value
    try:
        if body.lower().startswith("0x"):
            number = int(body[2:], 16)
        elif body.lower().endswith("h"):
            number = int(body[:-1], 16)
        else:
            number = int(body, 10)
    except ValueError:
        raise ValueError(f"not an offset: {text[:40]!r} (decimal, 0x hex, or +/- for relative)") from None
    if not sign:
        return number
    if current is None:
        raise ValueError("no cursor to move from")
    return current + number if sign == "+" else current - number


COPY_FORMATS = ("hex", "C array", "Python bytes", "base64")


def copy_as(data: bytes, kind: str) -> str:
    """``data`` written for pasting elsewhere."""
    if kind == "hex":
        return data.hex(" ")
    if kind == "C array":
        rows = [", ".join(f"0x{b:02x}" for b in data[n : n + 12]) for n in range(0, len(data), 12)]
        return f"unsigned char data[{len(data)}] = {{\n    " + ",\n    ".join(rows) + "\n};"
    if kind == "Python bytes":
        return 'b"' + "".join(f"\\x{b:02x}" for b in data) + '"'
    if kind == "base64":
        return base64.b64encode(data).decode("ascii")
    raise ValueError(f"unknown format {kind!r}")
