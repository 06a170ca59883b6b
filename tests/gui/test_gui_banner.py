"""The Overview says why (issue 18, item 2): a verdict banner whose top findings are links to their field
and bytes, the Findings page opened with the worst one selected, mismatch and limit rows highlighted."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt

from tests.gui.support import wait_done
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.image_list_model import Entry
from workbench.ui.qtmodels.node_model import walk


def _demo(qtbot: Any, window: MainWindow, name: str) -> Entry:
    window.open_demo()
    entries = {os.path.basename(e.path): e for e in wait_done(qtbot, window)}
    window.select(entries[name])
    window.tabs.setCurrentWidget(window.overview)
    return entries[name]


def test_banner_gives_the_verdict_and_the_top_findings(qtbot: Any, fast_window: MainWindow) -> None:
    _demo(qtbot, fast_window, "guest-raw-disk.img")
    banner = fast_window.overview.banner
    assert banner.isVisible() and banner.word.text() == "REJECT"
    assert banner.why.text() == "2 critical, 1 warning:"
    titles = [button.text() for button in banner.links]
    assert len(titles) == 3 and all(t.startswith("▸ ") for t in titles)
    assert banner.links[-1].text() == "▸ " + next(
        f["title"] for f in fast_window.current.report["findings"] if f["severity"] == "warning"
    ).replace("&", "&&")


def test_banner_link_jumps_to_the_field_and_its_bytes(qtbot: Any, fast_window: MainWindow) -> None:
    entry = _demo(qtbot, fast_window, "backing-host-file.qcow2")
    banner = fast_window.overview.banner
    qtbot.mouseClick(banner.links[0], Qt.MouseButton.LeftButton)
    assert fast_window.tabs.currentWidget() is fast_window.fields
    field = fast_window.fields.current_field()
    offset = next(f["offset"] for f in entry.report["findings"] if f["id"] == "backing-file")
    assert field is not None and field["offset"] <= offset < field["offset"] + max(1, field["size"])
    assert fast_window.fields.hex.field == (field["offset"], field["offset"] + field["size"])


def test_banner_link_without_offset_selects_the_finding(qtbot: Any, fast_window: MainWindow) -> None:
    entry = _demo(qtbot, fast_window, "claims-16TiB.qcow2")
    finding = next(f for f in entry.report["findings"] if f["id"] == "virtual-size-limit")
    assert finding.get("offset") is None
    fast_window.show_finding(finding)
    assert fast_window.tabs.currentWidget() is fast_window.findings
    assert fast_window.findings.tree.currentIndex().data(Qt.ItemDataRole.UserRole + 1) == finding


def test_findings_page_opens_with_the_worst_selected(qtbot: Any, fast_window: MainWindow) -> None:
    _demo(qtbot, fast_window, "guest-raw-disk.img")
    fast_window.tabs.setCurrentWidget(fast_window.findings)
    page = fast_window.findings
    assert page.tree.currentIndex().row() == 0
    assert page.detail.toPlainText().startswith("CRITICAL: ")


def test_mismatch_and_limit_rows_are_highlighted(qtbot: Any, fast_window: MainWindow) -> None:
    _demo(qtbot, fast_window, "guest-raw-disk.img")
    model = fast_window.overview.model
    marked = {n.cells[0]: n.mark for n in walk(model.nodes()) if n.mark}
    assert marked == {"Declared format": "critical", "Detected format": "critical"}
    declared = next(n for n in model.nodes() if n.cells[0] == "Declared format")
    index = model.index_of(declared, 1)
    assert index.data(Qt.ItemDataRole.ForegroundRole) is not None and index.data(Qt.ItemDataRole.FontRole).bold()
    _demo(qtbot, fast_window, "claims-16TiB.qcow2")
    assert {n.cells[0] for n in walk(model.nodes()) if n.mark} == {"Logical size"}
    _demo(qtbot, fast_window, "clean.qcow2")
    assert not fast_window.overview.banner.links
    assert fast_window.overview.banner.why.text() == "No critical or warning finding."
    assert not any(n.mark for n in walk(model.nodes()))


def test_a_failed_image_says_why_not_zero_counts(qtbot: Any, fast_window: MainWindow, tmp_path: Any) -> None:
    missing = tmp_path / "gone.qcow2"
    fast_window.open_paths([str(missing)])
    wait_done(qtbot, fast_window)
    verdict = fast_window.overview.model.nodes()[0].cells[1]
    assert verdict.startswith("FAILED: could not inspect") and "0 critical" not in verdict
    banner = fast_window.overview.banner
    assert banner.word.text() == "COULD NOT INSPECT" and "could not inspect this image" in banner.why.text()
