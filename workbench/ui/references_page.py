"""External references: listed with their kind and whether they lie inside the allowed folders; never opened."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .icons import all_icons
from .page_state import PageState
from .qtmodels.node_model import PAYLOAD_ROLE
from .qtmodels.references_model import ReferencesModel
from .widgets import fit_columns, plain_label, tree_view

EXPLANATION = (
    "Files and sources this image names. They are listed, never opened: a backing file or extent can name "
    "any host file or a network source. Activate one to see the field that holds it."
)


class ReferencesPage(QWidget):
    reference_activated = Signal(object)  # the reference dict

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ReferencesModel(self)
        self.model.icons = all_icons()
        self.tree = tree_view("External references", self.model)
        self.tree.setRootIsDecorated(False)
        self.tree.activated.connect(self._activated)
        self.empty = plain_label("This image names no other file.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(plain_label(EXPLANATION, wrap=True))
        layout.addWidget(self.empty)
        layout.addWidget(self.tree, 1)

    def show_state(self, state: PageState) -> None:
        self.show_report(state.report, state.roots)

    def show_report(self, report: dict[str, Any] | None, roots: list[str]) -> None:
        refs = (report or {}).get("references") or []
        self.model.set_references((report or {}).get("path", ""), refs, roots, (report or {}).get("findings") or [])
        self.empty.setVisible(not refs)
        fit_columns(self.tree, widest=420)

    def _activated(self, index: QModelIndex) -> None:
        ref = index.siblingAtColumn(0).data(PAYLOAD_ROLE)
        if ref:
            self.reference_activated.emit(ref)
