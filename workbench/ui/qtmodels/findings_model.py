"""Findings of one report: severity (with its icon), title, detail, where; the worst first.

Image findings say where by ``offset``; audit findings (libvirt configuration files) by ``location``.
"""

from __future__ import annotations

from typing import Any

from ...render.textsafe import printable
from ...schema import most_severe_first
from .node_model import Node, NodeModel

HEADERS = ["Severity", "Finding", "Detail"]


def _where(finding: dict[str, Any]) -> tuple[str, str]:
    """``(cell, line for the detail pane)`` saying where the finding is, or two empty strings."""
    offset = finding.get("offset")
    if offset is not None:
        return f"0x{offset:x}", f"\nOffset: 0x{offset:x} ({offset})"
    location = printable(finding.get("location") or "", 400)
    return location, f"\nLocation: {location}" if location else ""


def finding_text(finding: dict[str, Any]) -> str:
    """Everything about one finding, for the detail pane and the clipboard."""
    return (
        f"{finding['severity'].upper()}: {finding['title']} ({finding['id']})\n\n"
        f"{printable(finding['detail'], 4096)}{_where(finding)[1]}\n\nRecommendation: {finding['recommendation']}"
    )


class FindingsModel(NodeModel):
    """``where`` names the last column: "Offset" for images, "Location" for configuration files."""

    def __init__(self, parent: Any = None, where: str = "Offset") -> None:
        super().__init__([*HEADERS, where], parent)

    def set_findings(self, findings: list[dict[str, Any]]) -> None:
        ordered = sorted(findings, key=lambda f: most_severe_first(f["severity"]))
        nodes = []
        for finding in ordered:
            cells = [finding["severity"], finding["title"], printable(finding["detail"], 400), _where(finding)[0]]
            nodes.append(Node(cells, finding, finding_text(finding), f"severity-{finding['severity']}"))
        self.set_nodes(nodes)
