"""The parent's side of a remote image: the child's range requests answered from a ``RemoteObject``.

The child asks for each range on its stdout (``{"read": {"offset": O, "length": L}}``); :class:`RangeServer`
fetches it (in a thread: the sources block) and answers on the child's stdin with one frame: a tag byte,
an 8-byte big-endian length and the bytes: ``D`` the data, ``E`` a one-line, redacted error
(``engine/child/ranges.py`` is the other end). The parent holds its own cap on the bytes it serves, the
sum of the child's read budgets, whatever the child asks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .sources import RemoteError, RemoteObject

MAX_ERROR = 4096  # bytes of an error frame (the child refuses longer ones)
MAX_REQUESTS = 1 << 20  # ranges one child may ask for: its budgets bound the bytes, this the round trips


def frame(tag: bytes, payload: bytes) -> bytes:
    return tag + len(payload).to_bytes(8, "big") + payload


def error_frame(message: str) -> bytes:
    return frame(b"E", message.encode("utf-8", "replace")[:MAX_ERROR])


class RangeServer:
    """Serves one child's ranges of ``image`` up to ``cap`` bytes in all; keeps the first failure."""

    def __init__(self, image: RemoteObject, cap: int) -> None:
        self.image = image
        self.cap = cap
        self.served = 0  # bytes sent to the child
        self.requests = 0
        self.error: str | None = None  # the first failure, one redacted line

    async def answer(self, request: Any) -> bytes:
        """The frame answering one ``read`` request (any value the child sent)."""
        if self.error is not None:
            return error_frame(self.error)
        offset = request.get("offset") if isinstance(request, dict) else None
        length = request.get("length") if isinstance(request, dict) else None
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (offset, length)):
            return self._fail("the engine asked for a malformed range")
        self.requests += 1
        if self.requests > MAX_REQUESTS:
            return self._fail(f"the engine asked for more than {MAX_REQUESTS} ranges")
        if self.served + length > self.cap:
            return self._fail(f"the engine asked for more than the {self.cap} bytes its read budgets allow")
        try:
            data = await asyncio.to_thread(self.image.read, offset, length)
        except RemoteError as exc:  # its text is one redacted line
            return self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - a source bug: its text may hold a URL, so only its type
            return self._fail(f"{self.image.url}: remote read failed ({type(exc).__name__})")
        self.served += len(data)
        return frame(b"D", data)

    def _fail(self, message: str) -> bytes:
        self.error = message.replace("\n", " ")
        return error_frame(self.error)
