"""A libvirt configuration file (domain XML or qemu.conf): what it is, its verdict, and its findings."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from .findings_page import FindingsPage
from .icons import all_icons
from .qtmodels.node_model import Node
from .qtmodels.property_model import PropertyModel, audit_nodes
from .widgets import fit_columns, plain_label, tree_view

EXPLANATION = (
    "A libvirt configuration file, checked against the Secure Usage of Libvirt guidance: format probing, "
    "migration network and TLS, storage encryption. It is read in this process (XML without entities or DTDs); "
    "nothing it names is opened."
)


class AuditPage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = PropertyModel(self)
        self.model.icons = all_icons()
        self.tree = tree_view("Audited file", self.model)
        self.findings = FindingsPage(where="Location", widest=240)
        self.findings.tree.setAccessibleName("Audit findings")
        self.findings.detail.setAcceptDrops(False)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.findings)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([190, 600])  # the summary's few rows, then the findings
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(plain_label(EXPLANATION, wrap=True))
        layout.addWidget(split, 1)

    def show_report(self, report: dict[str, Any] | None, state: str) -> None:
        if report is None:
            pending = "auditing…" if state == "running" else "queued"
            self.model.set_nodes([Node(["Verdict", pending], icon="verdict-pending")])
        else:
            self.model.set_nodes(audit_nodes(report))
        self.findings.show_report(report)
        fit_columns(self.tree)
