"""Context menus of the main window's lists (opened images, findings, references); the field tree, the
bytes pane and the triage table build their own. Each builder returns the menu, so tests trigger its actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractItemView, QMenu

from ..render.textsafe import printable
from .qtmodels.findings_model import finding_text
from .qtmodels.node_model import PAYLOAD_ROLE
from .row_actions import copy_text, menu, reveal_in_folder

if TYPE_CHECKING:
    from .main_window import MainWindow


def _at(view: QAbstractItemView, pos: QPoint | None) -> None:
    """Make the row under ``pos`` current (a right-click acts on what it points at)."""
    if pos is not None and (index := view.indexAt(pos)).isValid() and not view.selectionModel().isSelected(index):
        view.setCurrentIndex(index)


def list_menu(window: MainWindow, pos: QPoint | None = None) -> QMenu:
    _at(window.list_view, pos)
    entry, status = window.current, window.statusBar()
    items: list[tuple[str, Callable[[], Any]] | None] = []
    if entry is not None:
        path = entry.path  # a remote image's redacted URL: no folder to reveal
        items.append(("Inspect Again", window.reinspect))
        if entry.remote:
            items.append(("Copy URL (redacted)", lambda: copy_text(path, status, "the URL")))
        else:
            items += [
                ("Copy Path", lambda: copy_text(path, status, "the path")),
                ("Reveal in Folder", lambda: reveal_in_folder(path)),
            ]
        items += [None, ("Remove", window.remove_selected)]
    return menu(window, items)


def findings_menu(window: MainWindow, pos: QPoint | None = None) -> QMenu:
    view = window.findings.tree
    _at(view, pos)
    finding = view.currentIndex().siblingAtColumn(0).data(PAYLOAD_ROLE)
    status = window.statusBar()
    items: list[tuple[str, Callable[[], Any]] | None] = []
    if finding:
        items += [
            ("Go to Field and Bytes", lambda: window.go_to_finding(finding)),
            ("Copy Finding", lambda: copy_text(finding_text(finding), status, "the finding")),
            ("Copy Finding Id", lambda: copy_text(finding["id"], status, "the finding id")),
        ]
    return menu(window, items)


def references_menu(window: MainWindow, pos: QPoint | None = None) -> QMenu:
    view = window.references.tree
    _at(view, pos)
    ref = view.currentIndex().siblingAtColumn(0).data(PAYLOAD_ROLE)
    items: list[tuple[str, Callable[[], Any]] | None] = []
    if ref:
        name = printable(ref.get("name", ""), 4096)
        items += [
            ("Show the Field That Names It", lambda: window.go_to_reference(ref)),
            ("Copy Name", lambda: copy_text(name, window.statusBar(), "the name (as shown, escaped)")),
        ]
    return menu(window, items)


def install(window: MainWindow) -> None:
    for view, build in (
        (window.list_view, list_menu),
        (window.findings.tree, findings_menu),
        (window.references.tree, references_menu),
    ):
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(
            lambda pos, v=view, b=build: b(window, pos).exec(v.viewport().mapToGlobal(pos))
        )
