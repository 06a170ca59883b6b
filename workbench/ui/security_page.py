"""Encryption and sandbox: what protects the data, and which isolation layers the engine child had."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QVBoxLayout, QWidget

from .icons import all_icons
from .page_state import PageState
from .qtmodels.property_model import PropertyModel, security_nodes
from .widgets import fit_columns, tree_view


class SecurityPage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = PropertyModel(self)
        self.model.icons = all_icons()
        self.tree = tree_view("Encryption and sandbox", self.model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(self.tree)

    def show_state(self, state: PageState) -> None:
        self.show_report(state.report, state.policy.required_layers)

    def show_report(self, report: dict[str, Any] | None, required: list[str]) -> None:
        self.model.set_nodes(security_nodes(report, required) if report else [])
        self.tree.expandAll()
        fit_columns(self.tree)
