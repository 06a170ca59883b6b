"""The Allocation view's strips: runs of ``deep.map`` (the guest's address space) and ``deep.file_map``
(the file) drawn to scale, each kind in its own colour, with a legend.

:func:`map_kind` and :func:`file_kind` classify runs (pure, tested); :class:`RunStrip` paints them, says a
run's range on hover (plain text) and reports a click (:attr:`RunStrip.run_clicked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QToolTip, QWidget

from ..render.sizes import human_size
from ..render.textsafe import printable
from . import theme
from .qtmodels.node_model import tooltip
from .widgets import plain_label

LEGEND_COLUMNS = 4
MAX_RUNS = 4096  # as the schema caps each list (MAX_MAP_RUNS); more are not drawn
# kind -> (legend text, colour); the order is the legend's
MAP_KINDS = {
    "data": ("data", "#3a7bd5"),
    "compressed": ("compressed", "#8e5bd0"),
    "zero": ("zero", "#9ad0a8"),
    "unallocated": ("unallocated", "#e3e6ea"),
    "backing": ("from the backing file", "#f0b429"),
    "invalid": ("invalid entry", "#c4262e"),
}
FILE_KINDS = {
    "header": ("header", "#2e4a7d"),
    "table": ("metadata tables", "#5b7fbf"),
    "data": ("data", "#3a7bd5"),
    "compressed": ("compressed", "#8e5bd0"),
    "free": ("hole (unused)", "#e3e6ea"),
    "overlap": ("overlap", "#c4262e"),
    "outside": ("outside the file", "#ff6b6b"),
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def map_kind(run: dict[str, Any]) -> str:
    """A ``deep.map`` run's kind, from qemu-img map's flags (plus ``compressed`` and ``invalid``)."""
    if run.get("invalid"):
        return "invalid"
    if run.get("compressed"):
        return "compressed"
    if run.get("present"):
        return "data" if run.get("data") or not run.get("zero") else "zero"
    return "unallocated" if run.get("zero") else "backing"


def file_kind(run: dict[str, Any]) -> str:
    kind = run.get("kind")
    return kind if isinstance(kind, str) and kind in FILE_KINDS else "table"


@dataclass(frozen=True)
class Run:
    """A run to draw: ``start`` and ``length`` on the strip's scale, the file offset a click selects."""

    start: int
    length: int
    kind: str
    text: str  # the tooltip's lines, plain text
    file_offset: int | None


def map_runs(runs: list[dict[str, Any]]) -> list[Run]:
    out = []
    for run in runs[:MAX_RUNS]:
        start, length, kind = _int(run.get("start")), _int(run.get("length")), map_kind(run)
        offset = run.get("offset") if isinstance(run.get("offset"), int) else None
        where = f"; file offset 0x{offset:x}" if offset is not None else ""
        text = f"{MAP_KINDS[kind][0]}: guest 0x{start:x}–0x{start + length:x} ({human_size(length)}){where}"
        out.append(Run(start, length, kind, text, offset))
    return out


def file_runs(runs: list[dict[str, Any]]) -> list[Run]:
    out = []
    for run in runs[:MAX_RUNS]:
        offset, length, kind = _int(run.get("offset")), _int(run.get("length")), file_kind(run)
        name = f" {printable(run['name'], 120)}" if run.get("name") else ""
        text = f"{FILE_KINDS[kind][0]}{name}: file 0x{offset:x}–0x{offset + length:x} ({human_size(length)})"
        out.append(Run(offset, length, kind, text, offset))
    return out


class RunStrip(QWidget):
    """Runs drawn to scale over ``[0, total)``; a run is at least one pixel wide."""

    run_clicked = Signal(object)  # the Run

    def __init__(self, name: str, kinds: dict[str, tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kinds = kinds
        self.runs: list[Run] = []
        self.total = 0
        self.setAccessibleName(name)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_runs(self, runs: list[Run], total: int) -> None:
        self.runs = runs
        self.total = max([total, *(r.start + r.length for r in runs)])
        self.update()

    def colour(self, kind: str) -> QColor:
        return QColor(self.kinds[kind][1])

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(600, self.fontMetrics().height() * 2 + 8)

    def run_rect(self, run: Run) -> QRectF:
        scale = (self.width() - 2) / (self.total or 1)
        return QRectF(1 + run.start * scale, 1, max(1.0, run.length * scale), self.height() - 2)

    def run_at(self, x: float) -> Run | None:
        """The run under ``x``; where several share a pixel, the one nearest ``x`` (so thin runs can be hit)."""
        hits = [r for r in self.runs if (rect := self.run_rect(r)).left() - 1 <= x <= rect.right() + 1]
        return min(hits, key=lambda r: abs(self.run_rect(r).center().x() - x), default=None)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        run = self.run_at(event.position().x())
        if run is not None:
            self.run_clicked.emit(run)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            run = self.run_at(QPointF(event.pos()).x())
            if run is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), tooltip(run.text))
            return True
        return super().event(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(theme.accent("track"))
        painter.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        for run in self.runs:
            painter.setBrush(self.colour(run.kind))
            painter.drawRect(self.run_rect(run))
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))


class Legend(QWidget):
    """A swatch and a name per kind (all of them, so the colours can be learnt before a run shows them),
    :data:`LEGEND_COLUMNS` to a row so that a narrow window still holds it."""

    def __init__(self, kinds: dict[str, tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[tuple[str, QColor]] = [(text, QColor(colour)) for text, colour in kinds.values()]
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        side = self.fontMetrics().height() - 4
        for number, (text, colour) in enumerate(self.entries):
            swatch = QPixmap(side, side)
            swatch.fill(colour)
            box = QLabel()
            box.setPixmap(swatch)
            row, column = divmod(number, LEGEND_COLUMNS)
            layout.addWidget(box, row, 2 * column)
            layout.addWidget(plain_label(text), row, 2 * column + 1)
        layout.setColumnStretch(2 * LEGEND_COLUMNS, 1)
