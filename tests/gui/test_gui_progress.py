"""The progress of an on-demand inspection (Deep check, Guest view): the child's ``{"done", "total", "what"}``
lines, through ``Request.on_progress``, move a determinate bar; ``what`` is shown plain and capped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt

from tests.gui.support import WAIT_MS, inspect_in_process, wait_done, write_images
from workbench import inspector
from workbench.ui.load_bar import STEPS, LoadBar, progress_text
from workbench.ui.main_window import MainWindow


class SteppedRunner:
    """A stand-in engine whose extended inspections report progress, then wait until the test lets them end."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str]] = []
        self.release = asyncio.Event()
        self.step = asyncio.Event()

    async def __call__(self, request: inspector.Request) -> dict[str, Any]:
        if request.on_progress is not None:
            for done, total, what in self.calls:
                request.on_progress({"done": done, "total": total, "what": what})
                self.step.clear()
                await self.step.wait()
            await self.release.wait()
        return await inspect_in_process(request)


def test_the_bar_is_busy_then_follows_the_childs_progress_plainly() -> None:
    assert progress_text({"done": 1 << 40, "total": 4 << 40, "what": "guest mapping"}) == "guest mapping: 25 %"
    assert progress_text({"done": 5, "total": 0, "what": "done"}) == "done: 100 %"


def test_a_deep_check_moves_a_determinate_bar_and_cancel_stops_it(
    fast_window: MainWindow, qtbot: Any, tmp_path: Path
) -> None:
    runner = SteppedRunner()
    hostile = "\x1b[2J<b>L2</b>\u202e" + "x" * 500
    runner.calls = [(0, 1 << 40, "metadata tables"), (3 << 38, 1 << 40, hostile)]
    fast_window.session.inspect_fn = runner
    fast_window.open_paths([str(write_images(tmp_path)["clean"])], remember=False)
    (entry,) = wait_done(qtbot, fast_window, 1)
    fast_window.deep_check(entry)
    bar: LoadBar = fast_window.allocation.bar
    qtbot.waitUntil(lambda: bar.busy.maximum() == STEPS, timeout=WAIT_MS)
    assert bar.busy.isVisible() and bar.cancel.isVisible() and bar.busy.value() == 0
    assert bar.message.text().endswith("metadata tables: 0 %")
    runner.step.set()
    qtbot.waitUntil(lambda: bar.busy.value() == 750, timeout=WAIT_MS)
    text = bar.message.text()
    assert bar.message.textFormat() == Qt.TextFormat.PlainText
    assert "\\x1b[2J<b>L2</b>\\u202e" in text and "\x1b" not in text and text.endswith(": 75 %")
    assert len(text) < len(hostile)  # capped
    fast_window._show_entry(entry)  # a refresh of the page keeps the fraction
    assert bar.busy.value() == 750 and bar.busy.maximum() == STEPS
    qtbot.mouseClick(bar.cancel, Qt.MouseButton.LeftButton, pos=QPoint(4, 4))
    qtbot.waitUntil(lambda: entry not in fast_window.session.loads, timeout=WAIT_MS)
    assert entry not in fast_window.session.fractions and not bar.busy.isVisible()
    assert "deep" not in entry.extras


def test_a_guest_load_shows_its_progress_on_the_guest_tab(fast_window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    runner = SteppedRunner()
    runner.calls = [(1, 4, "partition table")]
    fast_window.session.inspect_fn = runner
    fast_window.open_paths([str(write_images(tmp_path)["raw"])], remember=False)
    (entry,) = wait_done(qtbot, fast_window, 1)
    fast_window.tabs.setCurrentWidget(fast_window.guest)  # the tab asks for the guest view itself
    bar = fast_window.guest.bar
    qtbot.waitUntil(lambda: bar.busy.maximum() == STEPS and bar.busy.value() == 250, timeout=WAIT_MS)
    assert bar.message.text().endswith("partition table: 25 %")
    assert fast_window.allocation.bar.busy.maximum() == 0  # the other page's bar is not this load's
    runner.step.set()
    runner.release.set()
    qtbot.waitUntil(lambda: entry not in fast_window.session.loads, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "guest" in (entry.report or {}), timeout=WAIT_MS)
    assert not bar.busy.isVisible()
