"""SVG icons shipped as package data in ``workbench/ui/icons`` (also inside a frozen build)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

from ..schema import SEVERITIES_WORST_FIRST, Verdict

NAMES = (
    "workbench",
    *(f"verdict-{v}" for v in (*Verdict, "pending")),
    *(f"severity-{s}" for s in SEVERITIES_WORST_FIRST),
)


def icon_dir() -> Path:
    return Path(__file__).resolve().parent / "icons"


@cache
def icon(name: str) -> QIcon:
    """The icon ``name`` (a null icon when the file is missing: views then show text only)."""
    path = icon_dir() / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


def all_icons() -> dict[str, QIcon]:
    return {name: icon(name) for name in NAMES}
