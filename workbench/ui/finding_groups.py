"""Triage "group by finding": one line per warning or critical finding id with the number of files that have
it; choosing one keeps those files in the table."""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

ID_ROLE = Qt.ItemDataRole.UserRole


class FindingGroups(QListWidget):
    chosen = Signal(object)  # a finding id, or None for every file

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Files per finding")
        self.currentItemChanged.connect(lambda item, _previous: self.chosen.emit(item.data(ID_ROLE) if item else None))

    def set_counts(self, counts: Counter[str], total: int) -> None:
        """Show ``counts`` (most files first, then by id), keeping the chosen line."""
        chosen = self.currentItem().data(ID_ROLE) if self.currentItem() else None
        self.blockSignals(True)
        self.clear()
        self.addItem(self._item(f"All files ({total})", None))
        for finding, count in sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])):
            self.addItem(self._item(f"{finding} ({count})", finding))
        rows = [self.item(n).data(ID_ROLE) for n in range(self.count())]
        self.setCurrentRow(rows.index(chosen) if chosen in rows else 0)
        self.blockSignals(False)

    @staticmethod
    def _item(text: str, finding: str | None) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setData(ID_ROLE, finding)
        return item
