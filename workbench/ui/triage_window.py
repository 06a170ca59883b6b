"""The triage table: a folder (or many files) inspected as a batch, one summary row per file.

The main window opens one when a drop or File > Open names a folder or more than
:data:`~workbench.ui.main_window.TRIAGE_THRESHOLD` files. The batch runs like ``workbench triage``:
:func:`workbench.triage.run.run` keeps at most ``jobs`` sandboxed children in flight, forked by one fork server
(:func:`workbench.triage.run.engine_pool`), and leaves out the bytes the hex view needs. Each report becomes a
row of the table and goes to a spool file (for export); activating a row asks the main window to inspect
that file again, with its bytes, and to show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from .. import inspector
from ..host.runner import FRESH
from ..policy.policy import Policy
from ..render.text import summary_counts
from ..render.textsafe import printable
from ..triage import run as triage
from ..triage.outputs import KINDS
from ..triage.spool import Spool, write_export
from ..triage.walk import Entry, walk
from .finding_groups import FindingGroups
from .icons import all_icons, icon
from .qtmodels.triage_model import (
    HEADERS,
    PATH_ROLE,
    TOP,
    VERDICT,
    VERDICTS,
    Row,
    TriageFilterProxy,
    TriageModel,
)
from .row_actions import copy_text, menu, reveal_in_folder, tsv
from .widgets import NoticeBar, plain_label, read_only_rows

if TYPE_CHECKING:
    from .session import InspectFn

log = logging.getLogger(__name__)
MAX_FILES = 100_000
EXPORT_FILTERS = "HTML page (*.html);;CSV (*.csv);;JSON (*.json);;JSON Lines (*.jsonl)"
COLUMN_CHARS = (34, 8, 8, 12, 10, 10, 10)  # File ... Encryption; Top finding takes the rest
SHORTCUTS = (  # text, keys, slot: the window's actions, also listed by Help > Keyboard Shortcuts
    ("Export the rows shown", "Ctrl+E", "export"),
    ("Copy the selected rows as TSV", "Ctrl+C", "copy"),
    ("Search", "Ctrl+F", "search"),
    ("Close the table", "Ctrl+W", "close"),
    ("Dismiss the notices", "Escape", "dismiss"),
)
OTHER_KEYS: tuple[tuple[str, str], ...] = (
    ("Filter by verdict, by format", "Alt+V, Alt+O"),
    ("Group by finding", "Alt+G"),
)
OTHER_KEYS += (("Cancel", "Alt+C"), ("Open the selected file in the main window", "Enter"))
FLUSH_MS = 200  # arrived rows join the table, and the progress and rate are shown, at most this often


def _walk(paths: list[str]) -> tuple[list[Entry], bool, str]:
    """The files to inspect, whether the walk stopped at :data:`MAX_FILES`, and the folder the rows are named
    from (the common folder of the paths given). Blocking: run it in a thread."""
    entries = list(itertools.islice(walk(paths), MAX_FILES + 1))
    folders = [
        p if os.path.isdir(p) and not os.path.islink(p) else os.path.dirname(p) for p in map(os.path.abspath, paths)
    ]
    try:
        base = os.path.commonpath(folders) if folders else ""
    except ValueError:
        base = ""
    return entries[:MAX_FILES], len(entries) > MAX_FILES, base


def _table_view(model: TriageFilterProxy) -> QTableView:
    """A flat table: unlike a tree view, it does no per-row layout work when rows are inserted."""
    view = QTableView()
    read_only_rows(view, "Triage results", model)
    view.setSortingEnabled(True)
    view.setShowGrid(False)
    view.setWordWrap(False)
    rows = view.verticalHeader()
    rows.hide()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(view.fontMetrics().height() + 6)
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(TOP, QHeaderView.ResizeMode.Stretch)
    return view


class ElideRight(QStyledItemDelegate):
    """Cuts the end of a cell (the view cuts the middle, which suits file names, not sentences)."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:  # noqa: N802
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


def export_kind(path: str, chosen_filter: str = "") -> tuple[str, str]:
    """``(path with a suffix, writer kind)`` from the file's suffix, else from the chosen dialog filter."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in KINDS:
        return path, suffix
    if suffix:
        raise ValueError(f"unknown export type .{suffix}: use .html, .csv, .json or .jsonl")
    kind = chosen_filter.rsplit("*.", 1)[-1].rstrip(")") if "*." in chosen_filter else "html"
    return f"{path}.{kind}", kind


class TriageWindow(QMainWindow):
    open_requested = Signal(str)  # the path of an activated row
    finished = Signal()  # the batch ended: done, cancelled or failed
    closed = Signal(object)  # this window

    def __init__(
        self,
        paths: list[str],
        policy: Policy,
        jobs: int,
        inspect_fn: InspectFn | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.paths = list(paths)
        self.policy = policy
        self.jobs = max(1, jobs)
        self.inspect_fn = inspect_fn  # None: real engine children, forked by a fork server
        self.timeout = 20.0
        self.model = TriageModel(self)
        self.model.icons = all_icons()
        self.proxy = TriageFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.spool = Spool()
        self.counts: Counter[str] = Counter()
        self._arrived: list[Row] = []  # rows not yet in the table (see _flush)
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self.total: int | None = None
        self.base = ""  # rows name their files relative to this folder
        self.started = self.ended = 0.0
        self.state = "listing"  # listing, running, done, cancelled, failed
        self.task: asyncio.Task[None] | None = None
        self._exports: set[asyncio.Task[int]] = set()
        self._closed = False
        names = ", ".join(printable(Path(p).name or p, 80) for p in self.paths[:3])
        self.setWindowTitle(f"Triage: {names}{' …' if len(self.paths) > 3 else ''} — Disk Image Workbench")
        self.setWindowIcon(icon("workbench"))
        self.resize(1280, 720)
        self._build()

    def _build(self) -> None:
        self.notices = NoticeBar()
        self.verdict_box = QComboBox()
        self.verdict_box.setAccessibleName("Filter by verdict")
        self.verdict_box.addItem("All verdicts", None)
        for verdict in VERDICTS:
            self.verdict_box.addItem(verdict, verdict)
        self.format_box = QComboBox()
        self.format_box.setAccessibleName("Filter by format")
        self.format_box.addItem("All formats", None)
        self.format_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search: file name, finding id or reference (Ctrl+F)")
        self.search.setAccessibleName("Search the triage table")
        self.search.setClearButtonEnabled(True)
        self.group_box = QCheckBox("&Group by finding")
        self.groups = FindingGroups()
        self.groups.hide()
        self.shown = plain_label()
        self.shown.setAccessibleName("Rows shown")
        self.view = _table_view(self.proxy)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.sortByColumn(VERDICT, Qt.SortOrder.DescendingOrder)  # worst first
        header = self.view.horizontalHeader()
        width = self.view.fontMetrics().horizontalAdvance("0")
        for column, chars in enumerate(COLUMN_CHARS):
            header.resizeSection(column, chars * width + 16)
        self.view.setItemDelegateForColumn(TOP, ElideRight(self.view))
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Triage progress")
        self.progress.setRange(0, 0)  # busy until the files are listed
        self.status = plain_label()
        self.status.setAccessibleName("Triage status")
        self.cancel_button = QPushButton("&Cancel")
        self.export_button = QPushButton("E&xport…")

        filters = QHBoxLayout()
        for text, box in (("&Verdict:", self.verdict_box), ("F&ormat:", self.format_box)):
            label = QLabel(text)
            label.setBuddy(box)
            filters.addWidget(label)
            filters.addWidget(box)
        filters.addWidget(self.search, 1)
        filters.addWidget(self.group_box)
        filters.addWidget(self.shown)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.groups)
        split.addWidget(self.view)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 1000])
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.status, 2)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.export_button)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.notices)
        layout.addLayout(filters)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)
        self.setCentralWidget(central)

        slots: dict[str, Callable[[], object]] = {
            "export": self.export_dialog,
            "copy": self.copy_rows,
            "search": self.search.setFocus,
        }
        slots.update({"close": self.close, "dismiss": self.notices.dismiss})
        for text, shortcut, name in SHORTCUTS:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(lambda checked=False, s=slots[name]: s())
            self.addAction(action)
        self.verdict_box.currentIndexChanged.connect(self._filter_changed)
        self.format_box.currentIndexChanged.connect(self._filter_changed)
        self.search.textChanged.connect(self._filter_changed)
        self.groups.chosen.connect(self._filter_changed)
        self.group_box.toggled.connect(self._group)
        self.view.customContextMenuRequested.connect(lambda pos: self.row_menu().exec(self.view.mapToGlobal(pos)))
        self.model.format_seen.connect(self._add_format)
        self.view.activated.connect(self._activated)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self.export_dialog)
        proxy = self.proxy
        for signal in (proxy.rowsInserted, proxy.rowsRemoved, proxy.modelReset, proxy.layoutChanged):
            signal.connect(self._update_shown)
        self._update_shown()
        self._update_status()

    # the batch
    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())
        self.task.add_done_callback(self._ended)

    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def cancel(self) -> None:
        """Stop the batch: the engine children in flight are killed, the rows so far stay."""
        if self.running():
            assert self.task is not None
            self.task.cancel()

    async def _run(self) -> None:
        entries, cut, self.base = await asyncio.to_thread(_walk, self.paths)
        if cut:
            self.notify(f"Only the first {MAX_FILES} files are triaged.")
        if not entries:
            self.notify("No files found to triage.")
        self.total, self.state, self.started = len(entries), "running", time.monotonic()
        self.progress.setRange(0, max(1, self.total))
        self._update_status()
        self._flush_timer.start()  # rows join in batches, appended; the table is sorted again when the batch ends
        async with contextlib.AsyncExitStack() as stack:
            inspect_one = self.inspect_fn
            if inspect_one is None:
                pool = await stack.enter_async_context(triage.engine_pool(self.policy.required_layers, self.notify))
                inspect_one = functools.partial(inspector.inspect, runner=pool or FRESH)

            def make_request(path: str) -> inspector.Request:
                return inspector.Request(path, None, False, self.policy, self.timeout, include_bytes=False)

            results = triage.run(entries, make_request, self.jobs, inspect_one)
            try:
                async for report in results:
                    self.add_report(report)
            finally:
                await results.aclose()

    def add_report(self, report: dict[str, Any]) -> None:
        """One more row, summarised for the table (which it joins at the next :meth:`_flush`); the full
        report is spooled to disk."""
        self._arrived.append(Row.of(report, self.spool.add(report), self.base))

    def _flush(self) -> None:
        """Insert the rows that arrived since the last call, then show the progress: one repaint per batch."""
        rows, self._arrived = self._arrived, []
        self.model.add(rows)
        self.counts.update(row.summary["verdict"] for row in rows)
        if rows:
            self.groups.set_counts(self.model.finding_counts, len(self.model.rows))
        self.progress.setValue(len(self.model.rows))
        self._update_status()

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.ended = time.monotonic()
        self._flush_timer.stop()
        self._flush()
        self.model.sort(*self.model.sorting)
        if task.cancelled():
            self.state = "cancelled"
        elif (exc := task.exception()) is not None:
            self.state = "failed"
            log.error("triage stopped", exc_info=exc)
            self.notify(f"Triage stopped: {printable(exc, 300)}")
        else:
            self.state = "done"
            self.progress.setValue(self.progress.maximum())
        self.cancel_button.setEnabled(False)
        self._update_status()
        self.finished.emit()
        self._delete_when_idle()

    def rate(self) -> float:
        """Files per second since the inspections started."""
        elapsed = (self.ended if self.ended else time.monotonic()) - self.started
        done = len(self.model.rows)
        return done / elapsed if self.started and elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds until the batch ends at the rate so far (``None`` when not running or no rate yet)."""
        rate = self.rate()
        if self.state != "running" or self.total is None or rate <= 0:
            return None
        return max(0, self.total - len(self.model.rows)) / rate

    def _update_status(self) -> None:
        done = len(self.model.rows)
        elapsed = (self.ended or time.monotonic()) - self.started if self.started else 0.0
        eta = self.eta()
        left = f", about {eta:.0f} s left" if eta is not None else ""
        of = f"{done} of {self.total if self.total is not None else '?'} files"
        head = {
            "listing": "listing files…",
            "running": of + left,
            "done": f"{done} files in {elapsed:.1f} s",
            "cancelled": f"cancelled after {of}",
            "failed": f"stopped after {of}",
        }[self.state]
        self.status.setText(f"{head} · {self.rate():.1f} files/s · {summary_counts(self.counts)}")

    # the table
    def _filter_changed(self) -> None:
        item = self.groups.currentItem() if self.group_box.isChecked() else None
        finding = item.data(Qt.ItemDataRole.UserRole) if item else None
        verdict, fmt = self.verdict_box.currentData(), self.format_box.currentData()
        self.proxy.set_filter(verdict, fmt, finding, self.search.text())

    def _group(self, on: bool) -> None:
        self.groups.setVisible(on)
        self.groups.set_counts(self.model.finding_counts, len(self.model.rows))
        self._filter_changed()

    def selected_rows(self) -> list[Row]:
        """The selected rows in the order shown."""
        numbers = sorted(index.row() for index in self.view.selectionModel().selectedRows())
        return [self.model.rows[self.proxy.mapToSource(self.proxy.index(n, 0)).row()] for n in numbers]

    def copy_rows(self) -> None:
        rows = self.selected_rows()
        if rows:
            copy_text(tsv(HEADERS, [row.cells for row in rows]), self.statusBar(), f"{len(rows)} rows as TSV")

    def _open_in_window(self, paths: list[str]) -> None:
        for path in paths:
            self.open_requested.emit(path)

    def row_menu(self) -> QMenu:
        """The context menu for the selected rows."""
        rows = self.selected_rows()
        paths = [row.summary["path"] for row in rows]
        built = menu(
            self,
            [
                ("&Open in Window", lambda: self._open_in_window(paths[:20])),
                ("Copy &Path", lambda: copy_text("\n".join(paths), self.statusBar(), f"{len(paths)} paths")),
                ("Copy Rows as &TSV", self.copy_rows),
                None,
                ("&Reveal in Folder", lambda: reveal_in_folder(paths[0])),
            ],
        )
        built.setEnabled(bool(rows))
        return built

    def _add_format(self, fmt: str) -> None:
        position = 1
        while position < self.format_box.count() and self.format_box.itemText(position) < fmt:
            position += 1
        self.format_box.insertItem(position, fmt, fmt)

    def _update_shown(self) -> None:
        self.shown.setText(f"showing {self.proxy.rowCount()} of {self.model.rowCount()}")

    def _activated(self, index: QModelIndex) -> None:
        path = index.data(PATH_ROLE)
        if path:
            self.open_requested.emit(path)

    # export
    def export_dialog(self) -> None:
        if not self.proxy.rowCount():
            self.notify("Nothing to export: no row is shown.")
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Export the triage table", "triage.html", EXPORT_FILTERS)
        if path:
            self._start_export(path, chosen)

    def _start_export(self, path: str, chosen: str = "") -> asyncio.Task[int]:
        task = asyncio.ensure_future(self.export(path, chosen))
        self._exports.add(task)
        task.add_done_callback(self._export_ended)
        return task

    async def export(self, path: str, chosen: str = "") -> int:
        """Write the rows shown (filtered, in their order) with the ``workbench triage`` writers, in a thread."""
        path, kind = export_kind(path, chosen)
        rows = [(row.spooled, row.summary) for row in self.proxy.rows()]
        count = await asyncio.to_thread(write_export, self.spool, rows, kind, path)
        self.statusBar().showMessage(f"Exported {count} rows to {printable(path, 300)}", 5000)
        return count

    def _export_ended(self, task: asyncio.Task[int]) -> None:
        self._exports.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.notify(f"Export failed: {printable(exc, 300)}")
        self._delete_when_idle()

    # messages and closing
    def notify(self, message: str) -> None:
        log.warning("%s", message)
        self.notices.notify(message)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self._closed = True
        self.cancel()
        self.spool.close()  # an export under way keeps it open until it is done
        self.closed.emit(self)
        super().closeEvent(event)
        self._delete_when_idle()

    def _delete_when_idle(self) -> None:
        if self._closed and not self.running() and not self._exports:
            self.deleteLater()
