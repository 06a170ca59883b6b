"""The triage table: opened by a folder or many files, filled by the engine, sorted, filtered, cancelled, exported."""

from __future__ import annotations

import asyncio
import csv
import json
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.builders import qcow2
from tests.gui.support import WAIT_MS, file_mime, inspect_in_process, wait_done, write_images
from workbench import inspector
from workbench.demo import images as demo
from workbench.ui.main_window import TRIAGE_THRESHOLD, MainWindow
from workbench.ui.qtmodels.triage_model import FILE, TOP, VERDICT
from workbench.ui.triage_window import TriageWindow, export_kind

HOSTILE = "/etc/\x1b[31mpasswd\u202e<b>bold</b>\n"


def _done(qtbot: Any, triage: TriageWindow) -> TriageWindow:
    qtbot.waitUntil(lambda: triage.state not in ("listing", "running"), timeout=WAIT_MS)
    return triage


def _shown(triage: TriageWindow, column: int) -> list[str]:
    proxy = triage.proxy
    return [proxy.index(row, column).data() for row in range(proxy.rowCount())]


def _row_of(triage: TriageWindow, name: str) -> int:
    return _shown(triage, FILE).index(name)


def test_a_folder_is_triaged_by_the_engine_and_a_row_opens_its_details(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    images = write_images(tmp_path / "uploads")
    (tmp_path / "uploads" / "link.qcow2").symlink_to(images["clean"])
    window.handle_drop(file_mime(tmp_path / "uploads"))
    triage = _done(qtbot, window.triages[0])
    assert triage.state == "done" and triage.isVisible()
    verdicts = dict(zip(_shown(triage, FILE), _shown(triage, VERDICT), strict=True))
    expected = {"clean.qcow2": "accept", "backing.qcow2": "reject", "disk.raw": "accept", "link.qcow2": "failed"}
    assert verdicts == expected
    assert _shown(triage, VERDICT)[:2] == ["failed", "reject"]  # sorted worst first: could not inspect is worst
    assert _shown(triage, TOP)[_row_of(triage, "backing.qcow2")].startswith("backing-file: backing file '/etc/passwd'")
    assert "symbolic link" in _shown(triage, TOP)[_row_of(triage, "link.qcow2")]
    assert triage.progress.value() == triage.progress.maximum() == 4
    assert "4 files in" in triage.status.text() and "files/s" in triage.status.text() and triage.rate() > 0
    rejected = next(row for row in triage.model.rows if row.summary["verdict"] == "reject")
    spooled = triage.spool.read(rejected.spooled)  # the full report, from disk
    assert spooled["path"] == rejected.summary["path"] and not spooled["byte_regions"]
    assert spooled["sandbox"] and window.model.rowCount() == 0

    triage.view.activated.emit(triage.proxy.index(_row_of(triage, "backing.qcow2"), 2))
    (entry,) = wait_done(qtbot, window, count=1)
    assert window.current is entry and entry.path == str(images["backing"])
    assert entry.report["byte_regions"]  # inspected again, with the bytes the batch left out
    assert entry.report["sandbox"]["rlimits"].startswith("on")


def test_more_files_than_the_threshold_open_a_table_fewer_the_list(
    qtbot: Any, fast_window: MainWindow, tmp_path: Path
) -> None:
    files = []
    for number in range(TRIAGE_THRESHOLD + 1):
        files.append(tmp_path / f"disk{number:02}.raw")
        files[-1].write_bytes(bytes(512))
    fast_window.handle_drop(file_mime(*files[:2]))
    assert fast_window.model.rowCount() == 2 and not fast_window.triages
    fast_window.handle_drop(file_mime(*files))
    triage = _done(qtbot, fast_window.triages[0])
    assert triage.model.rowCount() == TRIAGE_THRESHOLD + 1
    assert fast_window.model.rowCount() == 2


@pytest.fixture
def demo_triage(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> TriageWindow:
    folder = tmp_path / "demo"
    folder.mkdir()
    demo.write_demo(folder)
    (folder / "hostile\x1b[2J\u202e.qcow2").write_bytes(qcow2.qcow2(1 << 30, backing=HOSTILE, backing_format="raw"))
    return _done(qtbot, fast_window.open_triage([str(folder)]))


def test_models_pass_the_model_tester_and_show_plain_capped_text(qtmodeltester: Any, demo_triage: TriageWindow) -> None:
    qtmodeltester.check(demo_triage.model)
    qtmodeltester.check(demo_triage.proxy)
    assert demo_triage.model.rowCount() == len(demo.images()) + 1
    hostile = next(row for row in demo_triage.model.rows if "hostile" in row.summary["path"])
    assert hostile.cells[FILE] == "hostile\\x1b[2J\\u202e.qcow2"
    for text in hostile.cells:
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text), text
    assert "passwd\\u202e<b>bold</b>" in hostile.cells[TOP]


def test_sorting_and_filtering_by_verdict_and_format(qtbot: Any, demo_triage: TriageWindow) -> None:
    formats = [demo_triage.format_box.itemText(i) for i in range(demo_triage.format_box.count())]
    assert formats == ["All formats", "luks", "qcow2", "vmdk"]  # a .img file is probed: qcow2
    demo_triage.view.sortByColumn(4, Qt.SortOrder.DescendingOrder)  # logical size, by value
    assert _shown(demo_triage, FILE)[0] == "claims-16TiB.qcow2"
    demo_triage.verdict_box.setCurrentIndex(demo_triage.verdict_box.findData("reject"))
    assert set(_shown(demo_triage, VERDICT)) == {"reject"}
    rejected = len(_shown(demo_triage, FILE))
    demo_triage.format_box.setCurrentIndex(demo_triage.format_box.findData("qcow2"))
    assert set(_shown(demo_triage, 2)) == {"qcow2"}
    assert 0 < len(_shown(demo_triage, FILE)) < rejected
    assert demo_triage.shown.text() == f"showing {demo_triage.proxy.rowCount()} of {demo_triage.model.rowCount()}"
    demo_triage.verdict_box.setCurrentIndex(0)
    demo_triage.format_box.setCurrentIndex(0)
    assert demo_triage.proxy.rowCount() == demo_triage.model.rowCount()


def _export(qtbot: Any, triage: TriageWindow, path: Path) -> int:
    task = triage._start_export(str(path))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    return task.result()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_export_writes_the_rows_shown_in_every_format(qtbot: Any, demo_triage: TriageWindow, tmp_path: Path) -> None:
    demo_triage.verdict_box.setCurrentIndex(demo_triage.verdict_box.findData("reject"))
    shown = [row.summary["path"] for row in demo_triage.proxy.rows()]
    assert 1 < len(shown) < demo_triage.model.rowCount()
    assert _export(qtbot, demo_triage, tmp_path / "out.json") == len(shown)
    reports = json.loads((tmp_path / "out.json").read_text())
    assert [r["path"] for r in reports] == shown and all(r["findings"] for r in reports)
    _export(qtbot, demo_triage, tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["verdict"] for line in lines] == ["reject"] * len(shown)
    _export(qtbot, demo_triage, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"] for row in rows] == [p.replace("\x1b", "\\x1b").replace("\u202e", "\\u202e") for p in shown]
    _export(qtbot, demo_triage, tmp_path / "out.html")
    html = (tmp_path / "out.html").read_text()
    parser = _Tags()
    parser.feed(html)
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert parser.tags.count("tr") == len(shown) + 1 and "default-src 'none'" in html
    assert export_kind(str(tmp_path / "plain"), "CSV (*.csv)") == (str(tmp_path / "plain.csv"), "csv")
    task = demo_triage._start_export(str(tmp_path / "out.pdf"))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert "unknown export type .pdf" in demo_triage.notices.messages[-1]


def _gated(held: list[str], cancelled: list[str]) -> Any:
    """A stand-in that answers ``a*`` files at once and holds the others until they are cancelled."""

    async def inspect(request: inspector.Request) -> dict[str, Any]:
        if not Path(request.path).name.startswith("a"):
            held.append(request.path)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(request.path)
                raise
        return await inspect_in_process(request)

    return inspect


def test_cancel_stops_the_batch_and_keeps_the_rows(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    for name in ("a1.raw", "a2.raw", "b1.raw", "b2.raw", "b3.raw"):
        (tmp_path / name).write_bytes(bytes(512))
    held: list[str] = []
    cancelled: list[str] = []
    fast_window.inspect_fn = _gated(held, cancelled)
    triage = fast_window.open_triage([str(tmp_path)])  # two jobs: a1 and a2 answered, then b1 and b2 held
    qtbot.waitUntil(lambda: triage.model.rowCount() == 2 and len(held) == 2)
    assert triage.running() and fast_window.busy()
    assert "2 of 5 files" in triage.status.text()
    triage.cancel_button.click()
    _done(qtbot, triage)
    assert triage.state == "cancelled" and not triage.cancel_button.isEnabled()
    assert sorted(Path(p).name for p in cancelled) == ["b1.raw", "b2.raw"]  # b3 was never started
    assert "cancelled after 2 of 5 files" in triage.status.text()
    assert triage.model.rowCount() == 2 and not fast_window.busy()


def test_closing_the_table_stops_its_batch(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    for name in ("a1.raw", "b1.raw"):
        (tmp_path / name).write_bytes(bytes(512))
    held: list[str] = []
    cancelled: list[str] = []
    fast_window.inspect_fn = _gated(held, cancelled)
    triage = fast_window.open_triage([str(tmp_path)])
    qtbot.waitUntil(lambda: triage.model.rowCount() == 1 and len(held) == 1)
    triage.close()
    qtbot.waitUntil(lambda: bool(cancelled))
    assert fast_window.triages == [] and triage.spool.file.closed
    assert not fast_window.busy()


def test_an_empty_folder_says_so(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    triage = _done(qtbot, fast_window.open_triage([str(tmp_path / "empty")]))
    assert triage.state == "done" and triage.model.rowCount() == 0
    assert triage.notices.messages == ["No files found to triage."]
    triage.export_dialog()
    assert triage.notices.messages[-1] == "Nothing to export: no row is shown."
