"""The parent's side of a remote image: the child's range requests answered from a ``RemoteObject``.

The child asks for each range on its stdout (``{"read": {"offset": O, "length": L}}``); :class:`RangeServer`
fetches it (in a thread: the sources block) and answers on the child's stdin with one frame: a tag byte,
an 8-byte big-endian length and the bytes: ``D`` the data, ``E`` a one-line, redacted error
(``engine/child/ranges.py`` is the other end). The parent holds its own cap on the bytes it serves, the
sum of the child's read budgets, whatever the child asks.

Each round trip to a store costs tens of milliseconds while a probe asks for a few bytes, so the parent
reads ahead: a range is fetched as the :data:`READ_AHEAD`-aligned window around it (within the object and
the cap), and the last :data:`CACHED_WINDOWS` windows answer later ranges without a request. The child still
gets exactly the bytes it asked for; the bytes fetched, read-ahead included, count against the cap.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, TypeGuard

from .sources import ImageChanged, RemoteError, RemoteObject

MAX_ERROR = 4096  # bytes of an error frame (the child refuses longer ones)
MAX_REQUESTS = 1 << 20  # ranges one child may ask for: its budgets bound the bytes, this the round trips
READ_AHEAD = 64 * 1024  # bytes of the aligned window fetched around a range
CACHED_WINDOWS = 16  # windows kept to answer later ranges (memory: 16 x max(64 KiB, one range))


def frame(tag: bytes, payload: bytes) -> bytes:
    return tag + len(payload).to_bytes(8, "big") + payload


def error_frame(message: str) -> bytes:
    return frame(b"E", message.encode("utf-8", "replace")[:MAX_ERROR])


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class RangeServer:
    """Serves one child's ranges of ``image``, fetching at most ``cap`` bytes in all; keeps the first failure."""

    def __init__(self, image: RemoteObject, cap: int, read_ahead: int = READ_AHEAD) -> None:
        self.image = image
        self.cap = cap
        self.read_ahead = max(1, read_ahead)
        self.served = 0  # bytes sent to the child
        self.fetched = 0  # bytes read from the store (read-ahead included)
        self.requests = 0
        self.error: str | None = None  # the first failure, one redacted line
        self.changed = False  # the failure is the object changing under the inspection
        self._windows: OrderedDict[int, bytes] = OrderedDict()  # start -> bytes, least recently used first

    async def answer(self, request: Any) -> bytes:
        """The frame answering one ``read`` request (any value the child sent)."""
        if self.error is not None:
            return error_frame(self.error)
        offset = request.get("offset") if isinstance(request, dict) else None
        length = request.get("length") if isinstance(request, dict) else None
        if not (_count(offset) and _count(length)):
            return self._fail("the engine asked for a malformed range")
        self.requests += 1
        if self.requests > MAX_REQUESTS:
            return self._fail(f"the engine asked for more than {MAX_REQUESTS} ranges")
        end = min(offset + length, self.image.size)
        data = self._cached(offset, end)
        if data is None:
            start, stop = self._window(offset, end)
            if self.fetched + stop - start > self.cap:
                return self._fail(f"the engine asked for more than the {self.cap} bytes its read budgets allow")
            try:
                window = await asyncio.to_thread(self.image.read, start, stop - start)
            except RemoteError as exc:  # its text is one redacted line
                self.changed = isinstance(exc, ImageChanged)
                return self._fail(str(exc))
            except Exception as exc:  # noqa: BLE001 - a source bug: its text may hold a URL, so only its type
                return self._fail(f"{self.image.url}: remote read failed ({type(exc).__name__})")
            self.fetched += len(window)
            self._keep(start, window)
            data = window[offset - start : end - start]
        self.served += len(data)
        return frame(b"D", data)

    def _window(self, offset: int, end: int) -> tuple[int, int]:
        """The aligned read-ahead window around ``[offset, end)``, shrunk to what the cap has left (never
        below the range itself)."""
        start = offset - offset % self.read_ahead
        stop = min(max(end, start + self.read_ahead), self.image.size)
        room = self.cap - self.fetched
        if stop - start > room:
            start, stop = offset, max(end, min(stop, offset + room))
        return start, stop

    def _cached(self, offset: int, end: int) -> bytes | None:
        for start, window in self._windows.items():
            if start <= offset and end <= start + len(window):
                self._windows.move_to_end(start)
                return window[offset - start : end - start]
        return None if offset < end else b""

    def _keep(self, start: int, window: bytes) -> None:
        self._windows[start] = window
        self._windows.move_to_end(start)
        while len(self._windows) > CACHED_WINDOWS:
            self._windows.popitem(last=False)

    def _fail(self, message: str) -> bytes:
        self.error = message.replace("\n", " ")
        return error_frame(self.error)
