"""The interface every remote source offers, and the checks they share.

A ``Source`` opens a URL into a ``RemoteObject`` (size and identity pinned by the first request) whose
``read(offset, length)`` fetches exactly that range, conditional on the pinned identity, and lists a
prefix as a stream of ``Entry``. Nothing is ever fetched in full.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .errors import AbsurdSize, BadResponse, BadURL, BudgetExceeded, ImageChanged, NotFound, TimedOut, Unreachable
from .redact import redact

MAX_SIZE = 2**63 - 1  # the largest size any consumer's off_t can hold
MiB = 1 << 20
CHUNK = 256 * 1024  # bytes asked of a response body at a time
_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")
_DECIMAL = re.compile(r"-?[0-9]{1,20}")


@dataclass(frozen=True)
class Limits:
    """Timeouts and caps of one source. Every request ends within ``deadline`` seconds, whatever the server."""

    connect_timeout: float = 10.0  # seconds to establish a connection
    read_timeout: float = 30.0  # seconds one socket read may wait
    deadline: float = 120.0  # seconds one request may take end to end
    attempts: int = 3  # tries per request (S3: botocore's standard retries)
    max_read: int = 16 * MiB  # bytes one read() may ask for
    budget: int | None = None  # bytes one opened object may fetch in all (None: no cap besides max_read)
    max_redirects: int = 5
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)  # other hosts a redirect may lead to


@dataclass(frozen=True)
class Identity:
    """What pins an object at the first request: its ETag, its version id, else its Last-Modified date."""

    etag: str | None = None
    version: str | None = None
    last_modified: str | None = None

    def __str__(self) -> str:
        if self.version:
            return f"version {self.version}"
        if self.etag:
            return f"ETag {self.etag}"
        return f"Last-Modified {self.last_modified}" if self.last_modified else "unpinned (size only)"


@dataclass(frozen=True)
class Entry:
    """One object of a listing: its URL (as ``open`` takes it), its key, size and ETag."""

    url: str
    key: str
    size: int
    etag: str | None = None


def checked_size(url: str, value: object) -> int:
    """A size a server declared, as an int in 0..2^63-1; anything else is ``AbsurdSize``."""
    text = str(value).strip()
    if isinstance(value, bool) or not _DECIMAL.fullmatch(text):
        raise AbsurdSize(url, f"declared size {text[:32]!r}")
    size = int(text)
    if size < 0 or size > MAX_SIZE:
        raise AbsurdSize(url, f"declared size {size} is outside 0..2^63-1")
    return size


def parse_content_range(url: str, header: str) -> tuple[int, int, int]:
    """(first, last, total) of a ``Content-Range: bytes first-last/total`` header, checked."""
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if not match:
        raise BadResponse(url, f"Content-Range {header[:80]!r}")
    first, last, total = (checked_size(url, group) for group in match.groups())
    if first > last or last >= total:
        raise BadResponse(url, f"Content-Range {header[:80]!r} is not inside the object")
    return first, last, total


@contextmanager
def deleted_means_changed(url: str) -> Iterator[None]:
    """An object that vanished after it was pinned has changed (it was deleted or replaced)."""
    try:
        yield
    except NotFound as error:
        raise ImageChanged(url, f"gone since it was opened ({error.detail})") from None


def read_exactly(url: str, body: Any, count: int, deadline: Deadline) -> bytes:
    """``count`` bytes from a streaming body, chunk by chunk, within the deadline; never more."""
    parts: list[bytes] = []
    got = 0
    while got < count:
        deadline.remaining()
        chunk = body.read(min(CHUNK, count - got))
        if not chunk:
            raise Unreachable(url, f"connection closed after {got} of {count} bytes")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class Deadline:
    """The end of one request: a monotonic instant, and a watchdog that acts when it passes."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url = url
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; ``TimedOut`` when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimedOut(self.url, f"no answer within the {self.seconds:g} s deadline")
        return left

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def watchdog(self, on_expiry: Callable[[], None]) -> threading.Timer:
        """A started timer that calls ``on_expiry`` (e.g. shuts the socket) at the deadline; cancel it after."""
        timer = threading.Timer(max(0.0, self.end - time.monotonic()), on_expiry)
        timer.daemon = True
        timer.start()
        return timer


class RemoteObject(ABC):
    """An opened remote object: ``size`` and ``identity`` pinned, ranges fetched on demand."""

    def __init__(self, url: str, size: int, identity: Identity, limits: Limits) -> None:
        self._url = url  # may hold credentials: shown only through redact()
        self.size = size
        self.identity = identity
        self.limits = limits
        self.bytes_read = 0  # bytes of object data fetched so far

    @property
    def url(self) -> str:
        """The URL as it may be shown (redacted)."""
        return redact(self._url)

    def read(self, offset: int, length: int) -> bytes:
        """The bytes at ``offset``..``offset+length`` (fewer only past the end of the object).

        Raises ``ImageChanged`` when the object is no longer the one pinned at open, ``BudgetExceeded``
        past ``max_read`` or the budget, and another ``RemoteError`` for every other failure.
        """
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        if length > self.limits.max_read:
            raise BudgetExceeded(self._url, f"one read of {length} bytes; the cap is {self.limits.max_read}")
        count = max(0, min(offset + length, self.size) - offset)
        if count == 0:
            return b""
        budget = self.limits.budget
        if budget is not None and self.bytes_read + count > budget:
            raise BudgetExceeded(self._url, f"{self.bytes_read} + {count} bytes would pass the {budget}-byte budget")
        data = self._fetch(offset, count)
        self.bytes_read += len(data)
        return data

    @abstractmethod
    def _fetch(self, offset: int, count: int) -> bytes:
        """Exactly ``count`` bytes at ``offset`` (inside the object), conditional on ``identity``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (idempotent)."""

    def __enter__(self) -> RemoteObject:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url!r} size={self.size} {self.identity}>"


class Source(ABC):
    """Opens URLs of its schemes and lists prefixes."""

    schemes: tuple[str, ...] = ()

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    @abstractmethod
    def open(self, url: str) -> RemoteObject:
        """The object at ``url``, its size and identity pinned by this first request."""

    def list(self, prefix_url: str) -> Iterator[Entry]:
        """Every object under ``prefix_url``, streamed page by page (flat memory)."""
        raise BadURL(prefix_url, f"{type(self).__name__} cannot list a prefix")
