"""The main window: opened images on the left, the selected image's report on the right.

Images arrive by drag and drop, File > Open, recent files, the command line or the demonstration set;
each is inspected by a sandboxed engine child (:class:`~workbench.ui.session.Session`). The window
never reads image bytes: the bytes pane shows the regions the engine sent in its report.

A folder, or more than :data:`TRIAGE_THRESHOLD` files at once, opens a triage table instead
(:class:`~workbench.ui.triage_window.TriageWindow`); libvirt configuration files (by extension) are
audited in a worker thread and listed with the images.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QEvent, QItemSelectionModel, QMimeData, QModelIndex, QObject, Qt
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..host.urls import is_remote
from ..policy import settings as settings_mod
from ..render.text import summary
from ..render.textsafe import printable
from ..schema import VERDICTS_SHOWN
from . import context_menus, drops, export_actions, settings_apply, theme
from .allocation_page import AllocationPage
from .audit_page import AuditPage
from .chain_page import ChainPage
from .fields_page import FieldsPage
from .findings_page import FindingsPage
from .first_paint import FirstPaint
from .guest_page import GuestPage
from .icons import all_icons, icon
from .image_list import fill_declared_box, fit_list_columns, image_list_view
from .overview import OverviewPage
from .page_state import PageState, ReportPage
from .qtmodels.guest_model import volume_field
from .qtmodels.image_list_model import DECLARED, Entry, ImageListModel, file_name
from .qtmodels.node_model import tooltip
from .references_page import ReferencesPage
from .report_header import ReportHeader
from .row_actions import copy_text
from .security_page import SecurityPage
from .session import IdleCollector, Session
from .widgets import NoticeBar, plain_label

if TYPE_CHECKING:  # the dialogs, the triage table, the audit and the demo load when first used
    from .session import InspectFn
    from .shortcuts_dialog import ShortcutsDialog
    from .triage_window import TriageWindow

log = logging.getLogger(__name__)
TITLE = "Disk Image Workbench"
TRIAGE_THRESHOLD = 20  # more files than this in one drop or Open go to a triage table, as any folder does
AUDIT_EXTENSIONS = {".xml": "domain-xml", ".conf": "qemu-conf"}  # told by name: the window reads no file to decide
EMPTY_TEXT = (
    "Drop disk images or folders here\n\n"
    "or use File ▸ Open (Ctrl+O) and File ▸ Open Folder (Ctrl+Shift+O).\n"
    f"A folder or more than {TRIAGE_THRESHOLD} files open a triage table.\n"
    "libvirt domain XML (.xml) and qemu.conf (.conf) files are audited.\n"
    "Help ▸ Open Demonstration Images shows what the workbench finds.\n\n"
    "Images are inspected in a sandboxed process; nothing they name is ever opened."
)
TABS = (  # page attribute, tab label, tooltip (the whole name)
    ("overview", "&Overview", "Overview"),
    ("fields", "Fie&lds", "Header fields and their bytes"),
    ("references", "&References", "External references"),
    ("findings", "Fi&ndings", "Findings"),
    ("security", "&Security", "Encryption and sandbox"),
    ("chain", "&Chain", "Backing chain"),
    ("guest", "&Guest", "Guest disk: partitions, volumes, filesystems (read on demand)"),
    ("allocation", "&Allocation", "Allocation: where the data lies (Deep check, on demand)"),
)
WIDE = 1280  # pixels of window width from which the image list shows its Declared column
VERDICT_ORDER = (*VERDICTS_SHOWN, "pending")  # "pending": not inspected yet


def _shown_verdict(entry: Entry) -> str:
    """The badge of an entry: its verdict once inspected, ``pending`` until then."""
    return entry.verdict if entry.state == "done" else "pending"


def audit_kind(path: str) -> str | None:
    """The audit kind of a libvirt configuration file, by its extension; ``None`` for anything else."""
    kind = AUDIT_EXTENSIONS.get(os.path.splitext(path)[1].lower())
    return kind if kind and not os.path.isdir(path) else None


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: settings_mod.Settings | None = None,
        inspect_fn: InspectFn | None = None,
        jobs: int | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or settings_mod.load()
        self.inspect_fn = inspect_fn  # None: sandboxed engine children; tests pass an in-process stand-in
        self.icons = all_icons()
        self.model = ImageListModel(self)
        self.model.icons = self.icons
        self.session = Session(self.model, self.settings.policy, inspect_fn, jobs, self)
        self.session.roots = lambda: list(self.settings.allowed_roots)
        self.collector = IdleCollector(self.session.busy, self)
        self.current: Entry | None = None
        self.link: dict[str, Any] | None = None  # a backing chain link shown instead of the current report
        self.triages: list[TriageWindow] = []
        self._demo_dir: tempfile.TemporaryDirectory[str] | None = None
        self._stale: set[QWidget] = set()
        self.setWindowTitle(TITLE)
        self.setWindowIcon(icon("workbench"))
        self.setAcceptDrops(True)
        self.resize(1360, 820)
        self._build_widgets()
        self._build_actions()
        self._connect()
        self._show_entry(None)
        self.first_paint = FirstPaint(self)  # start-up timing and the start of the event loop wait for it

    # construction
    def _build_widgets(self) -> None:
        self.notices = NoticeBar()
        self.empty = plain_label(EMPTY_TEXT, wrap=True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setAccessibleName("Empty window: drop images here")
        font = self.empty.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.empty.setFont(font)
        self.list_view = image_list_view(self.model)
        self.header = ReportHeader()
        self.badge, self.title = self.header.badge, self.header.title
        self.declared_box, self.declared_label = self.header.declared_box, self.header.declared_label
        self.reinspect_button = self.header.reinspect_button
        self.overview = OverviewPage()
        self.fields = FieldsPage()
        self.references = ReferencesPage()
        self.findings = FindingsPage()
        self.security = SecurityPage()
        self.chain = ChainPage()
        self.guest = GuestPage()
        self.allocation = AllocationPage()
        self.audit = AuditPage()
        tabs: tuple[ReportPage, ...] = (self.overview, self.fields, self.references, self.findings, self.security)
        tabs += (self.chain, self.guest, self.allocation)
        self._report_pages = {cast(QWidget, page): page for page in tabs}  # each tab filled from one PageState
        self.fields.filter.setAcceptDrops(False)
        self.findings.detail.setAcceptDrops(False)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Report")
        bar = self.tabs.tabBar()
        bar.setUsesScrollButtons(False)  # every tab stays in sight: narrow windows elide the labels instead
        bar.setElideMode(Qt.TextElideMode.ElideRight)
        for page, label, whole in TABS:
            self.tabs.setTabToolTip(self.tabs.addTab(getattr(self, page), label), whole)
        self.report_stack = QStackedWidget()
        self.report_stack.addWidget(self.tabs)
        self.report_stack.addWidget(self.audit)

        self.details = details = QWidget()
        details.installEventFilter(self)
        details_layout = QVBoxLayout(details)
        details_layout.setContentsMargins(6, 0, 0, 0)
        details_layout.addWidget(self.header)
        details_layout.addWidget(self.report_stack, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.list_view)
        self.split.addWidget(details)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 5)
        self.split.setChildrenCollapsible(False)
        self.split.setSizes([500, 780])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.split)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.notices)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.status_field = plain_label()
        self.status_field.setAccessibleName("Selected field offset and size")
        self.status_cursor = plain_label()
        self.status_cursor.setAccessibleName("Bytes cursor offset and selection")
        self.statusBar().addPermanentWidget(self.status_cursor)
        self.status_progress = plain_label()
        self.status_progress.setAccessibleName("Inspection progress")
        self.statusBar().addPermanentWidget(self.status_field)
        self.statusBar().addPermanentWidget(self.status_progress)

    def _action(
        self, menu: QMenu, text: str, slot: Callable[..., Any], shortcut: QKeySequence | str | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda checked=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open…", self.open_dialog, "Ctrl+O")
        self._action(file_menu, "Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self._action(file_menu, "Open &URL…", self.open_url_dialog, "Ctrl+Shift+U")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self._action(file_menu, "&Export Selected Reports…", self.export_dialog, "Ctrl+E")
        self._action(file_menu, "Re&move Selected Images", self.remove_selected, "Del")
        self._action(file_menu, "&Close All Images", self.clear, "Ctrl+Shift+W")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")

        edit = bar.addMenu("&Edit")
        self._action(edit, "Copy Field &Value", self.copy_value, "Ctrl+Shift+C")
        self._action(edit, "Copy Field &Bytes (hex)", self.copy_bytes, "Ctrl+Shift+B")
        self._action(edit, "Copy &Summary for a Ticket", self.copy_summary, "Ctrl+Alt+C")
        edit.addSeparator()
        self._action(edit, "&Filter Fields", self.focus_filter, "Ctrl+F")
        self._action(edit, "Find in &Bytes…", self.find_in_bytes, "Ctrl+Shift+F")
        self._action(edit, "&Go to Offset…", self.go_to_offset, "Ctrl+G")
        self._action(edit, "&Settings…", self.settings_dialog, "Ctrl+,")

        view = bar.addMenu("&View")
        for number in range(self.tabs.count()):
            label = TABS[number][2]
            self._action(view, label, lambda n=number: self.tabs.setCurrentIndex(n), f"Ctrl+{number + 1}")
        view.addSeparator()
        self._action(view, "&Expand All Fields", self.fields.tree.expandAll, "Ctrl+Shift+E")
        self._action(view, "Co&llapse All Fields", self.fields.tree.collapseAll, "Ctrl+Shift+L")
        theme_menu = view.addMenu("&Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for number, choice in enumerate(theme.CHOICES):
            action = self._action(theme_menu, choice.title(), lambda c=choice: self.set_theme(c), f"Ctrl+Alt+{number}")
            action.setCheckable(True)
            group.addAction(action)
            self.theme_actions[choice] = action
        self.theme_actions[self.settings.theme].setChecked(True)

        image = bar.addMenu("&Image")
        self._action(image, "Inspect &Again", self.reinspect, "F5")
        self._action(image, "Change &Declared Format", self.focus_declared, "F2")
        self._action(image, "Inspect Symbolic Link &Target", self.follow_link, "Ctrl+Shift+F5")
        self._action(image, "&Follow Chain", self.follow_chain, "Ctrl+B")
        self._action(image, "Deep Chec&k", self.deep_check, "Ctrl+K")
        self._action(image, "&Next Image", lambda: self._step(1), "Ctrl+PgDown")
        self._action(image, "&Previous Image", lambda: self._step(-1), "Ctrl+PgUp")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Open &Demonstration Images", self.open_demo, "Ctrl+Shift+D")
        self._action(help_menu, "&Keyboard Shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "&About", self.show_about, "Shift+F1")
        self._action(help_menu, "Dismiss &Notices", self.notices.dismiss, "Escape")

    def _connect(self) -> None:
        self.list_view.selectionModel().currentRowChanged.connect(self._current_changed)
        self.model.declared_changed.connect(lambda entry: self.session.submit([entry]))
        self.model.rowsInserted.connect(self._update_stack)
        self.model.rowsRemoved.connect(self._update_stack)
        self.model.rowsRemoved.connect(self._show_counts)
        self.model.modelReset.connect(self._show_counts)
        self.session.finished.connect(self._finished)
        self.session.chain_done.connect(self._finished)
        self.session.failed.connect(self.notify)
        self.session.progress.connect(self._progress)
        self.session.notice.connect(lambda message: self.statusBar().showMessage(message, 15000))
        self.declared_box.activated.connect(self._declared_chosen)
        self.reinspect_button.clicked.connect(self.reinspect)
        self.tabs.currentChanged.connect(self._refresh_page)
        self.fields.field_selected.connect(self._field_selected)
        self.fields.pane.status.connect(self.status_cursor.setText)
        self.fields.pane.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        context_menus.install(self)
        self.findings.finding_activated.connect(self.go_to_finding)
        self.overview.finding_activated.connect(self.show_finding)
        self.references.reference_activated.connect(self.go_to_reference)
        self.chain.follow_requested.connect(self.follow_chain)
        self.chain.link_selected.connect(self._show_link)
        self.chain.link_activated.connect(lambda link: self.tabs.setCurrentWidget(self.overview))
        self.session.extending.connect(self._finished)
        self.session.load_progress.connect(self._load_progress)
        self.guest.load_requested.connect(self.read_guest)
        self.guest.cancel_requested.connect(self.session.cancel_extend)
        self.guest.volume_selected.connect(self.select_volume)
        self.guest.volume_activated.connect(lambda volume: self.select_volume(volume, show=True))
        self.allocation.deep_requested.connect(self.deep_check)
        self.allocation.cancel_requested.connect(self.session.cancel_extend)
        self.allocation.offset_selected.connect(self.select_file_offset)
        hints = QGuiApplication.styleHints()
        hints.colorSchemeChanged.connect(self._system_scheme_changed)

    # opening images
    def open_paths(self, paths: list[str], remember: bool = True) -> None:
        """Open what the user named: configuration files are audited; a folder or more than
        :data:`TRIAGE_THRESHOLD` files open a triage table; other files are inspected here.
        """
        for message in filter(None, map(drops.refused_name, paths)):
            self.notify(message)
        paths = [path for path in paths if not drops.refused_name(path)]
        if remember and paths:
            for path in paths:
                self.settings.remember(os.path.abspath(path))
            self._save_settings()
        kinds = {path: audit_kind(path) for path in paths}
        audits = [path for path in paths if kinds[path]]
        images = [path for path in paths if not kinds[path]]
        if audits:
            self.add_audits(audits)
        if any(os.path.isdir(p) and not os.path.islink(p) for p in images) or len(images) > TRIAGE_THRESHOLD:
            self.open_triage(images)
        elif images:
            self.add_files(images)

    def add_files(self, files: list[str], declared: dict[str, str] | None = None, by: str = "window") -> list[Entry]:
        """New entries for ``files`` (already open ones are selected instead) and start their inspection.

        ``declared`` maps absolute paths to the format declared for them by ``by`` (the demo set).
        """
        declared = declared or {}
        paths = list(dict.fromkeys(os.path.abspath(p) for p in files))
        new = [Entry(p, declared.get(p), by if p in declared else "window") for p in paths if not self.model.find(p)]
        self.model.add(new)
        self.session.submit(new)
        self._select_added(new, paths)
        return new

    def _select_added(self, new: list[Entry], paths: list[str]) -> None:
        """Show the first new entry, or the first named one when all were open already."""
        target = new[0] if new else self.model.find(paths[0]) if paths else None
        if target is not None:
            self.select(target)

    def open_triage(self, paths: list[str]) -> TriageWindow:
        """A triage table for ``paths``; it walks the folders in a worker thread and inspects every file."""
        from .triage_window import TriageWindow

        window = TriageWindow(paths, self.settings.policy(), self.session.jobs, self.inspect_fn, self)
        window.open_requested.connect(self.show_from_triage)
        window.closed.connect(lambda closed: self.triages.remove(closed) if closed in self.triages else None)
        self.triages.append(window)
        window.show()
        self.session.later(window.start)  # held until the event loop runs, when the command line named a folder
        return window

    def show_from_triage(self, path: str) -> None:
        """Show a triaged file here: inspected again with the bytes the triage left out (or selected, if open)."""
        self.add_files([path])
        self.show()  # hidden when the command line named only folders
        self.raise_()
        self.activateWindow()

    def add_audits(self, files: list[str]) -> list[Entry]:
        """List libvirt configuration files with the images and audit each in a worker thread."""
        paths = list(dict.fromkeys(os.path.abspath(p) for p in files))
        new = [Entry(p, audit=audit_kind(p)) for p in paths if not self.model.find(p)]
        self.model.add(new)
        for entry in new:
            self.session.audit(entry)
        self._select_added(new, paths)
        return new

    def handle_drop(self, mime: QMimeData) -> bool:
        """Open what a drop names; remote URLs are refused with a notice."""
        if not mime.hasUrls():
            self.notify("Drop files or folders (from a file manager) to inspect them.")
            return False
        paths, refused = drops.split_urls(mime.urls())
        for message in refused:
            self.notify(message)
        if paths:
            self.open_paths(paths)
        return bool(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        event.setDropAction(Qt.DropAction.CopyAction)  # never a move: the image stays where it is
        event.accept()
        self.handle_drop(event.mimeData())

    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open disk images")
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of disk images")
        if folder:
            self.open_paths([folder])

    def open_url_dialog(self, url: str = "") -> Entry | None:
        """File > Open URL (a recent URL comes back here, redacted: its secret, if any, is typed again)."""
        from .open_url import OpenUrlDialog  # with the remote clients: loaded on first use

        dialog = OpenUrlDialog(self.settings.endpoint_url, url, self)
        try:
            if dialog.exec() != OpenUrlDialog.DialogCode.Accepted:
                return None
            typed, endpoint = dialog.values()
        finally:
            dialog.deleteLater()  # its line edit held the URL as typed
        return self.open_url(typed, endpoint)

    def open_url(self, url: str, endpoint: str = "") -> Entry:
        """Inspect a remote image by ranges; listed, titled, exported and remembered under its redacted URL."""
        from ..host.sources import redact

        shown = redact(url)
        self.settings.remember(shown)
        self.settings.endpoint_url = endpoint
        self._save_settings()
        entry = self.model.find(shown)
        if entry is None:
            entry = Entry(shown)
            self.session.urls[entry] = (url, endpoint or None)
            self.model.add([entry])
            self.session.submit([entry])
        self.select(entry)
        return entry

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(printable(path, 200))
            reopen = self.open_url_dialog if is_remote(path) else lambda p: self.open_paths([p])
            action.triggered.connect(lambda checked=False, p=path, o=reopen: o(p))
        if not self.settings.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def open_demo(self) -> list[Entry]:
        from ..demo import images as demo

        if self._demo_dir is None:
            self._demo_dir = tempfile.TemporaryDirectory(prefix="workbench-demo-")
        folder = Path(self._demo_dir.name)
        # Built before the inspections start: at once, or, while the session is held (the command line's
        # --demo), after the first frame, which lists the set without building it.
        self.session.later(lambda: demo.write_demo(folder))
        declared = {str(image.path): image.declared for image in demo.listed(folder)}
        return self.add_files(list(declared), declared, by="demo")

    # the selected image
    def select(self, entry: Entry) -> None:
        self._select_row(self.model.row_of(entry))

    def _select_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.list_view.selectionModel().setCurrentIndex(self.model.index(row, 0), flags)

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        self._show_entry(self.model.entry(current))

    def _step(self, delta: int) -> None:
        self._select_row(self.list_view.currentIndex().row() + delta)

    def _show_entry(self, entry: Entry | None) -> None:
        self.current = entry
        self.link = None
        audit = entry is not None and entry.audit is not None
        self.declared_box.setEnabled(entry is not None and not audit)
        self.declared_box.setVisible(not audit)
        self.declared_label.setVisible(not audit)
        self.reinspect_button.setEnabled(entry is not None)
        self.report_stack.setCurrentWidget(self.audit if audit else self.tabs)
        if entry is None:
            self.title.setText("")
            self.badge.clear()
            self.declared_box.clear()
            self.setWindowTitle(TITLE)
        else:
            name = self._show_heading(entry.path, _shown_verdict(entry))
            if audit:
                self.declared_box.clear()
                self.audit.show_report(entry.report, entry.state)
            else:
                fill_declared_box(self.declared_box, entry)
            self.setWindowTitle(f"{name} — {TITLE}")
        self.status_field.setText("")
        self._stale = set(self._report_pages)
        self._refresh_page()

    def _show_heading(self, path: str, verdict: str, suffix: str = "") -> str:
        """The header: the file's name (and ``suffix``), its full path as the tooltip, the verdict's badge;
        returns the name shown."""
        name = printable(file_name(path), 200)
        self.title.setText(name + suffix)
        self.title.setToolTip(tooltip(printable(path, 1024)))
        self.badge.setPixmap(self.icons[f"verdict-{verdict}"].pixmap(22, 22))
        self.badge.setToolTip(verdict)
        self.badge.setAccessibleDescription(verdict)
        return name

    def _refresh_page(self) -> None:
        """Fill the visible page from the shown report (the image's, or a chain link's); the others wait."""
        self._fill(self.tabs.currentWidget())

    def _fill(self, page: QWidget) -> None:
        """Fill ``page`` if it is stale (the visible one, or the field tree a Guest or Allocation click selects in)."""
        entry, policy = self.current, self.settings.policy()
        if page not in self._stale or (entry is not None and entry.audit):
            return
        self._stale.discard(page)
        report = self.link or (entry.report if entry else None)
        following = entry is not None and entry in self.session.following
        loading = self.session.loads[entry][0] if entry in self.session.loads else None
        roots = list(self.settings.allowed_roots)
        progress = self.session.fractions.get(entry) if entry is not None else None
        state = PageState(entry, report, self.link is not None, policy, roots, following, loading, progress)
        self._report_pages[page].show_state(state)

    def _show_link(self, link: dict[str, Any] | None) -> None:
        """Show a backing chain link's report in the other pages (``None``: the image's own report again)."""
        entry = self.current
        if entry is None:
            return
        links = (entry.chain or {}).get("chain") or []
        number = next((n for n, item in enumerate(links) if item is link), None)
        self.link = link if number is not None else None
        if link is None or number is None:
            self._show_heading(entry.path, _shown_verdict(entry))
        else:
            self._show_heading(link["path"], link["verdict"], f" (backing chain link {number + 1} of {len(links)})")
        self._stale = set(self._report_pages) - {self.chain}  # a link has no chain of its own to show

    def _finished(self, entry: Entry) -> None:
        if entry is self.current:
            self._show_entry(entry)

    def _load_progress(self, entry: Entry) -> None:
        """The child of the shown image's guest view or deep check said how far it is: only the bar moves."""
        load = self.session.loads.get(entry)
        if entry is self.current and load is not None and self.link is None:
            page = self.guest if load[0] == "guest" else self.allocation
            page.bar.show_progress(self.session.fractions.get(entry))

    def _progress(self, done: int, queued: int) -> None:
        if done < queued:
            self.status_progress.setText(f"inspecting: {done} of {queued} done")
        else:
            self._show_counts()

    def _show_counts(self) -> None:
        """The verdict tally of the listed images (nothing when none is listed)."""
        counts = Counter(entry.verdict for entry in self.model.entries)
        tally = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if counts[v])
        count = self.model.rowCount()
        self.status_progress.setText(f"{count} file{'s' if count != 1 else ''}: {tally}" if count else "")

    def _update_stack(self) -> None:
        self.stack.setCurrentIndex(1 if self.model.rowCount() else 0)

    def _field_selected(self, item: dict[str, Any] | None) -> None:
        if not item:
            self.status_field.setText("")
            return
        self.status_field.setText(
            f"{printable(item['name'], 60)}: offset 0x{item['offset']:x} ({item['offset']}), size {item['size']} bytes"
        )

    # per-image actions
    def reinspect(self) -> None:
        entry = self.current
        if entry is None:
            return
        if entry.audit:
            self.session.audit(entry)
        else:
            self.session.submit([entry])
        self._show_entry(entry)

    def _declared_chosen(self, number: int) -> None:
        if self.current is not None:
            row = self.model.row_of(self.current)
            self.model.setData(self.model.index(row, DECLARED), self.declared_box.itemData(number))
            self._show_entry(self.current)

    def set_declared(self, entry: Entry, fmt: str | None) -> None:
        """Declare ``fmt`` for ``entry`` (``None``: from the extension); inspects it again."""
        self.model.setData(self.model.index(self.model.row_of(entry), DECLARED), fmt or "")

    def focus_declared(self) -> None:
        if self.current is not None:
            self.declared_box.setFocus()
            self.declared_box.showPopup()

    def follow_link(self) -> None:
        """Inspect the target of a dropped symbolic link: only ever on the user's request."""
        entry = self.current
        if entry is None or entry.audit or entry.remote or not os.path.islink(entry.path):
            self.statusBar().showMessage("The selected image is not a symbolic link.", 5000)
            return
        entry.follow_symlinks = True
        self.session.submit([entry])

    def follow_chain(self) -> None:
        """Inspect the selected image's backing chain, link by link, only inside the allowed folders."""
        entry = self.current
        if entry is None or entry.audit:
            self.statusBar().showMessage("Select a disk image to follow its backing chain.", 5000)
            return
        if entry.remote:
            self.statusBar().showMessage("Backing chains are followed on this machine only, not from a URL.", 5000)
            return
        self.tabs.setCurrentWidget(self.chain)
        if entry not in self.session.following:
            self.session.follow(entry)
            self._show_entry(entry)

    def read_guest(self, entry: Entry) -> None:
        """Inspect ``entry`` again with the guest view (the Guest tab asks when it first shows the image)."""
        self.session.extend(entry, "guest", self.settings.guest_budget)

    def deep_check(self, entry: Entry | None = None) -> None:
        """Inspect the image again with the deep check, under the deep budget of the settings."""
        entry = entry or self.current
        if entry is None or entry.audit or entry.report is None:
            self.statusBar().showMessage("Select an inspected disk image for a deep check.", 5000)
            return
        self.tabs.setCurrentWidget(self.allocation)
        self.session.extend(entry, "deep", self.settings.deep_budget)

    def select_volume(self, volume: dict[str, Any], show: bool = False) -> None:
        """A guest volume chosen: its first structure in the field tree and its bytes where they were read."""
        self._fill(self.fields)
        node = volume_field(self.fields.model, volume)
        if node is None:
            self.statusBar().showMessage("No field of this volume was read.", 5000)
            return
        self.fields.select_node(node)
        if show:
            self.tabs.setCurrentWidget(self.fields)

    def select_file_offset(self, offset: int) -> None:
        """An allocation run clicked: the field nearest its file offset, and its bytes."""
        self._fill(self.fields)
        node = self.fields.model.node_near(offset)
        if node is None:
            self.statusBar().showMessage(f"No parsed field near offset 0x{offset:x}.", 5000)
            return
        self.fields.select_node(node)

    def remove_selected(self) -> None:
        rows = [index.row() for index in self.list_view.selectionModel().selectedRows()]
        if not rows:
            return
        self.model.remove(rows)
        if self.model.rowCount():  # the row that took the first removed one's place, selected, not only focused
            self._select_row(min(min(rows), self.model.rowCount() - 1))
            self._show_entry(self.model.entry(self.list_view.currentIndex()))
        else:
            self._show_entry(None)

    def clear(self) -> None:
        self.model.clear()
        self._update_stack()
        self._show_entry(None)

    def go_to_finding(self, finding: dict[str, Any]) -> None:
        offset = finding.get("offset")
        if offset is None:
            self.statusBar().showMessage("This finding is about the whole image, not one field.", 5000)
            return
        self.tabs.setCurrentWidget(self.fields)
        if not self.fields.select_offset(offset):
            self.statusBar().showMessage(f"No parsed field covers offset 0x{offset:x}.", 5000)

    def show_finding(self, finding: dict[str, Any]) -> None:
        """A banner link: the finding's field and bytes when it names an offset, else the finding itself."""
        if finding.get("offset") is not None:
            self.go_to_finding(finding)
            return
        self.tabs.setCurrentWidget(self.findings)
        self.findings.select(finding)

    def go_to_reference(self, ref: dict[str, Any]) -> None:
        node = self.fields.model.node_named_value(ref.get("name", ""))
        if node is None:
            self.statusBar().showMessage("No single field holds this name.", 5000)
            return
        self.tabs.setCurrentWidget(self.fields)
        self.fields.select_node(node)

    def find_in_bytes(self) -> None:
        self.tabs.setCurrentWidget(self.fields)
        self.fields.pane.find_bar.open()

    def go_to_offset(self) -> None:
        self.tabs.setCurrentWidget(self.fields)
        self.fields.pane.go_to_dialog()

    def focus_filter(self) -> None:
        self.tabs.setCurrentWidget(self.fields)
        self.fields.filter.setFocus()
        self.fields.filter.selectAll()

    # clipboard and export
    def copy_value(self) -> None:
        item = self.fields.current_field()
        if item:
            copy_text(printable(item["value"], 4096), self.statusBar(), f"the value of {printable(item['name'], 60)}")

    def copy_bytes(self) -> None:
        data = self.fields.current_bytes()
        if data is None:
            self.statusBar().showMessage("The bytes of this field are not available.", 5000)
            return
        copy_text(data.hex(" "), self.statusBar(), f"{len(data)} bytes as hex")

    def copy_summary(self) -> None:
        entry = self.current
        if entry is None or entry.report is None:
            return
        if entry.audit:
            from ..audit import report as audit_report

            text = audit_report.summary(entry.report, verbose=True)
        else:
            text = summary(self.link or entry.report, verbose=True)
        copy_text(text, self.statusBar(), "the summary for a ticket")

    def selected_reports(self) -> list[dict[str, Any]]:
        rows = sorted(index.row() for index in self.list_view.selectionModel().selectedRows())
        entries = [self.model.entries[row] for row in rows] or ([self.current] if self.current else [])
        return export_actions.reports_of(entries)

    def export_reports(self, path: Path | str, reports: list[dict[str, Any]] | None = None) -> Path:
        chosen = self.selected_reports() if reports is None else reports
        return export_actions.export_reports(chosen, path, self.statusBar())

    def export_dialog(self) -> None:
        export_actions.export_dialog(self, self.selected_reports(), self.statusBar(), self.notify)

    # settings and theme
    def settings_dialog(self) -> None:
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self, self.observed_sandbox())
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def observed_sandbox(self) -> dict[str, str] | None:
        """The sandbox layers this machine gives an engine child: as the session's fork server reported them
        when it started, else as the latest engine child did (``None`` before either)."""
        reports = (e.report for e in reversed(self.model.entries) if e.report and not e.audit)
        latest = next((r["sandbox"] for r in reports if r.get("verdict") != "failed" and r.get("sandbox")), None)
        return self.session.server_sandbox() or latest

    def apply_settings(self, new: settings_mod.Settings) -> None:
        """Use and store ``new`` (:func:`settings_apply.apply` says what is inspected again)."""
        old, self.settings = self.settings, new
        self._save_settings()
        self.set_theme(new.theme)
        settings_apply.apply(old, new, self.session, self.model.entries)
        self._show_entry(self.current)

    def set_theme(self, choice: str) -> str:
        resolved = settings_apply.apply_theme(choice)
        self.theme_actions[choice].setChecked(True)
        if self.settings.theme != choice:
            self.settings.theme = choice
            self._save_settings()
        return resolved

    def _system_scheme_changed(self) -> None:
        if self.settings.theme == "system":
            settings_apply.apply_theme("system")

    def _save_settings(self) -> None:
        settings_apply.save(self.settings, self.notify)

    # messages
    def notify(self, message: str) -> None:
        """Show ``message`` in the notice bar (never modal) and log it."""
        log.warning("%s", message)
        self.notices.notify(message)

    def show_shortcuts(self) -> ShortcutsDialog:
        from .shortcuts_dialog import ShortcutsDialog

        dialog = ShortcutsDialog(self.actions(), self)
        dialog.open()
        return dialog

    def show_about(self) -> None:
        text = (
            f"{TITLE} {__version__}\n\nInspects untrusted virtual disk images in a sandboxed process and shows what "
            "they claim: formats, sizes, external references, encryption, and findings that follow "
            "libvirt's Secure Usage of Libvirt guidance."
        )
        box = QMessageBox(QMessageBox.Icon.Information, "About", text, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.open()

    def busy(self) -> bool:
        """Whether anything asked for is under way: inspections, audits, chains, triage tables."""
        return self.session.busy() or self.session.working() or any(window.running() for window in self.triages)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.details and event.type() == QEvent.Type.Resize:
            self.header.fit(self.details.width())
        return super().eventFilter(watched, event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """A window narrower than :data:`WIDE` hides the list's Declared column (the header's box and each
        row's tooltip still say it), leaving the room to the report."""
        super().resizeEvent(event)
        hide = self.width() < WIDE
        if self.list_view.isColumnHidden(DECLARED) != hide:
            self.list_view.setColumnHidden(DECLARED, hide)
            fit_list_columns(self.list_view)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        for window in list(self.triages):
            window.close()
        self.session.close()
        self.collector.stop()
        if self._demo_dir is not None:
            self._demo_dir.cleanup()
        super().closeEvent(event)
