"""Python's cyclic garbage collector, run on the GUI thread only.

The collector runs in whichever thread happens to allocate when a generation's count passes its threshold.
The window inspects through worker threads (``host.open.off_loop`` opens and stats files off the event loop),
so a closed window or dialog left in a reference cycle could be freed there, destroying Qt objects outside
the GUI thread, while that thread is inside Qt's event processing: a crash. This object turns automatic
collection off and collects from a timer on the GUI thread, by the same per-generation thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 250


class MainThreadCollector(QObject):
    """Collects garbage on the thread that created it (the GUI thread), every :data:`INTERVAL_MS`."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(interval_ms)

    def collect(self) -> int:
        """Collect the oldest generation whose count passed its threshold (younger ones with it); returns
        what ``gc.collect`` found, or 0 when nothing was due."""
        counts = gc.get_count()
        due = [gen for gen in range(3) if counts[gen] > self.thresholds[gen]]
        return gc.collect(max(due)) if due and counts[0] > self.thresholds[0] else 0

    def stop(self) -> None:
        """Give collection back to the interpreter."""
        self.timer.stop()
        gc.enable()
