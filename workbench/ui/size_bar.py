"""Logical, file and allocated size drawn to one linear scale: a 1 MiB file claiming 2 TiB is a sliver."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..render.sizes import human_size
from . import theme

LABEL_WIDTH = 78
VALUE_WIDTH = 96
GUEST_DATA = "Guest data"  # the row added after a deep check
GUEST_DATA_TEXT = "guest data actually allocated"


def ratio_text(logical: int | None, file_size: int | None) -> str:
    if not logical or not file_size:
        return ""
    share = file_size / logical * 100
    if share >= 100:
        return "the file is at least as large as the disk it describes"
    shown = "less than 0.001" if share < 0.001 else f"{share:.3g}"
    return f"the file is {shown} % of the logical size it claims ({logical / file_size:,.0f} times smaller)"


class SizeBar(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sizes: list[tuple[str, int | None]] = []
        self.over_limit = False
        self.setAccessibleName("Sizes")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_sizes(
        self, logical: int | None, file_size: int | None, allocated: int | None, limit: int, guest: int | None = None
    ) -> None:
        """``guest``: the guest data actually allocated (``deep.allocated_virtual``), after a deep check."""
        self.sizes = [("Logical", logical), ("File", file_size), ("Allocated", allocated)]
        if guest is not None:
            self.sizes.append((GUEST_DATA, guest))
        self.over_limit = logical is not None and logical > limit
        parts = [f"{GUEST_DATA_TEXT if name == GUEST_DATA else name} {human_size(value)}" for name, value in self.sizes]
        self.setAccessibleDescription("; ".join(parts) + ". " + ratio_text(logical, file_size))
        self.setToolTip(self.accessibleDescription())
        self.updateGeometry()
        self.update()

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 6

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(420, self._row_height() * (len(self.sizes) + 1) + 4)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(LABEL_WIDTH + VALUE_WIDTH + 60, self.sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if not self.sizes:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        scale = max((v or 0) for _, v in self.sizes) or 1
        track_width = max(20, self.width() - LABEL_WIDTH - VALUE_WIDTH - 8)
        row = self._row_height()
        for number, (name, value) in enumerate(self.sizes):
            y = number * row + 2
            painter.setPen(palette.color(QPalette.ColorRole.WindowText))
            painter.drawText(QRectF(0, y, LABEL_WIDTH, row), Qt.AlignmentFlag.AlignVCenter, name)
            track = QRectF(LABEL_WIDTH, y + 3, track_width, row - 6)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.accent("track"))
            painter.drawRoundedRect(track, 3, 3)
            if value:
                width = max(3.0, track_width * value / scale)  # never invisible: the sliver is the point
                painter.setBrush(self._colour(name))
                painter.drawRoundedRect(QRectF(track.left(), track.top(), width, track.height()), 3, 3)
            painter.setPen(palette.color(QPalette.ColorRole.WindowText))
            text = "unknown" if value is None else human_size(value)
            painter.drawText(
                QRectF(LABEL_WIDTH + track_width + 8, y, VALUE_WIDTH, row), Qt.AlignmentFlag.AlignVCenter, text
            )
        logical, file_size = self.sizes[0][1], self.sizes[1][1]
        note = ratio_text(logical, file_size)
        if self.over_limit:
            note = f"above the size limit: {note}"
        painter.setPen(self.note_colour())
        y = len(self.sizes) * row + 2
        painter.drawText(QRectF(0, y, self.width(), row), Qt.AlignmentFlag.AlignVCenter, note)

    def note_colour(self) -> QColor:
        """Red above the size limit, else the text colour: a sparse image's large ratio alone is no warning
        (the verdict, not the ratio, says whether a size matters; the same rule for every image)."""
        return theme.accent("critical") if self.over_limit else self.palette().color(QPalette.ColorRole.WindowText)

    def _colour(self, name: str) -> QColor:
        if name == "Logical":
            return theme.accent("critical") if self.over_limit else theme.accent("bar")
        if name == GUEST_DATA:
            return theme.accent("info")
        return theme.accent("file" if name == "File" else "allocated")
