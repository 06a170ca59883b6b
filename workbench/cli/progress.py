"""``inspect --deep`` in a terminal: one progress line on standard error, redrawn in place and erased at the end.

Drawn only when standard error is a terminal: never into a pipe or a file (``--json > out`` keeps stdout
clean, and a log keeps no carriage returns), and so never in tests that capture it. The ``what`` text comes
from the engine child: escaped and capped like any image string.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, TextIO

from ..host.remote import url_file_name
from ..host.sources import is_remote
from ..render.textsafe import printable

WIDTH = 24  # cells of the bar itself


class TerminalProgress:
    """``on_progress`` for several inspections at once: the line shows the one that reported last."""

    def __init__(self, names: list[str], stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.names = [os.path.basename(url_file_name(name) if is_remote(name) else name) for name in names]
        self.drawn = False

    @staticmethod
    def wanted(stream: TextIO | None = None) -> bool:
        """Whether ``stream`` (standard error) is a terminal."""
        stream = stream or sys.stderr
        try:
            return stream.isatty()
        except (AttributeError, ValueError):  # closed, or not a real stream
            return False

    def callback(self, number: int) -> Any:
        """The ``on_progress`` of the ``number``-th image."""
        return lambda progress: self.draw(number, progress)

    def draw(self, number: int, progress: dict[str, Any]) -> None:
        done, total = progress["done"], progress["total"]
        share = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
        filled = int(share * WIDTH)
        bar = "#" * filled + "-" * (WIDTH - filled)
        name = self.names[number] if len(self.names) > 1 else ""
        what = printable(progress["what"], 40)
        line = f"[{bar}] {share * 100:3.0f}% {printable(name, 40) + ': ' if name else ''}{what}"
        columns = shutil.get_terminal_size((80, 24)).columns
        self.stream.write("\r\x1b[K" + line[: max(10, columns - 1)])
        self.stream.flush()
        self.drawn = True

    def erase(self) -> None:
        """Clear the line (the report that follows starts on a clean line)."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False
