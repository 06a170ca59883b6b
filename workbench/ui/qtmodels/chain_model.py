"""A backing chain as a tree: the image, its parent below it, that one's parent below that, and why it ends.

Built from the report of :func:`workbench.chain.follow` (``chain``, ``chain_end``, ``chain_verdict``); the
chain's length is capped there (``max_depth``), and each link is a full validated report.
"""

from __future__ import annotations

import os
from typing import Any

from ...render.sizes import human_size
from ...render.textsafe import printable
from .node_model import Node, NodeModel

HEADERS = ["Image", "Verdict", "Format", "Logical size", "File size", "Note"]
END_TEXT = {
    "base": "base image: no backing file",
    "network": "stopped: network or protocol name",
    "outside-roots": "stopped: outside the allowed folders",
    "windows-path": "stopped: Windows path",
    "uuid": "stopped: parent named by UUID only",
    "missing": "stopped: parent missing",
    "loop": "stopped: loop",
    "depth": "stopped: depth limit",
    "format-mismatch": "stopped: format mismatch",
    "failed": "stopped: a link could not be inspected",
}


def _size(value: int | None) -> str:
    return "" if value is None else human_size(value)


def link_node(link: dict[str, Any]) -> Node:
    fmt = printable(link.get("format") or "", 40)
    if link.get("probed") and fmt:
        fmt += " (probed)"
    named_as = link.get("named_as")
    note = "the image" if named_as is None else f"named as {printable(named_as, 400)}"
    cells = [
        printable(os.path.basename(link["path"]) or link["path"], 200),
        link["verdict"],
        fmt,
        _size(link.get("virtual_size")),
        _size(link.get("file_size")),
        note,
    ]
    return Node(cells, link, printable(link["path"], 1024), f"verdict-{link['verdict']}")


def end_text(end: dict[str, Any]) -> str:
    reason = str(end.get("reason", ""))
    return END_TEXT.get(reason, f"stopped: {printable(reason, 40)}")


def end_node(end: dict[str, Any]) -> Node:
    detail = printable(end.get("detail") or "", 1024)
    icon = "verdict-accept" if end.get("reason") == "base" else "severity-warning"
    return Node([end_text(end), "", "", "", "", detail], None, detail, icon)


def chain_nodes(report: dict[str, Any]) -> list[Node]:
    """One top node (the image); each parent is the only link child of the link before it, the end last."""
    top: Node | None = None
    last: Node | None = None
    for link in report.get("chain") or []:
        node = link_node(link)
        if last is None:
            top = node
        else:
            last.add(node)
        last = node
    end = end_node(report.get("chain_end") or {})
    if last is None:
        return [end]
    last.add(end)
    assert top is not None
    return [top]


class ChainModel(NodeModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)

    def set_chain(self, report: dict[str, Any] | None) -> None:
        self.set_nodes(chain_nodes(report) if report else [])
