"""A read-only Qt item model over a tree of plain :class:`Node` objects.

The tree, field, finding, reference and property models all build nodes from a validated report and
hand them to :class:`NodeModel`; the cells hold text that already went through
:func:`~workbench.render.textsafe.printable`, so every view shows them as plain text.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QFont

Index = QModelIndex | QPersistentModelIndex
PAYLOAD_ROLE = Qt.ItemDataRole.UserRole + 1


def tooltip(text: str) -> str:
    """Tooltip markup that shows ``text`` literally.

    Qt guesses whether a tooltip is rich text, so image text such as ``<img src=...>`` would be
    rendered; escaping it inside an explicit paragraph keeps every tooltip plain.
    """
    return f"<p style='white-space:pre-wrap'>{html.escape(text, quote=False)}</p>" if text else ""


def change_filter(proxy: QSortFilterProxyModel, change: Callable[[], None]) -> None:
    """Run ``change`` (which alters what the proxy's ``filterAcceptsRow`` keeps) and filter the rows again."""
    if not hasattr(proxy, "endFilterChange"):  # Qt before 6.10
        change()
        proxy.invalidateRowsFilter()
        return
    proxy.beginFilterChange()
    change()
    proxy.endFilterChange(QSortFilterProxyModel.Direction.Rows)


@dataclass(eq=False)
class Node:
    """One row: display text per column, a tooltip for the first column (the others show their text),
    an icon key, a payload (the report item) and a mark (a severity: the row is drawn bold in its colour)."""

    cells: list[str]
    payload: Any = None
    tooltip: str = ""
    icon: str | None = None
    mark: str | None = None
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)
    row: int = 0

    def add(self, child: Node) -> Node:
        child.parent = self
        child.row = len(self.children)
        self.children.append(child)
        return child

    def depth(self) -> int:
        depth, node = 0, self.parent
        while node is not None:
            depth, node = depth + 1, node.parent
        return depth


def walk(nodes: list[Node]) -> Iterator[Node]:
    """Every node below ``nodes``, parents before children (iterative: depth comes from data)."""
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


class NodeModel(QAbstractItemModel):
    """Rows are :class:`Node` children of an invisible root; columns are ``headers``."""

    def __init__(self, headers: list[str], parent: Any = None) -> None:
        super().__init__(parent)
        self.headers = headers
        self.root = Node([])
        self.icons: dict[str, Any] = {}
        self.accent: Callable[[str], Any] | None = None  # severity -> colour of a marked row (set by the view)

    def set_nodes(self, nodes: list[Node]) -> None:
        self.beginResetModel()
        self.root = Node([])
        for node in nodes:
            self.root.add(node)
        self.endResetModel()

    def nodes(self) -> list[Node]:
        return self.root.children

    def node(self, index: Index) -> Node:
        return index.internalPointer() if index.isValid() else self.root

    def index_of(self, node: Node, column: int = 0) -> QModelIndex:
        if node is self.root or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row, column, node)

    # QAbstractItemModel
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        owner = self.node(parent)
        if not (0 <= row < len(owner.children) and 0 <= column < len(self.headers)):
            return QModelIndex()
        return self.createIndex(row, column, owner.children[row])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        owner = index.internalPointer().parent
        return self.index_of(owner) if owner is not None else QModelIndex()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self.node(parent).children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return len(self.headers)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node: Node = index.internalPointer()
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return node.cells[column] if column < len(node.cells) else ""
        if role == Qt.ItemDataRole.ToolTipRole:
            cell = node.cells[column] if column < len(node.cells) else ""
            return tooltip(node.tooltip if column == 0 and node.tooltip else cell)
        if role == Qt.ItemDataRole.DecorationRole and column == 0 and node.icon:
            return self.icons.get(node.icon)
        if role == PAYLOAD_ROLE:
            return node.payload
        if node.mark and role == Qt.ItemDataRole.ForegroundRole and self.accent is not None:
            return self.accent(node.mark)
        if node.mark and role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setBold(True)
            return font
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section] if 0 <= section < len(self.headers) else None
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
