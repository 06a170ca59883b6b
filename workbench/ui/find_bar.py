"""The find bar under the bytes pane (Ctrl+F there): hex bytes, text or a regular expression, next and previous."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QPushButton, QToolButton, QWidget

from .hex_find import MODES


class FindBar(QWidget):
    find_requested = Signal(bool)  # backwards

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLineEdit()
        self.text.setAccessibleName("Find in the bytes")
        self.text.setPlaceholderText("Find: hex bytes (51 46 49 fb), text or a regular expression")
        self.mode = QComboBox()
        self.mode.setAccessibleName("Find mode")
        self.mode.addItems(list(MODES))
        self.previous = QPushButton("&Previous")
        self.next = QPushButton("&Next")
        close = QToolButton()
        close.setText("✕")
        close.setAccessibleName("Close the find bar")
        close.clicked.connect(self.hide)
        self.previous.clicked.connect(lambda: self.find_requested.emit(True))
        self.next.clicked.connect(lambda: self.find_requested.emit(False))
        self.text.installEventFilter(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        for widget in (self.text, self.mode, self.previous, self.next, close):
            layout.addWidget(widget, 1 if widget is self.text else 0)
        self.hide()

    def open(self) -> None:
        self.show()
        self.text.setFocus()
        self.text.selectAll()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Enter finds the next match, Shift+Enter the previous one, Escape closes the bar."""
        if watched is self.text and isinstance(event, QKeyEvent):
            if event.type() == QEvent.Type.ShortcutOverride and event.key() == Qt.Key.Key_Escape:
                event.accept()
                return True
            if event.type() == QEvent.Type.KeyPress:
                if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                    self.find_requested.emit(bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
                    return True
                if event.key() == Qt.Key.Key_Escape:
                    self.hide()
                    return True
        return super().eventFilter(watched, event)
