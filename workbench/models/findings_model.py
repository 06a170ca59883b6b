"""Findings of one report: severity (with its icon), title, detail, offset; the worst first."""

from __future__ import annotations

from typing import Any

from ..textsafe import printable
from .node_model import Node, NodeModel

HEADERS = ["Severity", "Finding", "Detail", "Offset"]
ORDER = {"critical": 0, "warning": 1, "info": 2}


def finding_text(finding: dict[str, Any]) -> str:
    """Everything about one finding, for the detail pane and the clipboard."""
    where = "" if finding.get("offset") is None else f"\nOffset: 0x{finding['offset']:x} ({finding['offset']})"
    return (
        f"{finding['severity'].upper()}: {finding['title']} ({finding['id']})\n\n"
        f"{printable(finding['detail'], 4096)}{where}\n\nRecommendation: {finding['recommendation']}"
    )


class FindingsModel(NodeModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)

    def set_findings(self, findings: list[dict[str, Any]]) -> None:
        ordered = sorted(findings, key=lambda f: ORDER.get(f["severity"], 3))
        nodes = []
        for finding in ordered:
            offset = "" if finding.get("offset") is None else f"0x{finding['offset']:x}"
            cells = [finding["severity"], finding["title"], printable(finding["detail"], 400), offset]
            nodes.append(Node(cells, finding, finding_text(finding), f"severity-{finding['severity']}"))
        self.set_nodes(nodes)
