"""Light and dark themes: the desktop's colour scheme by default, an override from the settings.

Qt 6.8+ is asked for the scheme (``QStyleHints.setColorScheme``); because platforms without a theme
plugin (offscreen, a bare X server) ignore that, the Fusion style gets an explicit palette as well.
"""

from __future__ import annotations

from typing import cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

CHOICES = ("system", "light", "dark")
Role = QPalette.ColorRole
Group = QPalette.ColorGroup

_DARK = {
    Role.Window: "#2b2d30",
    Role.WindowText: "#e4e6ea",
    Role.Base: "#1e1f22",
    Role.AlternateBase: "#26282b",
    Role.Text: "#e4e6ea",
    Role.Button: "#35373b",
    Role.ButtonText: "#e4e6ea",
    Role.BrightText: "#ffffff",
    Role.Highlight: "#2f65ca",
    Role.HighlightedText: "#ffffff",
    Role.ToolTipBase: "#35373b",
    Role.ToolTipText: "#e4e6ea",
    Role.Link: "#6ea8fe",
    Role.PlaceholderText: "#8b8f96",
    Role.Light: "#4a4d52",
    Role.Midlight: "#3d4044",
    Role.Mid: "#2f3134",
    Role.Dark: "#1a1b1e",
    Role.Shadow: "#0d0d0f",
}
_DARK_DISABLED = {Role.WindowText: "#7b7f86", Role.Text: "#7b7f86", Role.ButtonText: "#7b7f86"}

# Colours the palette has no role for, per theme.
ACCENTS = {
    "light": {
        "critical": "#c4262e",
        "warning": "#a66f00",
        "info": "#2e6bc4",
        "context": "#dfe9f7",
        "bar": "#3a7bd5",
        "file": "#2e9d4f",
        "allocated": "#7d8590",
        "track": "#e3e6ea",
    },
    "dark": {
        "critical": "#ff6b6b",
        "warning": "#f0b429",
        "info": "#6ea8fe",
        "context": "#2a3a52",
        "bar": "#5b9bf0",
        "file": "#4cc76f",
        "allocated": "#a3abb5",
        "track": "#3a3d42",
    },
}


# Fusion outlines an unchecked box in the window colour made darker: on a dark base it all but vanishes.
DARK_STYLE = (
    "QCheckBox::indicator:unchecked, QAbstractItemView::indicator:unchecked "
    f"{{ border: 1px solid {_DARK[Role.PlaceholderText]}; background: {_DARK[Role.Base]}; border-radius: 2px; "
    "width: 11px; height: 11px; }"
)


def system_scheme() -> str:
    """``dark`` or ``light`` as the desktop reports it (light when it does not say)."""
    app = cast(QGuiApplication | None, QGuiApplication.instance())
    scheme = app.styleHints().colorScheme() if app else Qt.ColorScheme.Unknown
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in _DARK.items():
        palette.setColor(role, QColor(colour))
    for role, colour in _DARK_DISABLED.items():
        palette.setColor(Group.Disabled, role, QColor(colour))
    return palette


def resolve(choice: str) -> str:
    return system_scheme() if choice not in ("light", "dark") else choice


def apply(app: QApplication, choice: str) -> str:
    """Apply ``choice`` (system, light, dark) to the whole application; returns ``light`` or ``dark``."""
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    hints = app.styleHints()
    wanted = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(choice, Qt.ColorScheme.Unknown)
    if hasattr(hints, "setColorScheme"):
        hints.setColorScheme(wanted)
    resolved = resolve(choice)
    app.setPalette(dark_palette() if resolved == "dark" else app.style().standardPalette())
    app.setStyleSheet(DARK_STYLE if resolved == "dark" else "")
    app.setProperty("workbench_theme", resolved)
    return resolved


def accent(name: str) -> QColor:
    """A semantic colour (a key of :data:`ACCENTS`) for the theme in use."""
    app = QApplication.instance()
    theme = app.property("workbench_theme") if app else None
    return QColor(ACCENTS.get(theme or "light", ACCENTS["light"])[name])
