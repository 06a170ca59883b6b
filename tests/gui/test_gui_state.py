"""Stale state (issue 18, item 4): counts after Delete and Close All, the newly opened image shown,
the row after a deleted one selected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gui.support import wait_done, write_images
from workbench.ui.main_window import MainWindow


def test_counts_go_with_the_images(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "in")
    fast_window.open_paths([str(images["clean"]), str(images["backing"])])
    wait_done(qtbot, fast_window)
    qtbot.waitUntil(lambda: fast_window.status_progress.text().startswith("2 files"))
    fast_window.list_view.selectAll()
    fast_window.remove_selected()
    assert fast_window.status_progress.text() == ""
    fast_window.open_paths([str(images["raw"])])
    wait_done(qtbot, fast_window)
    qtbot.waitUntil(lambda: fast_window.status_progress.text().startswith("1 file"))
    fast_window.clear()
    assert fast_window.status_progress.text() == ""


def test_a_newly_opened_image_is_shown(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "in")
    fast_window.open_paths([str(images["clean"])])
    fast_window.open_paths([str(images["raw"])])
    assert fast_window.current is not None and fast_window.current.path == str(images["raw"])
    assert [i.row() for i in fast_window.list_view.selectionModel().selectedRows()] == [1]
    wait_done(qtbot, fast_window)


def test_after_delete_the_next_row_is_selected(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "in")
    fast_window.open_paths([str(images["clean"]), str(images["backing"]), str(images["raw"])])
    wait_done(qtbot, fast_window)
    fast_window.select(fast_window.model.entries[0])
    fast_window.remove_selected()
    selected = fast_window.list_view.selectionModel().selectedRows()
    assert [i.row() for i in selected] == [0]
    assert fast_window.current is fast_window.model.entries[0]
    assert fast_window.current.path == str(images["backing"])
