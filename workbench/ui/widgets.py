"""Small building blocks: plain-text labels, configured tree views, the notice bar."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QToolButton,
    QTreeView,
    QWidget,
)

MAX_NOTICES = 50


def plain_label(text: str = "", parent: QWidget | None = None, *, wrap: bool = False) -> QLabel:
    """A label that never interprets its text as rich text (image strings end up in labels)."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(wrap)
    label.setText(text)
    return label


class ElidedLabel(QLabel):
    """A one-line plain-text label that cuts the middle of a text too long for it; the whole text is its
    tooltip (set by the caller, escaped). :meth:`text` stays the whole text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.fontMetrics().horizontalAdvance("M…M"), super().minimumSizeHint().height())

    def elided(self) -> str:
        """The text as drawn at the label's current width."""
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, self.contentsRect().width())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(self.contentsRect(), int(align), self.elided())


def read_only_rows(view: QAbstractItemView, name: str, model: QAbstractItemModel) -> None:
    """What every list of the window shares: named, read-only, one whole row selected, long text elided."""
    view.setModel(model)
    view.setAccessibleName(name)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)


def tree_view(name: str, model: QAbstractItemModel, stretch_column: int = -1) -> QTreeView:
    view = QTreeView()
    read_only_rows(view, name, model)
    view.setUniformRowHeights(True)
    header = view.header()
    header.setStretchLastSection(stretch_column < 0)
    if stretch_column >= 0:
        header.setSectionResizeMode(stretch_column, QHeaderView.ResizeMode.Stretch)
    return view


def fit_columns(view: QTreeView, widest: int = 360, sample: int = 300) -> None:
    """Size columns to the widest text among the first ``sample`` rows (top two levels), capped at
    ``widest`` pixels: cheap enough to run on every report (``resizeColumnToContents`` is not).
    """
    model, header, metrics = view.model(), view.header(), view.fontMetrics()
    needed = [
        metrics.horizontalAdvance(model.headerData(c, Qt.Orientation.Horizontal) or "") for c in range(header.count())
    ]
    queue, seen = [(QModelIndex(), 0)], 0
    while queue and seen < sample:
        parent, depth = queue.pop(0)
        for row in range(min(model.rowCount(parent), sample - seen)):
            seen += 1
            for column in range(header.count()):
                width = metrics.horizontalAdvance((model.index(row, column, parent).data() or "")[:80])
                if column == 0:
                    width += (depth + 1) * view.indentation() + 24  # branch, decoration icon
                needed[column] = max(needed[column], width)
            if depth < 1:
                queue.append((model.index(row, 0, parent), depth + 1))
    for column in range(header.count() - (1 if header.stretchLastSection() else 0)):
        if header.sectionResizeMode(column) != QHeaderView.ResizeMode.Stretch:
            header.resizeSection(column, min(widest, needed[column] + 16))


class NoticeBar(QFrame):
    """Messages for the user (refused drops, errors in slots) without a modal dialog."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Notices")
        self.messages: list[str] = []
        self.label = plain_label(wrap=True)
        close = QToolButton()
        close.setText("✕")
        close.setAccessibleName("Dismiss notices")
        close.setToolTip("Dismiss (Esc)")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def notify(self, message: str) -> None:
        self.messages = [*self.messages, message][-MAX_NOTICES:]
        shown = self.messages[-4:]
        more = len(self.messages) - len(shown)
        self.label.setText("\n".join(shown) + (f"\n(and {more} earlier)" if more else ""))
        self.setAccessibleDescription(self.label.text())
        self.show()

    def dismiss(self) -> None:
        self.messages = []
        self.hide()
