"""Guest: the disk inside the image, drawn like a partition editor, over a tree of its layers.

Loaded on demand: the first time the tab shows an image whose report has no ``guest`` value, the page asks
(:attr:`GuestPage.load_requested`) for the image to be inspected again with the guest view.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ..render.textsafe import printable
from .disk_layout import Block, DiskLayout
from .load_bar import LoadBar
from .page_state import PageState
from .qtmodels.guest_model import GuestModel
from .qtmodels.image_list_model import Entry
from .widgets import fit_columns, tree_view

READING = "Reading the guest disk (partitions, volumes, filesystems) in a sandboxed process…"


def guest_message(report: dict[str, Any] | None) -> str:
    """Why there is no layout to draw, or a one-line summary of the one drawn."""
    if not report:
        return "Select an inspected image."
    if report.get("verdict") == "failed":
        return f"The image could not be inspected: {printable(report.get('error') or '', 300)}"
    guest = report.get("guest")
    if not isinstance(guest, dict):
        return "The guest disk has not been read."
    if "unavailable" in guest:
        return f"Guest view unavailable: {printable(guest['unavailable'], 300)}"
    volumes = guest.get("volumes") or []
    table = guest.get("partition_table")
    kind = printable(table.get("type") or "partition", 40) if isinstance(table, dict) else "no partition"
    return f"{kind} table, {len(volumes)} volume{'s' if len(volumes) != 1 else ''}; click a block for its fields."


class GuestPage(QWidget):
    load_requested = Signal(object)  # Entry: inspect it again with the guest view
    cancel_requested = Signal(object)  # Entry
    volume_selected = Signal(object)  # the volume dict (a block or a tree row chosen)
    volume_activated = Signal(object)  # the volume dict (double-click: show its fields)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry: Entry | None = None
        self.declined: Entry | None = None  # the user cancelled this entry's load: not asked for again unbidden
        self.bar = LoadBar("Guest view", "&Read Guest Disk")
        self.layout_view = DiskLayout()
        self.model = GuestModel(self)
        self.tree = tree_view("Guest layers", self.model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.layout_view)
        layout.addWidget(self.tree, 1)
        self.bar.requested.connect(self._request)
        self.bar.cancelled.connect(self._cancel)
        self.layout_view.block_selected.connect(self._block_selected)
        self.layout_view.block_activated.connect(self._block_activated)
        self.tree.selectionModel().currentRowChanged.connect(self._row_changed)

    def show_state(self, state: PageState) -> None:
        self.entry = state.entry if state.entry is not None and not state.entry.audit else None
        report = state.report if self.entry is not None else None
        guest = (report or {}).get("guest")
        shown = isinstance(guest, dict) and "unavailable" not in guest
        self.model.set_guest(guest if shown else None)
        self.layout_view.set_disk((guest or {}).get("volumes") or [] if shown else [], self._disk_size(report))
        self.layout_view.setVisible(shown)
        self.tree.expandToDepth(0)
        fit_columns(self.tree)
        loading = state.loading == "guest"
        wanted = report is not None and report.get("verdict") != "failed" and not isinstance(guest, dict)
        unasked = self.entry is not None and "guest" not in self.entry.extras  # asked once: a button from then on
        if wanted and unasked and not loading and not state.link and self.entry is not self.declined:
            self.load_requested.emit(self.entry)
            loading = True
        message = READING if loading else guest_message(report)
        self.bar.show_status(message, busy=loading, can_request=wanted and not state.link, progress=state.progress)

    @staticmethod
    def _disk_size(report: dict[str, Any] | None) -> int:
        size = (report or {}).get("virtual_size")
        return size if isinstance(size, int) else 0

    def _request(self) -> None:
        self.declined = None
        if self.entry is not None:
            self.load_requested.emit(self.entry)

    def _cancel(self) -> None:
        if self.entry is not None:
            self.declined = self.entry
            self.cancel_requested.emit(self.entry)

    def _block_selected(self, block: Block) -> None:
        if block.volume is None:
            return
        node = self.model.node_of(block.volume)
        if node is not None:
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.tree.selectionModel().setCurrentIndex(self.model.index_of(node), flags)
        else:
            self.volume_selected.emit(block.volume)

    def _block_activated(self, block: Block) -> None:
        if block.volume is not None:
            self.volume_activated.emit(block.volume)

    def _row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        volume = self.model.node(current).payload if current.isValid() else None  # the dict itself, not a copy
        if isinstance(volume, dict):
            self.layout_view.select_volume(volume)
            self.volume_selected.emit(volume)
