"""Header fields: the field tree with a filter, linked both ways to the bytes pane."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QMenu, QPushButton, QSplitter, QVBoxLayout, QWidget

from ..render.textsafe import printable
from .hex_find import COPY_FORMATS, copy_as
from .hex_pane import HexPane
from .hex_view import regions_of
from .page_state import PageState
from .qtmodels.field_tree_model import FieldFilterProxy, FieldTreeModel
from .qtmodels.node_model import PAYLOAD_ROLE, Node
from .row_actions import copy_text, menu
from .widgets import fit_columns, tree_view


class FieldsPage(QWidget):
    field_selected = Signal(object)  # the field dict, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = FieldTreeModel(self)
        self.proxy = FieldFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name or value")
        self.filter.setClearButtonEnabled(True)
        self.filter.setAccessibleName("Filter fields")
        self.filter.textChanged.connect(self._filter_changed)
        self.filter.installEventFilter(self)
        self.expand_button = QPushButton("Expand all")
        self.collapse_button = QPushButton("Collapse all")
        self.tree = tree_view("Header fields", self.proxy, stretch_column=1)
        self.pane = HexPane()
        self.hex = self.pane.hex
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(lambda pos: self.tree_menu(pos).exec(self.tree.mapToGlobal(pos)))
        self.expand_button.clicked.connect(self.tree.expandAll)
        self.collapse_button.clicked.connect(self.tree.collapseAll)
        self.tree.selectionModel().currentRowChanged.connect(self._current_changed)
        self.hex.byte_selected.connect(self.select_offset)
        self._following_bytes = False
        self._filtering = False

        bar = QHBoxLayout()
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.expand_button)
        bar.addWidget(self.collapse_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.pane)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(split, 1)

    def show_state(self, state: PageState) -> None:
        self.show_report(state.report)

    def show_report(self, report: dict[str, Any] | None) -> None:
        self.model.set_fields((report or {}).get("fields") or [])
        self.hex.set_regions(regions_of(report))
        self.tree.expandToDepth(0)
        fit_columns(self.tree)
        self.field_selected.emit(None)

    def current_field(self) -> dict[str, Any] | None:
        index = self.tree.currentIndex()
        return index.data(PAYLOAD_ROLE) if index.isValid() else None

    def current_bytes(self) -> bytes | None:
        item = self.current_field()
        return self.hex.bytes_at(item["offset"], item["size"]) if item and item["size"] else None

    def select_node(self, node: Node) -> bool:
        """Select ``node`` in the tree (clearing a filter that hides it); ``False`` if it cannot be shown."""
        index = self.proxy.mapFromSource(self.model.index_of(node))
        if not index.isValid() and self.filter.text():
            self.filter.clear()
            index = self.proxy.mapFromSource(self.model.index_of(node))
        if not index.isValid():
            return False
        self.tree.scrollTo(index)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.tree.selectionModel().setCurrentIndex(index, flags)
        return True

    def select_offset(self, offset: int) -> bool:
        """Select the most specific field covering ``offset`` (a click in the bytes pane, a finding)."""
        node = self.model.node_at(offset)
        if node is None:
            return False
        self._following_bytes = self.sender() is self.hex
        try:
            return self.select_node(node)
        finally:
            self._following_bytes = False

    def _filter_changed(self, text: str) -> None:
        """Filter the tree; the selected field stays selected while it is shown (no other one is picked)."""
        chosen = self.proxy.mapToSource(self.tree.currentIndex())
        node = self.model.node(chosen) if chosen.isValid() else None
        self._filtering = True
        try:
            self.proxy.set_needle(text)
        finally:
            self._filtering = False
        if text:
            self.tree.expandAll()
        index = self.proxy.mapFromSource(self.model.index_of(node)) if node is not None else QModelIndex()
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.tree.selectionModel().setCurrentIndex(index, flags)
        if index.isValid():
            self.tree.scrollTo(index)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Escape in the filter box clears it (rather than the window's Escape, which dismisses notices)."""
        escape = isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape
        kinds = (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
        if watched is self.filter and escape and self.filter.text() and event.type() in kinds:
            event.accept()
            if event.type() == QEvent.Type.KeyPress:
                self.filter.clear()
            return True
        return super().eventFilter(watched, event)

    def tree_menu(self, pos: QPoint | None = None) -> QMenu:
        """The field tree's context menu, for the field under ``pos`` (or the selected one)."""
        if pos is not None and (index := self.tree.indexAt(pos)).isValid():
            self.tree.setCurrentIndex(index)
        item = self.current_field()
        data = self.current_bytes()
        name = printable(item["name"], 60) if item else ""

        def copy(text: str, what: str) -> None:
            copy_text(text, None, what)
            self.pane.message.emit(f"Copied {what}")

        actions: list[tuple[str, Any] | None] = []
        if item:
            actions += [
                ("Copy Value", lambda: copy(printable(item["value"], 4096), f"the value of {name}")),
                ("Copy Name", lambda: copy(name, "the field name")),
                ("Copy Offset", lambda: copy(f"0x{item['offset']:x}", f"offset 0x{item['offset']:x}")),
            ]
        if data:
            actions += [
                (f"Copy Bytes as {k}", lambda k=k: copy(copy_as(data, k), f"{len(data)} bytes as {k}"))
                for k in COPY_FORMATS
            ]
        actions += [None, ("Expand All", self.tree.expandAll), ("Collapse All", self.tree.collapseAll)]
        return menu(self, actions)

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self._filtering:  # the filter hid the current row: the view's pick of another one is not the user's
            return
        item = current.data(PAYLOAD_ROLE) if current.isValid() else None
        if not item or item["size"] <= 0:
            self.hex.highlight(None)
        else:
            parent = current.parent().data(PAYLOAD_ROLE) if current.parent().isValid() else None
            context = (parent["offset"], parent["offset"] + parent["size"]) if parent and parent["size"] else None
            field = (item["offset"], item["offset"] + item["size"])
            if self._following_bytes:  # the user clicked a byte: keep the view where it is
                self.hex.field, self.hex.context = field, context
                self.hex.viewport().update()
            else:
                self.hex.highlight(field, context)
        self.field_selected.emit(item)
