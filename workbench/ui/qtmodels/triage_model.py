"""The triage table: one small summary per file, sortable and filterable; full reports stay on disk.

Memory grows by a summary per file (:func:`workbench.triage.run.summarise` plus the display text), never by
a full report: those go to a :class:`~workbench.triage.spool.Spool` file as they arrive and are read back only
to export them.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal

from ...render.sizes import human_size
from ...render.textsafe import printable
from ...schema import Verdict
from ...triage import run as triage
from .node_model import change_filter, tooltip

HEADERS = ["File", "Verdict", "Format", "Declared", "Logical size", "Physical size", "Encryption", "Top finding"]
FILE, VERDICT, FORMAT, DECLARED, LOGICAL, PHYSICAL, ENCRYPTION, TOP = range(len(HEADERS))
VERDICTS = tuple(Verdict)  # by severity: failed (could not inspect) is the worst
SORT_ROLE = Qt.ItemDataRole.UserRole + 3
PATH_ROLE = Qt.ItemDataRole.UserRole + 4
Index = QModelIndex | QPersistentModelIndex
_TEXT_ROLES = frozenset({int(Qt.ItemDataRole.DisplayRole), int(Qt.ItemDataRole.AccessibleTextRole)})
_TOOLTIP, _DECORATION = int(Qt.ItemDataRole.ToolTipRole), int(Qt.ItemDataRole.DecorationRole)
_ROLES = _TEXT_ROLES | {_TOOLTIP, _DECORATION, int(SORT_ROLE), int(PATH_ROLE)}
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


def shown_name(path: str, base: str) -> str:
    """``path`` relative to ``base`` (the folder the triage started from) when inside it, else its file name."""
    full, prefix = os.path.abspath(path), base.rstrip("/") + "/"
    if base and full.startswith(prefix):
        return full[len(prefix) :]
    return os.path.basename(path) or path


def _encryption(report: dict[str, Any]) -> str:
    if report.get("verdict") == "failed":
        return ""
    if not report.get("encrypted"):
        return "none"
    return printable((report.get("encryption") or {}).get("method") or "yes", 40)


def _search_text(report: dict[str, Any], name: str) -> str:
    """What the search box matches, case-folded: the file's name and path, its finding ids, the names it references."""
    ids = [str(f.get("id", "")) for f in report.get("findings") or []]
    refs = [printable(ref.get("name", ""), 300) for ref in (report.get("references") or [])[:16]]
    return "\n".join([name, printable(report.get("path", ""), 1024), *ids, *refs]).casefold()


@dataclass(eq=False, slots=True)
class Row:
    """One file: its summary (what the exports write), its display text, where its report is spooled,
    the ids of its warning and critical findings, and the text the search box matches."""

    summary: dict[str, Any]
    cells: list[str]
    spooled: tuple[int, int]
    findings: tuple[str, ...] = ()
    search: str = ""

    @classmethod
    def of(cls, report: dict[str, Any], spooled: tuple[int, int], base: str = "") -> Row:
        """The row of ``report``; its file is named relative to ``base`` (see :func:`shown_name`)."""
        summary = triage.summarise(report)
        failed = summary["verdict"] == "failed"
        declared = summary["declared_format"]
        cells = [
            printable(shown_name(summary["path"], base), 300),
            summary["verdict"],
            printable(summary["format"] or "", 40),
            printable(declared, 40) if declared else "" if failed else "none (probed)",
            "" if summary["virtual_size"] is None else human_size(summary["virtual_size"]),
            "" if summary["file_size"] is None else human_size(summary["file_size"]),
            _encryption(report),
            printable(summary["top_finding"], 300),
        ]
        serious = dict.fromkeys(
            printable(f.get("id", ""), 60) for f in report.get("findings") or [] if f.get("severity") != "info"
        )
        return cls(summary, cells, spooled, tuple(serious), _search_text(report, cells[FILE]))

    def sort_key(self, column: int) -> Any:
        if column == VERDICT:
            return VERDICTS.index(self.summary["verdict"]) if self.summary["verdict"] in VERDICTS else len(VERDICTS)
        if column in (LOGICAL, PHYSICAL):
            size = self.summary["virtual_size" if column == LOGICAL else "file_size"]
            return -1.0 if size is None else float(size)  # a float: sizes may not fit a 64-bit signed integer
        return self.cells[column].casefold()


class TriageModel(QAbstractTableModel):
    """Rows appended as they arrive and sorted here, in Python (:meth:`sort`): the proxy's own sort would
    call :meth:`data` twice per comparison. A :class:`TriageFilterProxy` filters them for the view."""

    format_seen = Signal(str)  # the first row of a new detected format arrived

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[Row] = []
        self.formats: set[str] = set()
        self.icons: dict[str, Any] = {}
        self.sorting: tuple[int, Qt.SortOrder] = (VERDICT, Qt.SortOrder.DescendingOrder)  # worst first
        self.finding_counts: Counter[str] = Counter()  # files per warning or critical finding id

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows (rows added later are appended until the next call); persistent indexes follow.
        Ties are in file name order, whichever way the column is sorted (Python's sort is stable, reversed too)."""
        self.sorting = (column, order)
        if not 0 <= column < len(HEADERS):
            return
        self.layoutAboutToBeChanged.emit()
        descending = order == Qt.SortOrder.DescendingOrder
        by_name = sorted(range(len(self.rows)), key=lambda n: self.rows[n].sort_key(FILE))
        ranked = sorted(by_name, key=lambda n: self.rows[n].sort_key(column), reverse=descending)
        self.rows = [self.rows[n] for n in ranked]
        moved_to = {old: new for new, old in enumerate(ranked)}
        before = self.persistentIndexList()
        self.changePersistentIndexList(before, [self.index(moved_to[i.row()], i.column()) for i in before])
        self.layoutChanged.emit()

    def add(self, rows: list[Row]) -> None:
        """Append a batch of rows: one insertion for the views, whatever the batch size."""
        if not rows:
            return
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()
        for row in rows:
            self.finding_counts.update(row.findings)
        for fmt in dict.fromkeys(row.cells[FORMAT] for row in rows):
            if fmt and fmt not in self.formats:
                self.formats.add(fmt)
                self.format_seen.emit(fmt)

    def row(self, index: Index) -> Row | None:
        return self.rows[index.row()] if index.isValid() and index.row() < len(self.rows) else None

    # QAbstractTableModel
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called for every role of every visible cell on each repaint: unknown roles return first.
        if role not in _ROLES or not index.isValid():
            return None
        number, column = index.row(), index.column()
        if number >= len(self.rows):
            return None
        row = self.rows[number]
        if role in _TEXT_ROLES:
            return row.cells[column]
        if role == SORT_ROLE:
            return row.sort_key(column)
        if role == _TOOLTIP:
            shown = printable(row.summary["path"], 1024) if column == FILE else row.cells[column]
            return tooltip(printable(row.summary["top_finding"], 1024) if column == TOP else shown)
        if role == _DECORATION:
            return self.icons.get(f"verdict-{row.summary['verdict']}") if column == FILE else None
        return row.summary["path"]  # PATH_ROLE

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section] if 0 <= section < len(HEADERS) else None
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags


class TriageFilterProxy(QSortFilterProxyModel):
    """Keeps one verdict, one format, one finding id and the rows whose name, path, finding ids or
    references contain the search text (case insensitive); sorting is the source model's."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)  # for the model tester; sorting itself is the source model's (see sort)
        self.verdict: str | None = None
        self.format: str | None = None
        self.finding: str | None = None
        self.needle = ""

    def set_filter(self, verdict: str | None, fmt: str | None, finding: str | None = None, needle: str = "") -> None:
        def change() -> None:
            self.verdict, self.format, self.finding, self.needle = verdict, fmt, finding, needle.casefold()

        change_filter(self, change)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Have the source model sort itself; the proxy keeps its order (it never sorts on its own)."""
        model = self.sourceModel()
        if isinstance(model, TriageModel):
            model.sort(column, order)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802
        model = self.sourceModel()
        if not isinstance(model, TriageModel) or source_row >= len(model.rows):
            return False
        row = model.rows[source_row]
        return (
            (self.verdict is None or row.cells[VERDICT] == self.verdict)
            and (self.format is None or row.cells[FORMAT] == self.format)
            and (self.finding is None or self.finding in row.findings)
            and self.needle in row.search
        )

    def rows(self) -> list[Row]:
        """The rows as the view shows them: filtered and in sorted order."""
        model = self.sourceModel()
        assert isinstance(model, TriageModel)
        return [model.rows[self.mapToSource(self.index(r, 0)).row()] for r in range(self.rowCount())]
