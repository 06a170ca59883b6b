"""Overview: the size bar and the property tree (verdict, formats, sizes, references, state)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ..policy.policy import Policy
from ..render.textsafe import printable
from . import theme
from .icons import all_icons
from .page_state import PageState
from .qtmodels.node_model import Node
from .qtmodels.property_model import PropertyModel, overview_nodes
from .size_bar import SizeBar
from .verdict_banner import VerdictBanner
from .widgets import fit_columns, tree_view


class OverviewPage(QWidget):
    finding_activated = Signal(object)  # a finding link of the banner

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = PropertyModel(self)
        self.model.icons = all_icons()
        self.model.accent = theme.accent
        self.banner = VerdictBanner()
        self.banner.finding_activated.connect(self.finding_activated)
        self.size_bar = SizeBar()
        self.tree = tree_view("Overview", self.model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.size_bar)
        layout.addWidget(self.tree, 1)

    def show_state(self, state: PageState) -> None:
        source = state.entry.declared_source if state.entry is not None and not state.link else None
        self.show_report(state.report, source, state.policy)
        if state.entry is not None and state.report is None:
            self.show_pending(state.entry.path, state.entry.state)

    def show_report(self, report: dict[str, Any] | None, source: str | None, policy: Policy) -> None:
        self.banner.show_report(report)
        if not report:
            self.model.set_nodes([])
            self.size_bar.hide()
            return
        self.model.set_nodes(overview_nodes(report, source))
        has_sizes = report.get("verdict") != "failed"
        self.size_bar.setVisible(has_sizes)
        if has_sizes:
            deep: dict[str, Any] = dict(report.get("deep") or {})
            allocated = deep.get("allocated_virtual")
            guest = allocated if isinstance(allocated, int) else None
            self.size_bar.set_sizes(
                report["virtual_size"], report["file_size"], report["allocated_size"], policy.max_virtual_size, guest
            )
        self.tree.expandToDepth(0)
        fit_columns(self.tree)

    def show_pending(self, path: str, state: str) -> None:
        status = "inspecting in a sandboxed process…" if state == "running" else "queued"
        self.model.set_nodes([Node(["Verdict", status], icon="verdict-pending"), Node(["File", printable(path, 1024)])])
        self.banner.hide()
        self.size_bar.hide()
