"""The names an image can be declared as, the check of a declared name (``-f``, the settings, the API), and
the format a file name's extension declares.

Cheap to import and to use: the parent checks ``-f`` on every ``inspect`` and importing the engine's format
modules for it cost ~20 ms of a single inspection, so the names are written here once more and
``tests/test_startup.py`` holds them equal to what the format modules declare (``engine.formats.KNOWN_NAMES``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

ALIASES = {"vhd": "vpc", "img": "raw", "qcow3": "qcow2", "hdd": "parallels", "udif": "dmg", "iso9660": "iso"}


DECLARABLE = (
    "bochs",
    "cloop",
    "dmg",
    "iso",
    "luks",
    "parallels",
    "qcow",
    "qcow2",
    "qed",
    "raw",
    "vdi",
    "vhdx",
    "vmdk",
    "vpc",
)

# Only extensions that name one format; ``.img`` and ``.bin`` are used for raw and qcow2 alike.
EXTENSIONS = {
    ".qcow2": "qcow2",
    ".qcow": "qcow",
    ".qed": "qed",
    ".raw": "raw",
    ".vmdk": "vmdk",
    ".vhd": "vpc",
    ".vpc": "vpc",
    ".vhdx": "vhdx",
    ".vdi": "vdi",
    ".hdd": "parallels",
    ".hds": "parallels",
    ".iso": "iso",
    ".dmg": "dmg",
    ".luks": "luks",
}


def format_from_extension(path: str) -> str | None:
    """The format ``path``'s extension names (the window's Declared column asks it of every listed image)."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


class FormatNames:
    """The declarable names, for ``choices`` (a container, so argparse lists them in help and errors)."""

    def __contains__(self, name: object) -> bool:
        return name in DECLARABLE

    def __iter__(self) -> Iterator[str]:
        return iter(DECLARABLE)


def check_format_name(text: str) -> str:
    """``text`` if it is a known format name; otherwise ValueError, naming the name to use for a common other
    name (``vhd``: ``vpc``) or a close one, and every known name."""
    names = FormatNames()
    if text in names:
        return text
    import difflib

    hint = ALIASES.get(text.lower()) or next(iter(difflib.get_close_matches(text.lower(), list(names), 1)), None)
    suggestion = f"; did you mean {hint}?" if hint else ""
    raise ValueError(f"unknown format {text!r}{suggestion} (one of {', '.join(names)})")
