"""The opened images: verdict badge, name, detected format, declared format (editable), logical size.

Audited libvirt configuration files (domain XML, qemu.conf) are entries too, with ``audit`` set to their kind.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from ...host.urls import is_remote
from ...policy.formats import format_from_extension
from ...render.sizes import human_size
from ...render.textsafe import printable
from .node_model import tooltip
from .property_model import AUDIT_KINDS, DECLARED_SOURCES

HEADERS = ["Image", "Verdict", "Format", "Declared", "Logical size"]
NAME, VERDICT, FORMAT, DECLARED, SIZE = range(5)
SHORT_SOURCES = {"extension": "extension", "window": "chosen", "demo": "demo set", "none": "probed"}
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 2
FROM_EXTENSION = ""  # the edit value that means "use the extension again"
Index = QModelIndex | QPersistentModelIndex


def file_name(path: str) -> str:
    """The name of an image's file: a path's last part, a URL's path's last part (without its query)."""
    if not is_remote(path):
        return os.path.basename(path)
    from ...host.remote import url_file_name  # the remote clients load with the first URL, not with the window

    return os.path.basename(url_file_name(path))


@dataclass(eq=False)
class Entry:
    """One opened image; ``declared`` is the user's choice, ``None`` meaning "from the extension".

    ``audit`` is set (to an audit kind) for a configuration file, whose ``report`` is then an audit report.
    ``chain`` is the report of :func:`workbench.chain.follow` once the user asked for the backing chain.
    ``extras`` holds what the user asked for on top of the header parse, with its budget: ``guest`` (the Guest
    tab) and ``deep`` (the Deep check); every later inspection of the entry asks for them too.
    A remote image's ``path`` is its redacted URL; the URL itself is only in the session (``Session.urls``).
    """

    path: str
    declared: str | None = None
    declared_by: str = "window"  # who set ``declared``: a key of DECLARED_SOURCES
    follow_symlinks: bool = False
    state: str = "queued"  # queued, running, done
    report: dict[str, Any] | None = None
    generation: int = 0
    audit: str | None = None
    chain: dict[str, Any] | None = None
    extras: dict[str, int] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        """An ``s3://`` or ``http(s)://`` object: no folder to reveal, no local backing chain."""
        return is_remote(self.path)

    @property
    def effective_declared(self) -> str | None:
        return self.declared or format_from_extension(file_name(self.path))

    @property
    def declared_source(self) -> str:
        if self.declared:
            return self.declared_by
        return "extension" if format_from_extension(file_name(self.path)) else "none"

    @property
    def verdict(self) -> str:
        if self.report is None:
            return "pending"
        return self.report.get("verdict", "failed")

    def declared_label(self, short: bool = False) -> str:
        fmt = self.effective_declared
        source = (SHORT_SOURCES if short else DECLARED_SOURCES)[self.declared_source]
        return f"{fmt} ({source})" if fmt else "none (probed)"


class ImageListModel(QAbstractTableModel):
    """A flat list of :class:`Entry`; editing the Declared column asks for a new inspection."""

    declared_changed = Signal(object)  # Entry

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.entries: list[Entry] = []
        self.icons: dict[str, Any] = {}
        self._rows: dict[int, int] = {}  # id(entry) -> row, so a refresh costs O(1) with thousands of images
        self._paths: dict[str, Entry] = {}
        self._names: Counter[str] = Counter()  # file names, to tell same-named files apart by their folder

    def add(self, entries: list[Entry]) -> None:
        if not entries:
            return
        first = len(self.entries)
        self.beginInsertRows(QModelIndex(), first, first + len(entries) - 1)
        self.entries.extend(entries)
        self._reindex(first)
        self.endInsertRows()
        self._count_names([e.path for e in entries], 1)

    def remove(self, rows: list[int]) -> None:
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self.entries):
                self.beginRemoveRows(QModelIndex(), row, row)
                entry = self.entries.pop(row)
                self._rows.pop(id(entry), None)
                self._paths.pop(entry.path, None)
                self._reindex(row)
                self.endRemoveRows()
                self._count_names([entry.path], -1)

    def clear(self) -> None:
        self.beginResetModel()
        self.entries, self._rows, self._paths, self._names = [], {}, {}, Counter()
        self.endResetModel()

    def _count_names(self, paths: list[str], step: int) -> None:
        """Count file names; rows whose name became (or stopped being) shared show their folder (or not)."""
        changed = set()
        for path in paths:
            name = file_name(path)
            self._names[name] += step
            changed.add(name)
        rows = [n for n, e in enumerate(self.entries) if file_name(e.path) in changed]
        if rows:
            self.dataChanged.emit(self.index(min(rows), NAME), self.index(max(rows), NAME))

    def _reindex(self, first: int) -> None:
        for row in range(first, len(self.entries)):
            entry = self.entries[row]
            self._rows[id(entry)] = row
            self._paths[entry.path] = entry

    def row_of(self, entry: Entry) -> int:
        row = self._rows.get(id(entry), -1)
        return row if 0 <= row < len(self.entries) and self.entries[row] is entry else -1

    def find(self, path: str) -> Entry | None:
        return self._paths.get(path)

    def refresh(self, entry: Entry) -> None:
        row = self.row_of(entry)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def entry(self, index: Index) -> Entry | None:
        return self.entries[index.row()] if index.isValid() and index.row() < len(self.entries) else None

    # QAbstractTableModel
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(HEADERS)

    def _text(self, entry: Entry, column: int) -> str:
        report = entry.report or {}
        if column == VERDICT:
            return {"queued": "queued", "running": "inspecting…"}.get(entry.state, entry.verdict)
        if column == NAME:
            name = file_name(entry.path) or entry.path
            if self._names[name] > 1 and not entry.remote:  # same-named files: their folder tells them apart
                name = f"{name} — {os.path.basename(os.path.dirname(entry.path))}/"
            return printable(name, 200)
        if entry.audit:  # the kind in the tooltip; the columns are narrow
            extension = os.path.splitext(entry.path)[1].lower()
            return {FORMAT: extension.lstrip("."), DECLARED: f"audit ({extension})"}.get(column, "")
        if column == FORMAT:
            return printable(report.get("format") or "", 40)
        if column == DECLARED:
            return entry.declared_label(short=True)
        return human_size(report["virtual_size"]) if report.get("virtual_size") is not None else ""

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        entry = self.entry(index)
        if entry is None:
            return None
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(entry, column)
        if role == Qt.ItemDataRole.EditRole and column == DECLARED:
            return entry.declared or FROM_EXTENSION
        if role == Qt.ItemDataRole.DecorationRole and column == NAME:
            return self.icons.get("verdict-pending" if entry.state != "done" else f"verdict-{entry.verdict}")
        if role == Qt.ItemDataRole.ToolTipRole:
            error = (entry.report or {}).get("error")
            what = f"declared format: {entry.declared_label()}"
            if entry.audit:
                what = f"audited as {AUDIT_KINDS.get(entry.audit, entry.audit)}"
            shown = f"{printable(entry.path, 1024)}\n{what}"
            return tooltip(f"{shown}\n{printable(error, 1024)}" if error else shown)
        if role == ENTRY_ROLE:
            return entry
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        entry = self.entry(index)
        if entry is None or entry.audit or index.column() != DECLARED or role != Qt.ItemDataRole.EditRole:
            return False
        chosen = str(value) or None
        if chosen == entry.declared:
            return False
        entry.declared = chosen
        entry.declared_by = "window"
        self.dataChanged.emit(index, index)
        self.declared_changed.emit(entry)
        return True

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        entry = self.entry(index)
        editable = index.column() == DECLARED and entry is not None and not entry.audit
        return flags | Qt.ItemFlag.ItemIsEditable if editable else flags

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < 5:
            return HEADERS[section]
        return None
