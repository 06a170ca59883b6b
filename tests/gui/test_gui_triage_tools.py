"""The triage table's tools (issue 18, item 5): severity order with names breaking ties, search, group by
finding, rows copied as TSV, ETA, the context menu, and a folder from the command line opening no empty window."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication

from tests.gui.support import WAIT_MS
from workbench.app import open_arguments
from workbench.demo import images as demo
from workbench.ui import row_actions
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.triage_model import FILE, HEADERS, VERDICT, VERDICTS
from workbench.ui.triage_window import TriageWindow


def _shown(triage: TriageWindow, column: int) -> list[str]:
    return [triage.proxy.index(row, column).data() for row in range(triage.proxy.rowCount())]


@pytest.fixture
def table(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> TriageWindow:
    folder = tmp_path / "uploads"
    folder.mkdir()
    images = demo.write_demo(folder)
    clean = next(image.path for image in images if image.path.name == "clean.qcow2")
    for name in ("b-copy.qcow2", "a-copy.qcow2", "c-copy.qcow2"):
        (folder / name).write_bytes(clean.read_bytes())
    (folder / "z-link.qcow2").symlink_to(clean)
    (folder / "m-link.qcow2").symlink_to(clean)
    triage = fast_window.open_triage([str(folder)])
    qtbot.waitUntil(lambda: triage.state == "done", timeout=WAIT_MS)
    return triage


def test_worst_first_then_by_name(table: TriageWindow) -> None:
    verdicts, names = _shown(table, VERDICT), _shown(table, FILE)
    ranks = [VERDICTS.index(v) for v in verdicts]
    assert ranks == sorted(ranks, reverse=True) and verdicts[:2] == ["failed", "failed"]
    assert names[:2] == ["m-link.qcow2", "z-link.qcow2"]
    accepted = [name for name, verdict in zip(names, verdicts, strict=True) if verdict == "accept"]
    assert accepted == sorted(accepted) and {"a-copy.qcow2", "b-copy.qcow2", "c-copy.qcow2"} <= set(accepted)
    table.view.sortByColumn(VERDICT, Qt.SortOrder.AscendingOrder)
    verdicts, names = _shown(table, VERDICT), _shown(table, FILE)
    assert verdicts[0] == "accept" and verdicts[-1] == "failed"
    assert names[-2:] == ["m-link.qcow2", "z-link.qcow2"]  # ties stay in name order either way


def test_search_matches_names_finding_ids_and_references(table: TriageWindow) -> None:
    table.search.setText("COPY")
    assert _shown(table, FILE) == ["a-copy.qcow2", "b-copy.qcow2", "c-copy.qcow2"]
    table.search.setText("external-extent")
    assert _shown(table, FILE) == ["host-extent.vmdk"]
    table.search.setText("/etc/")  # the host file a demo image names as its backing file
    assert "backing-host-file.qcow2" in _shown(table, FILE)
    table.search.clear()
    assert table.proxy.rowCount() == table.model.rowCount()


def test_group_by_finding_counts_and_filters(table: TriageWindow) -> None:
    table.group_box.setChecked(True)
    assert table.groups.isVisible()
    lines = [table.groups.item(n).text() for n in range(table.groups.count())]
    assert lines[0] == f"All files ({table.model.rowCount()})"
    assert "backing-file (2)" in lines and "external-extent (1)" in lines
    table.groups.setCurrentRow(lines.index("backing-file (2)"))
    assert sorted(_shown(table, FILE)) == ["backing-host-file.qcow2", "guest-raw-disk.img"]
    table.group_box.setChecked(False)
    assert table.proxy.rowCount() == table.model.rowCount()


def test_selected_rows_copy_as_tsv(qtbot: Any, table: TriageWindow) -> None:
    table.view.selectAll()
    table.view.setFocus()
    qtbot.keyClick(table.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QGuiApplication.clipboard().text().splitlines()
    assert lines[0].split("\t") == HEADERS
    assert len(lines) == table.model.rowCount() + 1 and all(line.count("\t") == len(HEADERS) - 1 for line in lines)
    assert lines[1].split("\t")[FILE] == "m-link.qcow2"
    assert "Copied" in table.statusBar().currentMessage()


def test_eta_while_running(table: TriageWindow) -> None:
    done = len(table.model.rows)
    table.state, table.total, table.ended = "running", 2 * done, 0.0
    table.started = time.monotonic() - 100.0
    assert table.eta() == pytest.approx(100.0, rel=0.05)
    table._update_status()
    assert "s left" in table.status.text()


def test_context_menu_actions(qtbot: Any, table: TriageWindow, monkeypatch: Any) -> None:
    names = _shown(table, FILE)
    table.view.selectRow(names.index("host-extent.vmdk"))
    path = table.selected_rows()[0].summary["path"]
    opened: list[str] = []
    table.open_requested.connect(opened.append)
    row_actions.action(table.row_menu(), "Open in Window").trigger()
    assert opened == [path]
    row_actions.action(table.row_menu(), "Copy Path").trigger()
    assert QGuiApplication.clipboard().text() == path
    row_actions.action(table.row_menu(), "Copy Rows as TSV").trigger()
    assert QGuiApplication.clipboard().text().splitlines()[1].startswith("host-extent.vmdk\t")
    revealed: list[QUrl] = []
    monkeypatch.setattr(row_actions.QDesktopServices, "openUrl", lambda url: revealed.append(url) or True)
    row_actions.action(table.row_menu(), "Reveal in Folder").trigger()
    assert [url.toLocalFile() for url in revealed] == [str(Path(path).parent)]
    table.view.clearSelection()
    assert not table.row_menu().isEnabled()


def test_a_folder_on_the_command_line_opens_no_empty_window(
    qtbot: Any, fast_window: MainWindow, tmp_path: Path
) -> None:
    fast_window.hide()
    (tmp_path / "folder").mkdir()
    demo.write_demo(tmp_path / "folder")
    open_arguments(fast_window, [str(tmp_path / "folder")], demo=False)
    assert len(fast_window.triages) == 1 and not fast_window.isVisible()
    triage = fast_window.triages[0]
    qtbot.waitUntil(lambda: triage.state == "done", timeout=WAIT_MS)
    triage.view.selectRow(0)
    row_actions.action(triage.row_menu(), "Open in Window").trigger()
    assert fast_window.isVisible() and fast_window.model.rowCount() == 1
