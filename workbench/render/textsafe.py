"""Showing strings that came from an image: escape what a terminal would obey, cap the length."""

from __future__ import annotations

import unicodedata

DEFAULT_CAP = 512
# Bidirectional overrides and isolates reorder what follows them on screen (Trojan Source).
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
        if code < 0x100:
            return f"\\x{code:02x}"
        return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def printable(text: object, cap: int = DEFAULT_CAP) -> str:
    """``text`` with every control, format and bidi character escaped, cut to ``cap`` characters.

    Used for terminals and for Qt views alike (Qt views also use plain-text widgets only).
    """
    raw = str(text)
    cut = len(raw) > cap
    shown = "".join(_escape_char(ch) for ch in raw[:cap])
    return shown + ("…" if cut else "")
