"""The bytes pane: offset, hex and ASCII of the byte regions the engine read, drawn row by row.

Only visible rows are painted, so a 256 KiB region costs nothing until it is scrolled to. The field
range is highlighted strongly and its enclosing structure lightly; clicking a byte (or moving the
cursor with the keyboard) emits :attr:`HexView.byte_selected` so the window can select its field.
"""

from __future__ import annotations

import bisect
from typing import Any

from PySide6.QtCore import QEvent, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QAbstractScrollArea, QWidget

from . import theme

WIDTH = 16
NOT_AVAILABLE = "bytes not available: the engine sent none for this image"
Range = tuple[int, int]  # start, end (exclusive)
TOOL_KEYS = {Qt.Key.Key_F: "find", Qt.Key.Key_G: "goto", Qt.Key.Key_C: "copy"}


def _printable_ascii(value: int) -> str:
    return chr(value) if 0x20 <= value < 0x7F else "."


def regions_of(report: dict[str, Any] | None) -> list[tuple[int, bytes]]:
    """The report's byte regions (``byte_regions``, else ``header_bytes``) as sorted ``(offset, bytes)``."""
    if not report:
        return []
    raw = report.get("byte_regions") or ([report["header_bytes"]] if report.get("header_bytes") else [])
    return sorted((item["offset"], bytes.fromhex(item["hex"])) for item in raw if item.get("hex"))


class HexView(QAbstractScrollArea):
    byte_selected = Signal(int)  # a byte clicked or moved to: the window selects its field
    cursor_moved = Signal()  # the cursor or the selection changed (status bar, data inspector)
    tool_requested = Signal(str)  # "find" (Ctrl+F), "goto" (Ctrl+G), "copy" (Ctrl+C) pressed in the pane

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Bytes")
        self.setAccessibleDescription("Hex and ASCII of the bytes the engine read; select a byte to select its field")
        self.regions: list[tuple[int, bytes]] = []
        self._starts: list[int] = []
        self.rows: list[tuple[int, int]] = []  # (row start offset, 0) or (bytes not read, -1)
        self._row_keys: list[int] = []  # first offset of each row, for bisect
        self.field: Range | None = None
        self.context: Range | None = None
        self.cursor_offset: int | None = None
        self.anchor: int | None = None  # where a Shift selection started
        self._digits = 8
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    # data
    def set_regions(self, regions: list[tuple[int, bytes]]) -> None:
        self.regions = sorted((offset, data) for offset, data in regions if data)
        self._starts = [offset for offset, _ in self.regions]
        self.rows, self._row_keys = [], []
        last_row = end_of_last = None
        for offset, data in self.regions:
            first = offset - offset % WIDTH
            if last_row is not None and end_of_last is not None:
                if first > last_row + WIDTH:
                    self.rows.append((offset - end_of_last, -1))
                    self._row_keys.append(last_row + 1)
                first = max(first, last_row + WIDTH)  # a row shared with the previous region exists already
            for start in range(first, offset + len(data), WIDTH):
                self.rows.append((start, 0))
                self._row_keys.append(start)
                last_row = start
            end_of_last = max(end_of_last or 0, offset + len(data))
        self._digits = max(8, len(f"{end_of_last or 0:x}"))
        self.field = self.context = self.cursor_offset = self.anchor = None
        self.cursor_moved.emit()
        self.verticalScrollBar().setValue(0)
        self._update_scrollbar()
        self.viewport().update()

    def byte_at(self, at: int) -> int | None:
        index = bisect.bisect_right(self._starts, at) - 1
        if index < 0:
            return None
        offset, data = self.regions[index]
        return data[at - offset] if at < offset + len(data) else None

    def bytes_from(self, start: int, most: int) -> bytes:
        """Up to ``most`` bytes from ``start``, as far as its region goes (nothing when it was not read)."""
        index = bisect.bisect_right(self._starts, start) - 1
        if index < 0:
            return b""
        offset, data = self.regions[index]
        return data[start - offset : start - offset + most] if start < offset + len(data) else b""

    def selection(self) -> Range | None:
        """The bytes highlighted: a Shift selection, a find match or the selected field."""
        return self.field

    def has_bytes(self, start: int, size: int = 1) -> bool:
        return self.bytes_at(start, size) is not None

    def bytes_at(self, start: int, size: int) -> bytes | None:
        """``size`` bytes at ``start`` when one region holds them all."""
        index = bisect.bisect_right(self._starts, start) - 1
        if index < 0:
            return None
        offset, data = self.regions[index]
        return data[start - offset : start - offset + size] if start + size <= offset + len(data) else None

    def highlight(self, field: Range | None, context: Range | None = None) -> None:
        """Mark a field's bytes (and its parent structure) and scroll the field into view."""
        self.field, self.context, self.anchor = field, context, None
        if field:
            self.cursor_offset = field[0]
            self.scroll_to(field[0])
            self.setAccessibleDescription(f"selected bytes 0x{field[0]:x} to 0x{field[1] - 1:x}")
        self.viewport().update()
        self.cursor_moved.emit()

    def scroll_to(self, offset: int) -> None:
        row = self._row_of(offset)
        if row is None:
            return
        bar = self.verticalScrollBar()
        if not bar.value() <= row < bar.value() + self._visible_rows() - 1:
            bar.setValue(max(0, row - 2))

    # geometry
    def _line_height(self) -> int:
        return self.fontMetrics().height() + 2

    def _char_width(self) -> int:
        return self.fontMetrics().horizontalAdvance("0")

    def _visible_rows(self) -> int:
        return max(1, self.viewport().height() // self._line_height())

    def _hex_x(self) -> int:
        return 6 + (self._digits + 2) * self._char_width()

    def _byte_x(self, column: int) -> int:
        return self._hex_x() + (column * 3 + (1 if column >= 8 else 0)) * self._char_width()

    def _ascii_x(self) -> int:
        return self._hex_x() + (WIDTH * 3 + 2) * self._char_width()

    def content_width(self) -> int:
        return self._ascii_x() + (WIDTH + 1) * self._char_width()

    def _update_scrollbar(self) -> None:
        bar = self.verticalScrollBar()
        bar.setRange(0, max(0, len(self.rows) - self._visible_rows()))
        bar.setPageStep(self._visible_rows())
        hbar = self.horizontalScrollBar()
        hbar.setRange(0, max(0, self.content_width() - self.viewport().width()))
        hbar.setPageStep(self.viewport().width())

    def _row_of(self, offset: int) -> int | None:
        row = bisect.bisect_right(self._row_keys, offset) - 1
        if row < 0 or self.rows[row][1] < 0:
            return None
        return row

    def offset_at(self, point: QPoint) -> int | None:
        """The byte under a viewport point (hex or ASCII column), if the engine read it."""
        row = self.verticalScrollBar().value() + point.y() // self._line_height()
        if not 0 <= row < len(self.rows) or self.rows[row][1] < 0:
            return None
        x = point.x() + self.horizontalScrollBar().value()
        cw = self._char_width()
        column = None
        if self._hex_x() <= x < self._ascii_x() - cw:
            column = next((c for c in range(WIDTH - 1, -1, -1) if x >= self._byte_x(c)), None)
        elif self._ascii_x() <= x < self._ascii_x() + WIDTH * cw:
            column = (x - self._ascii_x()) // cw
        if column is None:
            return None
        offset = self.rows[row][0] + column
        return offset if self.has_bytes(offset) else None

    # events
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._update_scrollbar()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        offset = self.offset_at(event.position().toPoint())
        if offset is not None and event.button() == Qt.MouseButton.LeftButton:
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.extend_to(offset)
            else:
                self.select_byte(offset)
        super().mousePressEvent(event)

    def select_byte(self, offset: int) -> None:
        self.cursor_offset, self.anchor = offset, None
        self.viewport().update()
        self.byte_selected.emit(offset)
        self.cursor_moved.emit()

    def extend_to(self, offset: int) -> None:
        """Move the cursor to ``offset`` and select from where the selection started (Shift+click, Shift+arrows)."""
        if self.anchor is None:
            self.anchor = self.cursor_offset if self.cursor_offset is not None else offset
        self.cursor_offset = offset
        low, high = sorted((self.anchor, offset))
        self.field, self.context = (low, high + 1), None
        self.viewport().update()
        self.cursor_moved.emit()

    def event(self, event: QEvent) -> bool:
        """Keep Ctrl+F, Ctrl+G and Ctrl+C for the pane while it has the focus (the window has its own)."""
        override = event.type() == QEvent.Type.ShortcutOverride
        if (
            override
            and isinstance(event, QKeyEvent)
            and event.modifiers() == Qt.KeyboardModifier.ControlModifier
            and event.key() in TOOL_KEYS
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        steps = {
            Qt.Key.Key_Left: -1,
            Qt.Key.Key_Right: 1,
            Qt.Key.Key_Up: -WIDTH,
            Qt.Key.Key_Down: WIDTH,
            Qt.Key.Key_PageUp: -WIDTH * self._visible_rows(),
            Qt.Key.Key_PageDown: WIDTH * self._visible_rows(),
        }
        if event.modifiers() == Qt.KeyboardModifier.ControlModifier and event.key() in TOOL_KEYS:
            self.tool_requested.emit(TOOL_KEYS[Qt.Key(event.key())])
            return
        step = steps.get(Qt.Key(event.key()))
        if step is None or not self.regions:
            super().keyPressEvent(event)
            return
        here = self.cursor_offset if self.cursor_offset is not None else self.regions[0][0]
        target = here + step
        if self.has_bytes(target):
            self.scroll_to(target)
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.extend_to(target)
            else:
                self.select_byte(target)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self.viewport())
        palette = self.palette()
        painter.fillRect(self.viewport().rect(), palette.color(QPalette.ColorRole.Base))
        if not self.regions:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, NOT_AVAILABLE)
            return
        painter.translate(-self.horizontalScrollBar().value(), 0)
        first = self.verticalScrollBar().value()
        for line, row in enumerate(range(first, min(len(self.rows), first + self._visible_rows() + 1))):
            self._paint_row(painter, palette, line * self._line_height(), *self.rows[row])

    def _paint_row(self, painter: QPainter, palette: QPalette, y: int, start: int, kind: int) -> None:
        height, cw = self._line_height(), self._char_width()
        ascent = y + self.fontMetrics().ascent() + 1
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        painter.setPen(muted)
        if kind < 0:
            painter.drawText(6, ascent, f"⋯ {start:,} bytes not read ⋯")
            return
        painter.drawText(6, ascent, f"{start:0{self._digits}x}")
        held = ((column, start + column, self.byte_at(start + column)) for column in range(WIDTH))
        cells = [(column, at, value) for column, at, value in held if value is not None]
        for column, at, _ in cells:  # backgrounds first, so no fill covers a neighbour's text
            fill = self._fill(palette, at)
            if fill is not None:
                left = self._byte_x(column) - cw // 2
                right = self._byte_x(column + 1) - cw // 2 if column + 1 < WIDTH else self._byte_x(column) + 2 * cw
                painter.fillRect(QRect(left, y, right - left, height), fill)
                painter.fillRect(QRect(self._ascii_x() + column * cw, y, cw, height), fill)
        for column, at, value in cells:
            selected = self.field is not None and self.field[0] <= at < self.field[1]
            role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
            painter.setPen(palette.color(role))
            painter.drawText(self._byte_x(column), ascent, f"{value:02x}")
            painter.drawText(self._ascii_x() + column * cw, ascent, _printable_ascii(value))
            if at == self.cursor_offset and self.hasFocus():
                painter.setPen(palette.color(QPalette.ColorRole.Text))
                painter.drawRect(QRect(self._byte_x(column) - 2, y, 2 * cw + 3, height - 1))

    def _fill(self, palette: QPalette, at: int) -> QColor | None:
        if self.field and self.field[0] <= at < self.field[1]:
            return palette.color(QPalette.ColorRole.Highlight)
        if self.context and self.context[0] <= at < self.context[1]:
            return theme.accent("context")
        return None
