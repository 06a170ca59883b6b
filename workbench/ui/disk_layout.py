"""The guest disk drawn like a partition editor: volumes as proportional blocks, gaps between them.

:func:`layout_blocks` is the geometry (pure, tested); :class:`DiskLayout` paints it. Every string drawn
came from the image: it goes through ``printable`` and is drawn as plain text (tooltips escaped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..render.sizes import human_size
from ..render.textsafe import printable
from . import theme
from .qtmodels.node_model import tooltip

MIN_BLOCK = 28  # pixels: a 1 MiB partition on a 2 TiB disk stays visible and clickable
MAX_BLOCKS = 256  # volumes drawn (the report holds at most 1024; the tree lists them all)
GAP_SHARE = 0.005  # unallocated space smaller than this share of the disk is not drawn as a gap
LABEL_CAP = 60  # characters of an image string inside a block (the tooltip holds up to 300)
ENCRYPTED = ("luks", "bitlocker", "crypt")
FS_COLOURS = {  # filesystem or container type -> fill, readable with dark text in both themes
    "ext2": "#8fd18f",
    "ext3": "#79c779",
    "ext4": "#5fb85f",
    "xfs": "#d9a35f",
    "btrfs": "#e3c35a",
    "ntfs": "#6fa8dc",
    "vfat": "#b4d96a",
    "exfat": "#9fc95a",
    "iso9660": "#c9a0dc",
    "squashfs": "#b39ddb",
    "swap": "#e07b7b",
    "lvm2": "#c2b280",
    "md": "#a1887f",
    "encrypted": "#9575cd",
    "other": "#b0bec5",
    "empty": "#d6dbe0",
}


@dataclass(frozen=True)
class Block:
    """A drawn block: a volume (``volume`` set) or unallocated space; ``overlap`` when it starts inside an
    earlier volume (a hostile or broken table)."""

    start: int
    length: int
    volume: dict[str, Any] | None
    rect: QRectF
    overlap: bool = False

    @property
    def kind(self) -> str:
        return "gap" if self.volume is None else volume_kind(self.volume)


def _text(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def volume_kind(volume: dict[str, Any]) -> str:
    """The colour key of a volume: its filesystem type, ``encrypted``, a container type, or other/empty."""
    filesystem, container = (_dict(volume.get(key)) for key in ("filesystem", "container"))
    kinds = [_text(filesystem.get("type")), _text(container.get("type"))]
    if any(word in kind for kind in kinds for word in ENCRYPTED):
        return "encrypted"
    for kind in kinds:
        if kind in FS_COLOURS:
            return kind
        if kind.startswith("md") or kind.startswith("linux_raid"):
            return "md"
        if kind.startswith("lvm"):
            return "lvm2"
    return "other" if any(kinds) else "empty"


def _spans(volumes: list[dict[str, Any]], size: int) -> list[tuple[int, int, dict[str, Any] | None, bool]]:
    """Volumes in disk order with the gaps worth drawing: (start, drawn length, volume or None, overlap)."""
    ordered = sorted(volumes[:MAX_BLOCKS], key=lambda v: (_int(v.get("start")), _int(v.get("length"))))
    total = max([size, *(_int(v.get("start")) + _int(v.get("length")) for v in ordered)]) or 1
    spans: list[tuple[int, int, dict[str, Any] | None, bool]] = []
    cursor = 0
    for volume in ordered:
        start, end = _int(volume.get("start")), _int(volume.get("start")) + _int(volume.get("length"))
        if start - cursor > total * GAP_SHARE:
            spans.append((cursor, start - cursor, None, False))
        spans.append((start, max(0, end - max(start, cursor)), volume, start < cursor))
        cursor = max(cursor, end)
    if total - cursor > total * GAP_SHARE:
        spans.append((cursor, total - cursor, None, False))
    return spans


def _widths(lengths: list[int], width: float, least: float) -> list[float]:
    """Widths proportional to ``lengths`` that fill ``width``, none below ``least`` (when they fit)."""
    if not lengths:
        return []
    if least * len(lengths) >= width:
        return [width / len(lengths)] * len(lengths)
    fixed: set[int] = set()
    for _ in range(len(lengths)):  # each round fixes at least one more block at ``least``, or stops
        free = [i for i in range(len(lengths)) if i not in fixed]
        room = width - least * len(fixed)
        share = sum(lengths[i] for i in free) or 1
        small = {i for i in free if lengths[i] * room / share < least}
        if not small:
            break
        fixed |= small
    room = width - least * len(fixed)
    share = sum(lengths[i] for i in range(len(lengths)) if i not in fixed) or 1
    return [least if i in fixed else lengths[i] * room / share for i in range(len(lengths))]


def layout_blocks(volumes: list[dict[str, Any]], size: int, rect: QRectF, least: float = MIN_BLOCK) -> list[Block]:
    """The blocks of a guest disk of ``size`` bytes drawn in ``rect``: proportional, each at least ``least``
    pixels wide, gaps (unallocated space) between volumes; a volume past the end widens the scale."""
    spans = _spans(volumes, size)
    widths = _widths([length for _, length, _, _ in spans], rect.width(), least)
    blocks, x = [], rect.left()
    for (start, length, volume, overlap), width in zip(spans, widths, strict=True):
        blocks.append(Block(start, length, volume, QRectF(x, rect.top(), width, rect.height()), overlap))
        x += width
    return blocks


def describe(volume: dict[str, Any] | None, start: int, length: int) -> list[str]:
    """The lines of a block: index and name, filesystem or container with its label, size; image strings
    escaped and capped at ``LABEL_CAP`` characters."""
    if volume is None:
        return ["unallocated", human_size(length)]
    name = printable(volume.get("name") or volume.get("type") or "", LABEL_CAP)
    lines = [f"{_int(volume.get('index'))} {name}".strip()]
    for key in ("filesystem", "container"):
        layer = volume.get(key)
        if isinstance(layer, dict) and layer.get("type"):
            label = f" '{printable(layer['label'], LABEL_CAP)}'" if layer.get("label") else ""
            lines.append(printable(layer["type"], LABEL_CAP) + label)
    if volume_kind(volume) == "encrypted":
        lines.append("encrypted")
    os_info = volume.get("os")
    if isinstance(os_info, dict) and os_info.get("name"):
        lines.append(printable(os_info["name"], LABEL_CAP))
    lines.append(human_size(_int(volume.get("length"))))
    return lines


class DiskLayout(QWidget):
    """Paints :func:`layout_blocks`; a click selects a block (:attr:`block_selected`)."""

    block_selected = Signal(object)  # the Block
    block_activated = Signal(object)  # the Block, double-clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.volumes: list[dict[str, Any]] = []
        self.disk_size = 0
        self.selected: Block | None = None
        self.setAccessibleName("Guest disk layout")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_disk(self, volumes: list[dict[str, Any]], size: int) -> None:
        self.volumes = [v for v in volumes if isinstance(v, dict)]
        self.disk_size = max(0, size)
        self.selected = None
        kinds = ", ".join(" ".join(describe(b.volume, b.start, b.length)) for b in self.blocks()[:20])
        self.setAccessibleDescription(kinds)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(600, self.fontMetrics().height() * 5 + 16)

    def blocks(self) -> list[Block]:
        return layout_blocks(self.volumes, self.disk_size, QRectF(self.rect()).adjusted(1, 1, -1, -1))

    def block_at(self, point: QPointF) -> Block | None:
        return next((b for b in self.blocks() if b.rect.contains(point)), None)

    def select(self, block: Block | None) -> None:
        self.selected = block
        self.update()
        if block is not None:
            self.block_selected.emit(block)

    def select_volume(self, volume: dict[str, Any]) -> None:
        """Select the block of ``volume`` (from the tree of layers), without a round trip through it."""
        self.selected = next((b for b in self.blocks() if b.volume is volume), None)
        self.update()

    def colour(self, block: Block) -> QColor:
        return theme.accent("track") if block.volume is None else QColor(FS_COLOURS[block.kind])

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.select(self.block_at(event.position()))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        block = self.block_at(event.position())
        if block is not None:
            self.block_activated.emit(block)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            block = self.block_at(QPointF(event.pos()))
            if block is None:
                QToolTip.hideText()
            else:
                where = f"at {human_size(block.start)} ({block.start} bytes)"
                QToolTip.showText(
                    event.globalPos(), tooltip("\n".join([*describe(block.volume, 0, block.length), where]))
                )
            return True
        return super().event(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        text_colour = self.palette().color(QPalette.ColorRole.WindowText)
        for block in self.blocks():
            rect = block.rect.adjusted(1, 1, -1, -1)
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
            painter.setBrush(self.colour(block))
            painter.drawRect(rect)
            if block.volume is None:
                painter.setBrush(QBrush(self.palette().color(QPalette.ColorRole.Mid), Qt.BrushStyle.BDiagPattern))
                painter.drawRect(rect)
            elif block.kind == "encrypted":
                painter.setBrush(QBrush(QColor("#b8a6e3"), Qt.BrushStyle.DiagCrossPattern))
                painter.drawRect(rect)
            if block.overlap:
                painter.setPen(QPen(theme.accent("critical"), 3))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(rect)
            painter.setPen(text_colour if block.volume is None else QColor("#111111"))
            lines = describe(block.volume, block.start, block.length)
            if rect.width() < self.fontMetrics().horizontalAdvance("MMMM"):  # too narrow for words: the index
                lines = [str(_int(block.volume.get("index")))] if block.volume is not None else []
            self._draw_lines(painter, rect.adjusted(3, 2, -2, -2), lines)
        if self.selected is not None:
            chosen = next(
                (b for b in self.blocks() if b.start == self.selected.start and b.volume is self.selected.volume), None
            )
            if chosen is not None:
                painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 3))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(chosen.rect.adjusted(1.5, 1.5, -1.5, -1.5))

    def _draw_lines(self, painter: QPainter, rect: QRectF, lines: list[str]) -> None:
        metrics = self.fontMetrics()
        line_height = metrics.height()
        for number, line in enumerate(lines[: max(0, int(rect.height() // line_height))]):
            shown = metrics.elidedText(line, Qt.TextElideMode.ElideRight, int(rect.width()))
            painter.drawText(
                QRectF(rect.left(), rect.top() + number * line_height, rect.width(), line_height),
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                shown,
            )
