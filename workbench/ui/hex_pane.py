"""The bytes pane with its expert tools: the data inspector docked beside it, the find bar under it,
go to offset (Ctrl+G), find (Ctrl+F), copy as hex, C array, Python bytes or base64, and its context menu.
The cursor offset and the selection length go to the status bar (:attr:`HexPane.status`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QInputDialog, QMenu, QSplitter, QVBoxLayout, QWidget

from . import hex_find
from .data_inspector import READ, DataInspector
from .find_bar import FindBar
from .hex_view import HexView
from .row_actions import copy_text, menu

MAX_COPY = 1 << 20  # bytes copied at most (a selection can span a whole region)


class HexPane(QWidget):
    status = Signal(str)  # cursor offset and selection, for the status bar
    message = Signal(str)  # a passing message (copied, not found, bad offset)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hex = HexView()
        self.inspector = DataInspector()
        self.find_bar = FindBar()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.hex)
        split.addWidget(self.inspector)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 300])
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split, 1)
        layout.addWidget(self.find_bar)
        self.hex.cursor_moved.connect(self._cursor_moved)
        self.hex.tool_requested.connect(self._tool)
        self.hex.customContextMenuRequested.connect(lambda pos: self.menu_at(pos).exec(self.hex.mapToGlobal(pos)))
        self.find_bar.find_requested.connect(self.find)

    # status and inspector
    def status_text(self) -> str:
        cursor, selected = self.hex.cursor_offset, self.hex.selection()
        if cursor is None:
            return ""
        text = f"cursor 0x{cursor:x} ({cursor})"
        if selected:
            low, high = selected
            text += f" · selection {high - low} byte{'s' if high - low != 1 else ''} (0x{low:x}–0x{high - 1:x})"
        return text

    def _cursor_moved(self) -> None:
        cursor = self.hex.cursor_offset
        self.inspector.show_bytes(cursor, self.hex.bytes_from(cursor, READ) if cursor is not None else b"")
        self.status.emit(self.status_text())

    # tools
    def _tool(self, name: str) -> None:
        if name == "find":
            self.find_bar.open()
        elif name == "goto":
            self.go_to_dialog()
        else:
            self.copy_selection("hex")

    def go_to_dialog(self) -> None:
        text, ok = QInputDialog.getText(
            self, "Go to offset", "Offset (decimal, 0x hex, 1f0h; +n or -n from the cursor):"
        )
        if ok:
            self.go_to(text)

    def go_to(self, text: str) -> bool:
        """Move the cursor to the offset ``text`` names, if the engine sent that byte."""
        try:
            offset = hex_find.parse_offset(text, self.hex.cursor_offset)
        except ValueError as exc:
            self.message.emit(str(exc))
            return False
        if not self.hex.has_bytes(offset):
            self.message.emit(f"offset 0x{offset:x} ({offset}) was not read: the engine sent no bytes there")
            return False
        self.hex.scroll_to(offset)
        self.hex.select_byte(offset)
        self.hex.setFocus()
        return True

    def find(self, backwards: bool = False) -> tuple[int, int] | None:  # type: ignore[override]  # not QWidget.find
        """The next (previous) match of the find bar's text after (before) the cursor, selected."""
        try:
            what = hex_find.needle(self.find_bar.text.text(), self.find_bar.mode.currentText())
        except ValueError as exc:
            self.message.emit(str(exc))
            return None
        cursor = self.hex.cursor_offset
        start = cursor if cursor is not None else -1
        found = hex_find.find(self.hex.regions, what, start, backwards)
        if found is None:
            self.message.emit("not found in the bytes the engine sent")
            return None
        offset, size = found
        self.hex.highlight((offset, offset + size))
        return found

    def selected_bytes(self) -> bytes | None:
        selected = self.hex.selection()
        if selected:
            return self.hex.bytes_at(selected[0], min(selected[1] - selected[0], MAX_COPY))
        cursor = self.hex.cursor_offset
        return self.hex.bytes_at(cursor, 1) if cursor is not None else None

    def copy_selection(self, kind: str) -> bool:
        data = self.selected_bytes()
        if not data:
            self.message.emit("Nothing selected in the bytes pane.")
            return False
        copy_text(hex_find.copy_as(data, kind), None, "")
        self.message.emit(f"Copied {len(data)} byte{'s' if len(data) != 1 else ''} as {kind}")
        return True

    def menu_at(self, pos: QPoint) -> QMenu:
        """The bytes pane's context menu (a right-click first moves the cursor there)."""
        offset = self.hex.offset_at(pos)
        selected = self.hex.selection()
        if offset is not None and not (selected and selected[0] <= offset < selected[1]):
            self.hex.select_byte(offset)
        items: list[tuple[str, Callable[[], Any]] | None] = [
            (f"Copy as {kind}", functools.partial(self.copy_selection, kind)) for kind in hex_find.COPY_FORMATS
        ]
        items += [None, ("Go to Offset… (Ctrl+G)", self.go_to_dialog), ("Find… (Ctrl+F)", self.find_bar.open)]
        return menu(self, items)
