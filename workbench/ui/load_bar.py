"""The strip above an on-demand view (Guest, Allocation): what it shows or why not, a busy bar while the
sandboxed child reads, Cancel, and the button that asks for it."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from .widgets import plain_label


class LoadBar(QWidget):
    requested = Signal()  # the action button: read (again)
    cancelled = Signal()

    def __init__(self, name: str, action: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = plain_label(wrap=True)
        self.message.setAccessibleName(f"{name} status")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # the child reports no fraction: busy, not a percentage
        self.busy.setAccessibleName(f"{name} in progress")
        self.busy.setMaximumWidth(160)
        self.cancel = QPushButton("Cancel")
        self.cancel.setAccessibleName(f"Cancel the {name.lower()}")
        self.action = QPushButton(action)
        self.cancel.clicked.connect(self.cancelled)
        self.action.clicked.connect(self.requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.busy)
        layout.addWidget(self.cancel)
        layout.addWidget(self.action)
        self.show_status("", busy=False, can_request=False)

    def show_status(self, message: str, *, busy: bool, can_request: bool) -> None:
        """``message`` is plain text (strings from the image already escaped by the caller)."""
        self.message.setText(message)
        self.busy.setVisible(busy)
        self.cancel.setVisible(busy)
        self.action.setVisible(can_request and not busy)
