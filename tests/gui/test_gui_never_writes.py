"""The window never writes an image: every byte, size, modification time and change time stay as they were
(the command line's side, with traces of every process: :mod:`tests.test_never_writes`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gui.support import wait_done
from tests.test_never_writes import _one_seed_per_format, state
from workbench.ui.main_window import MainWindow


def test_the_window_never_writes_an_image(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, data in _one_seed_per_format():
        (folder / name).write_bytes(data)
    before = state(folder)
    window.add_files(sorted(str(p) for p in folder.iterdir()))
    entries = wait_done(qtbot, window)
    assert len(entries) == len(before)
    assert all(entry.report and entry.report["sandbox"]["rlimits"].startswith("on") for entry in entries)
    assert state(folder) == before
