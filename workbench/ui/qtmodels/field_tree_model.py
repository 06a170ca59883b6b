"""The header field tree (name, value, offset, size) and its name-or-value filter."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from ...render.textsafe import printable
from .node_model import Node, NodeModel, change_filter, walk

HEADERS = ["Field", "Value", "Offset", "Size"]
VALUE_CAP = 300


def value_text(value: Any, cap: int = VALUE_CAP) -> str:
    """A field value as one line: integers in decimal and hex, image strings escaped and capped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value} (0x{value:x})" if value >= 10 else str(value)
    return printable(value, cap)


def magic_text(name: str, value: Any) -> str | None:
    """A signature's bytes as text beside their hex (``514649fb ("QFI\\xfb")``), for fields named like one."""
    if not isinstance(value, str) or not any(word in name.lower() for word in ("magic", "signature")):
        return None
    if not value or len(value) > 32 or len(value) % 2 or any(c not in "0123456789abcdefABCDEF" for c in value):
        return None
    text = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}" for b in bytes.fromhex(value)
    )
    return f'{value} ("{text}")'


def _node(item: dict[str, Any]) -> Node:
    size = item["size"]
    value = magic_text(str(item["name"]), item["value"]) or value_text(item["value"])
    cells = [printable(item["name"], 200), value, f"0x{item['offset']:x}", f"{size}"]
    return Node(cells, item, printable(item.get("description") or "", 1000))


def build_nodes(fields: list[dict[str, Any]]) -> list[Node]:
    """Nodes for a validated field tree (iteratively: its depth is capped by validation, not trusted here)."""
    roots: list[Node] = []
    stack: list[tuple[dict[str, Any], Node | None]] = [(item, None) for item in reversed(fields)]
    while stack:
        item, owner = stack.pop()
        node = _node(item)
        if owner is None:
            node.row = len(roots)
            roots.append(node)
        else:
            owner.add(node)
        stack.extend((child, node) for child in reversed(item.get("children") or []))
    return roots


class FieldTreeModel(NodeModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)

    def set_fields(self, fields: list[dict[str, Any]]) -> None:
        self.set_nodes(build_nodes(fields))

    def node_at(self, offset: int) -> Node | None:
        """The most specific field covering ``offset``: the smallest range, then the deepest node."""
        best: Node | None = None
        best_key: tuple[int, int] | None = None
        for node in walk(self.nodes()):
            item = node.payload
            if item["size"] > 0 and item["offset"] <= offset < item["offset"] + item["size"]:
                key = (item["size"], -node.depth())
                if best_key is None or key < best_key:
                    best, best_key = node, key
        return best

    def node_near(self, offset: int) -> Node | None:
        """The field covering ``offset``, else the one starting nearest it (an allocation run clicked)."""
        sized = (n for n in walk(self.nodes()) if n.payload["size"] > 0)
        return self.node_at(offset) or min(
            sized, key=lambda n: (abs(n.payload["offset"] - offset), n.depth()), default=None
        )

    def node_named_value(self, text: str) -> Node | None:
        """The first field whose value is ``text`` (how a reference finds the field that names it)."""
        return next((n for n in walk(self.nodes()) if n.payload["value"] == text and n.payload["size"]), None)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.TextAlignmentRole and index.isValid() and index.column() >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return super().data(index, role)


class FieldFilterProxy(QSortFilterProxyModel):
    """Keeps rows whose name or value contains the filter text (case insensitive), with their ancestors."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setRecursiveFilteringEnabled(True)
        self.needle = ""

    def set_needle(self, text: str) -> None:
        change_filter(self, lambda: setattr(self, "needle", text.casefold()))

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        if not self.needle:
            return True
        model = self.sourceModel()
        for column in (0, 1):
            text = model.data(model.index(row, column, parent)) or ""
            if self.needle in text.casefold():
                return True
        return False
