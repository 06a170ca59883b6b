"""Actions shared by the context menus: copying text (with a confirmation), rows as TSV, revealing a file."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMenu, QStatusBar, QWidget


def tsv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Tab-separated lines, the header first; tabs and line breaks inside a cell become spaces."""

    def line(cells: Sequence[str]) -> str:
        return "\t".join(" ".join(str(cell).split("\t")).replace("\n", " ").replace("\r", " ") for cell in cells)

    return "\n".join(line(cells) for cells in [header, *rows]) + "\n"


def copy_text(text: str, status: QStatusBar | None, what: str) -> None:
    """Put ``text`` on the clipboard and say so in the status bar (``what`` was copied)."""
    QGuiApplication.clipboard().setText(text)
    if status is not None:
        status.showMessage(f"Copied {what}", 4000)


def reveal_in_folder(path: str) -> bool:
    """Open the folder holding ``path`` in the desktop's file manager (the file itself is not opened)."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(os.path.abspath(path))))


def menu(parent: QWidget, actions: Sequence[tuple[str, Callable[[], Any]] | None]) -> QMenu:
    """A context menu of ``(text, slot)`` pairs; ``None`` is a separator."""
    built = QMenu(parent)
    for item in actions:
        if item is None:
            built.addSeparator()
        else:
            text, slot = item
            built.addAction(text).triggered.connect(lambda checked=False, s=slot: s())
    return built


def action(built: QMenu, text: str) -> Any:
    """The action of ``built`` whose text (without ``&``) is ``text``: for tests and keyboard users alike."""
    return next(a for a in built.actions() if a.text().replace("&", "") == text)
