"""Help > Keyboard Shortcuts: the main window's and the triage table's keys, in aligned columns."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from .triage_window import OTHER_KEYS, SHORTCUTS


def _keys(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())


class ShortcutsDialog(QDialog):
    def __init__(self, actions: Iterable[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Keyboard shortcuts")
        self.tree.setHeaderLabels(["Action", "Keys"])
        self.tree.setRootIsDecorated(False)
        main = [(a.text().replace("&", ""), _keys(a)) for a in actions if not a.shortcut().isEmpty()]
        triage = [(text, keys) for text, keys, _ in SHORTCUTS] + list(OTHER_KEYS)
        for title, rows in (("Main window", main), ("Triage table", triage)):
            group = QTreeWidgetItem(self.tree, [title])
            group.setFirstColumnSpanned(True)
            for text, keys in rows:
                QTreeWidgetItem(group, [text, keys])
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.resize(560, 620)

    def rows(self, group: int) -> list[tuple[str, str]]:
        """``(action, keys)`` of group 0 (main window) or 1 (triage table)."""
        top = self.tree.topLevelItem(group)
        children = [top.child(n) for n in range(top.childCount())] if top is not None else []
        return [(child.text(0), child.text(1)) for child in children if child is not None]
