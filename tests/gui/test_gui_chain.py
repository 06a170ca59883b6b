"""Image > Follow Chain: the chain tree from the real engine, where it stops and why, links shown in the pages."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex

from tests.builders import qcow2
from tests.gui.support import WAIT_MS, wait_done, write_images
from workbench.records import replace
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.image_list_model import Entry


def _follow(qtbot: Any, window: MainWindow, entry: Entry) -> dict[str, Any]:
    action = next(a for a in window.actions() if a.text() == "&Follow Chain")
    assert action.shortcut().toString() == "Ctrl+B"
    action.trigger()
    assert window.tabs.currentWidget() is window.chain
    qtbot.waitUntil(lambda: entry.chain is not None and entry not in window.session.following, timeout=WAIT_MS)
    assert entry.chain is not None
    return entry.chain


def _rows(window: MainWindow) -> list[list[str]]:
    """The chain tree, top to bottom: every level has one link (and the last one the end of the chain)."""
    model, rows, parent = window.chain.model, [], QModelIndex()
    while model.rowCount(parent):
        index = model.index(0, 0, parent)
        rows.append([model.index(0, column, parent).data() for column in range(model.columnCount())])
        parent = index
    return rows


def test_a_three_link_chain_made_by_qemu_img(qtbot: Any, window: MainWindow, qemu_create: Any) -> None:
    qemu_create("base.raw", "raw", "64M")
    qemu_create("mid.qcow2", "qcow2", "64M", "-b", "base.raw", "-F", "raw")
    top = qemu_create("top.qcow2", "qcow2", "64M", "-b", "mid.qcow2", "-F", "qcow2")
    (entry,) = window.add_files([str(top)])
    wait_done(qtbot, window, count=1)
    report = _follow(qtbot, window, entry)
    assert [Path(link["path"]).name for link in report["chain"]] == ["top.qcow2", "mid.qcow2", "base.raw"]
    rows = _rows(window)
    assert [row[:3] for row in rows[:3]] == [
        ["top.qcow2", "reject", "qcow2"],
        ["mid.qcow2", "reject", "qcow2"],
        ["base.raw", "accept", "raw"],
    ]
    assert rows[0][3] == "64.0 MiB" and rows[1][5] == "named as mid.qcow2" and rows[0][5] == "the image"
    assert rows[3][0] == "base image: no backing file"
    assert window.chain.summary.text() == "Chain verdict: REJECT · 3 links · base image: no backing file"

    window.chain.tree.setCurrentIndex(window.chain.model.index_of(window.chain.model.nodes()[0].children[0]))
    assert window.link is report["chain"][1]
    assert window.title.text() == "mid.qcow2 (backing chain link 2 of 3)"
    window.tabs.setCurrentWidget(window.overview)
    overview = window.overview.model
    shown = {overview.index(r, 0).data(): overview.index(r, 1).data() for r in range(overview.rowCount())}
    assert shown["File"] == report["chain"][1]["path"]
    assert shown["Declared format"] == "qcow2 (backing record)"
    window.tabs.setCurrentWidget(window.fields)
    assert window.fields.hex.regions  # the link's own bytes, from its own child
    end = window.chain.model.nodes()[0].children[0].children[0].children[0]
    window.chain.tree.setCurrentIndex(window.chain.model.index_of(end))  # the end: the image's own report again
    assert window.link is None and window.title.text() == "top.qcow2"


def test_where_a_refused_chain_stops_and_the_allowed_folders(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    outside = tmp_path / "out\x1b[2J\u202eside"
    outside.mkdir()
    (outside / "base.raw").write_bytes(bytes(1 << 16))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    top = uploads / "top.qcow2"
    top.write_bytes(qcow2.qcow2(1 << 30, backing=f"../{outside.name}/base.raw", backing_format="raw"))
    (entry,) = window.add_files([str(top)])
    report = _follow(qtbot, window, entry)
    assert report["chain_end"]["reason"] == "outside-roots"
    rows = _rows(window)
    assert [row[0] for row in rows] == ["top.qcow2", "stopped: outside the allowed folders"]
    shown = [window.chain.end.text(), window.chain.summary.text(), *rows[1]]
    assert "leads outside the allowed folders" in window.chain.end.text()
    for text in shown:
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text), text

    window.apply_settings(replace(window.settings, allowed_roots=[str(outside)]))
    report = _follow(qtbot, window, entry)
    assert [Path(link["path"]).name for link in report["chain"]] == ["top.qcow2", "base.raw"]
    assert report["chain_end"]["reason"] == "base"


def test_inspecting_again_forgets_the_chain(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    calls = []

    async def follow(request: Any, roots: Any, max_depth: int, runner: Any) -> dict[str, Any]:
        calls.append((request.path, list(roots), max_depth))
        link = {"path": request.path, "verdict": "accept", "format": "qcow2", "named_as": None, "findings": []}
        end = {"reason": "base", "detail": "no backing file"}
        return {**link, "chain": [link], "chain_end": end, "chain_verdict": "accept"}

    fast_window.session.follow_fn = follow
    (entry,) = fast_window.add_files([str(images["clean"])])
    wait_done(qtbot, fast_window, count=1)
    _follow(qtbot, fast_window, entry)
    assert calls == [(str(images["clean"]), [], 16)]
    assert fast_window.chain.summary.text().startswith("Chain verdict: ACCEPT · 1 link ·")
    fast_window.reinspect()
    assert entry.chain is None
    assert fast_window.chain.summary.text() == "Not followed yet."
    fast_window.clear()
    fast_window.follow_chain()
    assert fast_window.statusBar().currentMessage() == "Select a disk image to follow its backing chain."
