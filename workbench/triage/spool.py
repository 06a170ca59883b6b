"""Full reports kept on disk while a batch runs, so a table of thousands of rows holds only summaries."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import zlib
from typing import Any

from ..schema import ReportLike
from .outputs import KINDS


class Spool:
    """Full reports on disk, one compressed JSON record each, read back by ``(offset, length)``.

    Written from the UI thread only; read with ``pread`` (which leaves the file position alone) from an
    export thread. The file has no name and is gone once closed.
    """

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(prefix="workbench-triage-")  # noqa: SIM115 (closed in close())
        self.size = 0
        self._readers = 0
        self._closing = False
        self._lock = threading.Lock()

    def add(self, report: ReportLike) -> tuple[int, int]:
        data = zlib.compress(json.dumps(report, ensure_ascii=True).encode(), 1)
        self.file.write(data)
        self.file.flush()
        where = (self.size, len(data))
        self.size += len(data)
        return where

    def read(self, where: tuple[int, int]) -> dict[str, Any]:
        offset, length = where
        return json.loads(zlib.decompress(os.pread(self.file.fileno(), length, offset)))

    def open_reader(self) -> bool:
        """Count a reader in (``False`` once closing); the file closes when the last one leaves."""
        with self._lock:
            if self._closing:
                return False
            self._readers += 1
            return True

    def close_reader(self) -> None:
        with self._lock:
            self._readers -= 1
            last = self._closing and not self._readers
        if last:
            self.file.close()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            idle = not self._readers
        if idle:
            self.file.close()


def write_export(spool: Spool, rows: list[tuple[tuple[int, int], dict[str, Any]]], kind: str, path: str) -> int:
    """Write ``rows`` (spool location, summary) with the triage writer ``kind``; blocking: run it in a thread."""
    if not spool.open_reader():
        raise OSError("the triage window was closed")
    try:
        output = KINDS[kind](path)
        try:
            for where, summary in rows:
                output.write(spool.read(where), summary)
        finally:
            output.close()
    finally:
        spool.close_reader()
    return output.count
