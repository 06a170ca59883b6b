"""The names an image can be declared as, and the check of a declared name (``-f``, the settings, the API).

Cheap to import (``workbench --help`` imports it): the engine's format modules load on first use.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

ALIASES = {"vhd": "vpc", "img": "raw", "qcow3": "qcow2", "hdd": "parallels", "udif": "dmg", "iso9660": "iso"}


class FormatNames:
    """The declarable names, for ``choices``: the format modules load when a name is checked or listed."""

    def _names(self) -> tuple[str, ...]:
        from ..engine.formats import KNOWN_NAMES

        return KNOWN_NAMES

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def check_format_name(text: str) -> str:
    """``text`` if it is a known format name; otherwise ValueError, naming the name to use for a common other
    name (``vhd``: ``vpc``) or a close one, and every known name."""
    names = FormatNames()
    if text in names:
        return text
    hint = ALIASES.get(text.lower()) or next(iter(difflib.get_close_matches(text.lower(), list(names), 1)), None)
    suggestion = f"; did you mean {hint}?" if hint else ""
    raise ValueError(f"unknown format {text!r}{suggestion} (one of {', '.join(names)})")
