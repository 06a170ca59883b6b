"""The verdict banner at the top of the Overview: colour, verdict word, why, and the top findings as links.

Each link is a flat button (plain text, never rich text) that asks the window to show the finding: its
field and bytes when it names an offset, else the finding itself on the Findings page.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ..render.textsafe import printable
from ..schema import most_severe_first
from . import theme
from .qtmodels.node_model import tooltip
from .widgets import plain_label

TOP = 3  # findings shown as links
COLOURS = {"reject": "critical", "failed": "critical", "review": "warning", "accept": "file"}
WORDS = {"reject": "REJECT", "review": "REVIEW", "accept": "ACCEPT", "failed": "COULD NOT INSPECT"}


def top_findings(report: dict[str, Any], count: int = TOP) -> list[dict[str, Any]]:
    """The worst critical and warning findings, critical first, in report order within a severity."""
    serious = [f for f in report.get("findings") or [] if f.get("severity") in ("critical", "warning")]
    return sorted(serious, key=lambda f: most_severe_first(f["severity"]))[:count]


def reason(report: dict[str, Any]) -> str:
    """One line saying why the verdict is what it is."""
    if report.get("verdict") == "failed":
        return f"The engine could not inspect this image: {printable(report.get('error') or 'no reason given', 300)}"
    counts = {s: sum(f.get("severity") == s for f in report.get("findings") or []) for s in ("critical", "warning")}
    if not counts["critical"] and not counts["warning"]:
        return "No critical or warning finding."
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) + (":" if top_findings(report) else "")


class VerdictBanner(QFrame):
    finding_activated = Signal(object)  # the finding dict

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("verdictBanner")
        self.setAccessibleName("Verdict")
        self.word = QLabel()
        self.word.setTextFormat(Qt.TextFormat.PlainText)
        font = self.word.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.word.setFont(font)
        self.why = plain_label(wrap=True)
        self.links: list[QToolButton] = []
        self._links = QVBoxLayout()
        self._links.setSpacing(0)
        text = QVBoxLayout()
        head = QHBoxLayout()
        head.addWidget(self.word)
        head.addWidget(self.why, 1)
        text.addLayout(head)
        text.addLayout(self._links)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addLayout(text, 1)
        self.hide()

    def show_report(self, report: dict[str, Any] | None) -> None:
        for button in self.links:
            button.deleteLater()
        self.links = []
        if not report:
            self.hide()
            return
        verdict = report.get("verdict", "failed")
        colour = theme.accent(COLOURS.get(verdict, "critical"))
        self.setStyleSheet(  # colours only: no image text goes into a style sheet
            f"QFrame#verdictBanner {{ border-left: 6px solid {colour.name()}; "
            f"background: {theme.accent('track').name()}; }}"
        )
        self.word.setText(WORDS.get(verdict, verdict.upper()))
        palette = self.word.palette()
        palette.setColor(QPalette.ColorRole.WindowText, colour)
        self.word.setPalette(palette)
        self.why.setText(reason(report))
        for finding in top_findings(report):
            self.links.append(self._link(finding))
        self.setAccessibleDescription(f"{self.word.text()}: {self.why.text()}")
        self.show()

    def _link(self, finding: dict[str, Any]) -> QToolButton:
        button = QToolButton()
        button.setAutoRaise(True)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        where = " (its field and bytes)" if finding.get("offset") is not None else ""
        button.setText(f"▸ {printable(finding['title'], 160)}".replace("&", "&&"))  # no mnemonic from image text
        button.setToolTip(tooltip(f"{printable(finding.get('detail', ''), 600)}\n\nShow it{where}"))
        button.setAccessibleName(f"Show finding: {printable(finding['title'], 160)}")
        palette = button.palette()
        palette.setColor(QPalette.ColorRole.ButtonText, button.palette().color(QPalette.ColorRole.Link))
        button.setPalette(palette)
        button.clicked.connect(lambda checked=False, f=finding: self.finding_activated.emit(f))
        self._links.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)
        return button
