"""Allocation: where the guest's data lies (``deep.map``) and what fills the file (``deep.file_map``),
after a Deep check the user asks for per image (the image is inspected again with ``deep``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ..render.sizes import human_size
from ..render.textsafe import printable
from .allocation_strip import FILE_KINDS, MAP_KINDS, Legend, Run, RunStrip, file_runs, map_runs
from .load_bar import LoadBar
from .page_state import PageState
from .qtmodels.image_list_model import Entry
from .widgets import plain_label

CHECKING = "Reading every mapping and metadata table in a sandboxed process…"
NOT_RUN = "Deep check: read every mapping and metadata table of this image (on demand; it may take a while)."
NO_DEEP = "Deep check unavailable: this engine did not return a deep report (deep inspection is not built in yet)."
COUNTERS = (
    "allocated-clusters",
    "total-clusters",
    "compressed-clusters",
    "fragmented-clusters",
    "leaks",
    "corruptions",
)


def deep_message(report: dict[str, Any] | None, asked: bool) -> str:
    """What the page says above the strips: why there are none, or the deep report's summary."""
    if not report:
        return "Select an inspected image."
    if report.get("verdict") == "failed":
        return f"The image could not be inspected: {printable(report.get('error') or '', 300)}"
    deep = report.get("deep")
    if not isinstance(deep, dict):
        return NO_DEEP if asked else NOT_RUN
    if "unavailable" in deep:
        return f"Deep check unavailable: {printable(deep['unavailable'], 300)}"
    found = deep.get("check")
    check: dict[str, Any] = found if isinstance(found, dict) else {}
    counters = ", ".join(f"{name} {check[name]}" for name in COUNTERS if isinstance(check.get(name), int))
    allocated = deep.get("allocated_virtual")
    parts = [f"guest data actually allocated: {human_size(allocated)}" if isinstance(allocated, int) else ""]
    parts += [counters, "" if deep.get("complete", True) else "incomplete: the budget or a cap stopped the walk"]
    return "; ".join(part for part in parts if part)


class AllocationPage(QWidget):
    deep_requested = Signal(object)  # Entry: inspect it again with the deep check
    cancel_requested = Signal(object)  # Entry
    offset_selected = Signal(int)  # a run clicked: the file offset whose field and bytes to show

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry: Entry | None = None
        self.bar = LoadBar("Deep check", "&Deep Check")
        self.guest_strip = RunStrip("Guest address space", MAP_KINDS)
        self.file_strip = RunStrip("File", FILE_KINDS)
        self.guest_caption = plain_label("Guest address space (deep.map)")
        self.file_caption = plain_label("File (deep.file_map)")
        self.strips = QWidget()
        strips = QVBoxLayout(self.strips)
        strips.setContentsMargins(0, 0, 0, 0)
        for widget in (self.guest_caption, self.guest_strip, Legend(MAP_KINDS), self.file_caption, self.file_strip):
            strips.addWidget(widget)
        strips.addWidget(Legend(FILE_KINDS))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.strips)
        layout.addStretch(1)
        self.bar.requested.connect(lambda: self.entry is not None and self.deep_requested.emit(self.entry))
        self.bar.cancelled.connect(lambda: self.entry is not None and self.cancel_requested.emit(self.entry))
        self.guest_strip.run_clicked.connect(self._clicked)
        self.file_strip.run_clicked.connect(self._clicked)

    def show_state(self, state: PageState) -> None:
        self.entry = state.entry if state.entry is not None and not state.entry.audit else None
        report = state.report if self.entry is not None else None
        asked = self.entry is not None and "deep" in self.entry.extras
        self.show_deep(report, asked)
        loading = state.loading == "deep"
        can = report is not None and report.get("verdict") != "failed" and not state.link
        message = CHECKING if loading else deep_message(report, asked)
        self.bar.show_status(message, busy=loading, can_request=can, progress=state.progress)

    def show_deep(self, report: dict[str, Any] | None, asked: bool = True) -> None:
        """Draw ``report['deep']`` (a hand-made one in tests) and say what it holds."""
        deep = (report or {}).get("deep")
        shown = isinstance(deep, dict) and "unavailable" not in deep
        self.strips.setVisible(shown)
        if isinstance(deep, dict) and shown:
            size = (report or {}).get("virtual_size")
            file_size = (report or {}).get("file_size")
            self.guest_strip.set_runs(map_runs(deep.get("map") or []), size if isinstance(size, int) else 0)
            self.file_strip.set_runs(
                file_runs(deep.get("file_map") or []), file_size if isinstance(file_size, int) else 0
            )
        self.bar.show_status(deep_message(report, asked), busy=False, can_request=report is not None)

    def _clicked(self, run: Run) -> None:
        if run.file_offset is not None:
            self.offset_selected.emit(run.file_offset)
