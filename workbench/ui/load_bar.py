"""The strip above an on-demand view (Guest, Allocation): what it shows or why not, a progress bar while the
sandboxed child reads (busy until the child says how far it is, then done/total), Cancel, and the button
that asks for it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from ..render.textsafe import printable
from .widgets import plain_label

STEPS = 1000  # the bar's range: totals are 64-bit byte counts, a QProgressBar's range is a C int


def progress_text(progress: dict[str, Any]) -> str:
    """``what`` (plain, capped: it comes from the child) and the fraction, e.g. ``guest mapping: 42 %``."""
    return f"{printable(progress['what'], 60)}: {fraction(progress) * 100 // STEPS} %"


def fraction(progress: dict[str, Any]) -> int:
    """``done/total`` in :data:`STEPS` (a total of 0 is done)."""
    done, total = progress["done"], progress["total"]
    return STEPS if total <= 0 else max(0, min(STEPS, done * STEPS // total))


class LoadBar(QWidget):
    requested = Signal()  # the action button: read (again)
    cancelled = Signal()

    def __init__(self, name: str, action: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = plain_label(wrap=True)
        self.message.setAccessibleName(f"{name} status")
        self.busy = QProgressBar()
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
        self._status = ""
        self.show_status("", busy=False, can_request=False)

    def show_status(
        self, message: str, *, busy: bool, can_request: bool, progress: dict[str, Any] | None = None
    ) -> None:
        """``message`` is plain text (strings from the image already escaped by the caller); ``progress``
        (while ``busy``) is the child's last ``{"done", "total", "what"}``."""
        self._status = message
        self.busy.setVisible(busy)
        self.cancel.setVisible(busy)
        self.action.setVisible(can_request and not busy)
        self.show_progress(progress if busy else None)

    def show_progress(self, progress: dict[str, Any] | None) -> None:
        """Determinate from the child's ``progress``; busy (no fraction) while there is none."""
        if progress is None:
            self.busy.setRange(0, 0)
            self.message.setText(self._status)
            return
        self.busy.setRange(0, STEPS)
        self.busy.setValue(fraction(progress))
        self.message.setText(f"{self._status} {progress_text(progress)}")
