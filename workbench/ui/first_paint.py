"""When the window's first frame is on screen: the moment start-up timing ends and deferred work may begin.

The first paint event of a top-level widget comes before its children's, in the same repaint; a zero
timer started there runs once that repaint (the whole frame) has been painted and flushed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
from PySide6.QtWidgets import QWidget


class FirstPaint(QObject):
    """Calls each function of :meth:`then` once ``window``'s first frame is painted (at once if it was)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.at: float | None = None  # time.perf_counter() when the first frame was complete
        self._then: list[Callable[[], None]] = []
        self._seen = False
        window.installEventFilter(self)

    def then(self, function: Callable[[], None]) -> None:
        if self.at is None:
            self._then.append(function)
        else:
            function()

    def wait(self, limit_ms: int = 2000) -> None:
        """Run Qt's events until the first frame is painted, or for ``limit_ms`` at most."""
        if self.at is not None:
            return
        local = QEventLoop()
        limit = QTimer()
        limit.setSingleShot(True)
        limit.timeout.connect(local.quit)
        self.then(local.quit)
        limit.start(limit_ms)
        local.exec()
        limit.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.window and event.type() == QEvent.Type.Paint and not self._seen:
            self._seen = True
            self.window.removeEventFilter(self)
            QTimer.singleShot(0, self._painted)
        return False

    def _painted(self) -> None:
        self.at = time.perf_counter()
        functions, self._then = self._then, []
        for function in functions:
            function()
