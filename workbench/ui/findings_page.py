"""Findings: severity, title, detail; the selected one in full below; activating one jumps to its field."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit, QSplitter, QVBoxLayout, QWidget

from .icons import all_icons
from .page_state import PageState
from .qtmodels.findings_model import FindingsModel, finding_text
from .qtmodels.node_model import PAYLOAD_ROLE
from .widgets import fit_columns, tree_view


class FindingsPage(QWidget):
    finding_activated = Signal(object)  # the finding dict

    def __init__(self, parent: QWidget | None = None, where: str = "Offset", widest: int = 300) -> None:
        super().__init__(parent)
        self.widest = widest  # pixels for a column sized to its text (the detail column takes the rest)
        self.model = FindingsModel(self, where)
        self.model.icons = all_icons()
        self.tree = tree_view("Findings", self.model, stretch_column=2)
        self.tree.setRootIsDecorated(False)
        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.detail.setAccessibleName("Finding detail and recommendation")
        self.detail.setPlaceholderText("Select a finding to read its detail and recommendation.")
        self.tree.selectionModel().currentRowChanged.connect(self._current_changed)
        self.tree.activated.connect(self._activated)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(split)

    def show_state(self, state: PageState) -> None:
        self.show_report(state.report)

    def show_report(self, report: dict[str, Any] | None) -> None:
        """Show the report's findings, the worst one selected (its detail below)."""
        self.model.set_findings((report or {}).get("findings") or [])
        self.detail.clear()
        fit_columns(self.tree, widest=self.widest)
        if self.model.nodes():
            self.tree.setCurrentIndex(self.model.index(0, 0))

    def select(self, finding: dict[str, Any]) -> bool:
        """Select ``finding`` (the same dict the report holds); ``False`` when it is not listed."""
        node = next((n for n in self.model.nodes() if n.payload == finding), None)
        if node is not None:
            self.tree.setCurrentIndex(self.model.index_of(node))
        return node is not None

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        finding = current.data(PAYLOAD_ROLE) if current.isValid() else None
        self.detail.setPlainText(finding_text(finding) if finding else "")

    def _activated(self, index: QModelIndex) -> None:
        finding = index.siblingAtColumn(0).data(PAYLOAD_ROLE)
        if finding:
            self.finding_activated.emit(finding)
