"""File ▸ Export Selected Reports: which reports, where, and the message that says it was done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QStatusBar, QWidget

from ..render import export
from ..render.textsafe import printable
from .qtmodels.image_list_model import Entry

EXPORT_FILTERS = "HTML page (*.html);;Markdown (*.md);;JSON (*.json)"
SUFFIXES = {"HTML": ".html", "Markdown": ".md", "JSON": ".json"}


def reports_of(entries: list[Entry]) -> list[dict[str, Any]]:
    """The disk image reports of ``entries`` (audits and images not inspected yet are left out)."""
    return [entry.report for entry in entries if entry.report is not None and not entry.audit]


def export_reports(reports: list[dict[str, Any]], path: Path | str, status: QStatusBar) -> Path:
    written = export.export(reports, path)
    status.showMessage(f"Exported to {printable(written, 300)}", 5000)
    return written


def export_dialog(
    parent: QWidget, reports: list[dict[str, Any]], status: QStatusBar, notify: Callable[[str], None]
) -> None:
    """Ask where, by type or suffix, and write; a failure goes to ``notify``."""
    if not reports:
        notify("Nothing to export yet: select inspected images first.")
        return
    path, chosen = QFileDialog.getSaveFileName(parent, "Export reports", "workbench-report.html", EXPORT_FILTERS)
    if path:
        try:
            export_reports(reports, path if Path(path).suffix else path + SUFFIXES[chosen.split(" ")[0]], status)
        except (OSError, ValueError) as exc:
            notify(f"Export failed: {exc}")
