"""Backing chain: followed only on request; selecting a link shows its report in the other pages."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from ..render.textsafe import printable
from .icons import all_icons
from .page_state import PageState
from .qtmodels.chain_model import ChainModel, end_text
from .widgets import plain_label, tree_view

EXPLANATION = (
    "Image ▸ Follow Chain (Ctrl+B) inspects the backing file this image names, then that file's backing file, "
    "each in its own sandboxed process. Only local paths inside the allowed folders (the image's own folder "
    "and those in Settings) are followed; network names never are. Select a link to see its report in the "
    "other pages."
)


REMOTE = "A remote image's backing chain is not followed: chains are followed on this machine only."


class ChainPage(QWidget):
    link_selected = Signal(object)  # a link's report, or None (the end of the chain, or nothing)
    link_activated = Signal(object)  # a link's report
    follow_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ChainModel(self)
        self.model.icons = all_icons()
        self.tree = tree_view("Backing chain", self.model, stretch_column=len(self.model.headers) - 1)
        self.summary = plain_label(wrap=True)
        self.summary.setAccessibleName("Chain verdict")
        self.follow_button = QPushButton("&Follow chain")
        self.end = plain_label(wrap=True)
        self.end.setAccessibleName("Where the chain ends")
        self.follow_button.clicked.connect(self.follow_requested)
        self.tree.selectionModel().currentRowChanged.connect(self._current_changed)
        self.tree.activated.connect(self._activated)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.follow_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(plain_label(EXPLANATION, wrap=True))
        layout.addLayout(row)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.end)

    def show_state(self, state: PageState) -> None:
        entry = state.entry
        self.show_chain(entry.chain if entry else None, state.following, entry is not None and not entry.remote)
        if entry is not None and entry.remote:
            self.summary.setText(REMOTE)

    def show_chain(self, report: dict[str, Any] | None, running: bool, available: bool) -> None:
        """``report`` from :func:`workbench.chain.follow` (``None``: not followed); ``available``: an image is shown."""
        self.model.set_chain(None if running else report)
        self.tree.expandAll()
        for column in range(self.model.columnCount() - 1):  # a few rows, nested: measure them all
            self.tree.resizeColumnToContents(column)
        self.follow_button.setEnabled(available and not running)
        end = (report or {}).get("chain_end") or {}
        if running:
            self.summary.setText("Following the chain…")
        elif report is None:
            self.summary.setText("Not followed yet." if available else "")
        else:
            links = len(report.get("chain") or [])
            verdict = str(report.get("chain_verdict", "failed")).upper()
            counted = f"{links} link{'s' if links != 1 else ''}"
            self.summary.setText(f"Chain verdict: {verdict} · {counted} · {end_text(end)}")
        self.end.setText(printable(end["detail"], 1024) if end.get("detail") and not running else "")

    def link_at(self, index: QModelIndex) -> dict[str, Any] | None:
        """The link report itself (item data would be a copy: the window tells links apart by identity)."""
        return self.model.node(index).payload if index.isValid() else None

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        self.link_selected.emit(self.link_at(current))

    def _activated(self, index: QModelIndex) -> None:
        link = self.link_at(index)
        if link:
            self.link_activated.emit(link)
