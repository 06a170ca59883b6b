"""The window's garbage collector runs on the GUI thread only (workbench/ui/main_thread_gc.py)."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

from workbench.ui.main_thread_gc import MainThreadCollector


class Cyclic:
    def __init__(self) -> None:
        self.me = self


def test_cycles_are_collected_by_the_timer_on_the_gui_thread_not_by_other_threads(qtbot: Any) -> None:
    collector = MainThreadCollector(interval_ms=10)
    try:
        assert not gc.isenabled()
        garbage = Cyclic()
        gone = weakref.ref(garbage)
        del garbage

        kept: list[list[int]] = []

        def allocate() -> None:  # a worker thread's allocations pass gen 0's threshold; they must not free it
            kept.extend([i] for i in range(5 * gc.get_threshold()[0]))

        worker = threading.Thread(target=allocate)
        worker.start()
        worker.join()
        assert gc.get_count()[0] > gc.get_threshold()[0]
        assert gone() is not None  # automatic collection is off: the worker's allocations freed nothing
        qtbot.waitUntil(lambda: gone() is None, timeout=5_000)  # the GUI thread's timer collected it
    finally:
        collector.stop()
    assert gc.isenabled()


def test_nothing_is_collected_before_a_threshold_is_passed(qtbot: Any) -> None:
    collector = MainThreadCollector(interval_ms=60_000)
    try:
        gc.collect()
        assert collector.collect() == 0
    finally:
        collector.stop()
