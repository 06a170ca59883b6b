"""``https://`` and ``http://`` objects through ``http.client``: Range requests on one kept-alive connection.

The standard library gives full control of what is sent and read: the status is checked before a single
body byte is read (a server that ignores Range is never drained), every request runs under a watchdog
that shuts the socket at the deadline, and redirects are followed only to the same origin or an
allowed host, never from https to http.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import NamedTuple
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

from .base import (
    Deadline,
    Identity,
    Limits,
    RemoteObject,
    Source,
    checked_size,
    deleted_means_changed,
    parse_content_range,
    read_exactly,
)
from .errors import (
    AccessDenied,
    BadResponse,
    BadURL,
    ImageChanged,
    NotFound,
    RangeIgnored,
    RedirectRefused,
    RemoteError,
    TimedOut,
    Unreachable,
)
from .redact import redact

REDIRECTS = {301, 302, 303, 307, 308}
_EMPTY_RANGE = re.compile(r"bytes \*/([0-9]+)")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadURL(url, "expected http:// or https:// with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadURL(url, "bad port") from None
    return Origin(parts.scheme, parts.hostname, port)


class HTTPSource(Source):
    """Plain web servers, presigned URLs, CDNs: anything that answers Range requests with 206."""

    schemes = ("http", "https")

    def __init__(self, limits: Limits | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(limits)
        self.ssl_context = ssl_context or ssl.create_default_context()

    def open(self, url: str) -> HTTPObject:
        link = Link(url, self.limits, self.ssl_context)
        try:
            size, identity = link.probe()
        except BaseException:
            link.close()
            raise
        return HTTPObject(url, size, identity, self.limits, link)


class HTTPObject(RemoteObject):
    """One HTTP object: every GET carries its Range and If-Match (strong ETag) or If-Unmodified-Since."""

    def __init__(self, url: str, size: int, identity: Identity, limits: Limits, link: Link) -> None:
        super().__init__(url, size, identity, limits)
        self._link = link

    def _fetch(self, offset: int, count: int) -> bytes:
        headers = {"Range": f"bytes={offset}-{offset + count - 1}"}
        if self.identity.etag:
            headers["If-Match"] = self.identity.etag
        elif self.identity.last_modified:
            headers["If-Unmodified-Since"] = self.identity.last_modified
        with deleted_means_changed(self._url), self._link.exchange(headers) as (answer, deadline):
            if answer.status == 416:
                raise ImageChanged(self._url, "the range is no longer inside the object")
            first, last, total = self._link.partial(answer)
            now = identity_of(answer)
            if total != self.size or (self.identity.etag, self.identity.last_modified) != (now.etag, now.last_modified):
                raise ImageChanged(self._url, f"now size {total}, {now}; pinned size {self.size}, {self.identity}")
            if (first, last) != (offset, offset + count - 1) or answer.length not in (None, count):
                raise BadResponse(self._url, f"asked bytes {offset}-{offset + count - 1}, got {first}-{last}")
            return read_exactly(self._url, answer, count, deadline)

    def close(self) -> None:
        self._link.close()


def identity_of(answer: http.client.HTTPResponse) -> Identity:
    """A response's strong ETag (a weak one cannot be used with If-Match) and Last-Modified."""
    etag = answer.getheader("ETag")
    strong = None if not etag or etag.startswith("W/") else etag
    return Identity(etag=strong, last_modified=answer.getheader("Last-Modified"))


class Link:
    """The connection of one object: redirects followed once, then ranges asked at the final URL."""

    def __init__(self, url: str, limits: Limits, ssl_context: ssl.SSLContext) -> None:
        self.first = origin_of(url)
        self.url = url
        self.limits = limits
        self.ssl_context = ssl_context
        parts = urlsplit(url)
        self.auth = None
        if parts.username is not None:  # userinfo: sent as Basic auth to the first origin only
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.auth = "Basic " + base64.b64encode(pair).decode("ascii")
        self.conn: http.client.HTTPConnection | None = None
        self.conn_origin: Origin | None = None
        self._lock = threading.Lock()

    def probe(self) -> tuple[int, Identity]:
        """The size and identity, from a one-byte Range request (HEAD is refused by presigned GET URLs)."""
        with self.exchange({"Range": "bytes=0-0"}) as (answer, deadline):
            empty = _EMPTY_RANGE.fullmatch((answer.getheader("Content-Range") or "").strip())
            if answer.status == 416 and empty and checked_size(self.url, empty[1]) == 0:
                return 0, identity_of(answer)
            first, last, total = self.partial(answer)
            if (first, last) != (0, 0):
                raise BadResponse(self.url, f"asked byte 0, got {first}-{last}")
            read_exactly(self.url, answer, 1, deadline)
            return total, identity_of(answer)

    def partial(self, answer: http.client.HTTPResponse) -> tuple[int, int, int]:
        """The Content-Range of a 206 answer; any other status is the matching error, its body unread."""
        status = answer.status
        if status in (404, 410):
            raise NotFound(self.url, f"HTTP {status}")
        if status in (401, 403):
            raise AccessDenied(self.url, f"HTTP {status}")
        if status == 412:
            raise ImageChanged(self.url, "HTTP 412: the pinned ETag or date no longer matches")
        if status == 200:
            raise RangeIgnored(self.url, f"HTTP 200 with Content-Length {answer.getheader('Content-Length')}")
        if status != 206:
            raise RemoteError(self.url, f"HTTP {status}")
        encoding = (answer.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise BadResponse(self.url, f"Content-Encoding {encoding} (ranges of encoded bytes)")
        return parse_content_range(self.url, answer.getheader("Content-Range") or "")

    @contextmanager
    def exchange(self, headers: dict[str, str]) -> Iterator[tuple[http.client.HTTPResponse, Deadline]]:
        """One GET (redirects followed) under a watchdog; the connection is kept only if fully read."""
        with self._lock:
            deadline = Deadline(self.url, self.limits.deadline)
            fired = threading.Event()

            def cut() -> None:
                fired.set()
                self._shutdown()

            timer = deadline.watchdog(cut)
            answer = None
            try:
                answer = self._follow(headers, deadline)
                yield answer, deadline
            except RemoteError:
                if fired.is_set():  # the watchdog's shutdown looks like an early end of the body
                    raise self._timed_out() from None
                raise
            except (OSError, http.client.HTTPException) as error:
                raise self._translated(error, fired.is_set()) from None
            finally:
                timer.cancel()
                if answer is None or not answer.isclosed() or fired.is_set():
                    self.close()

    def _follow(self, headers: dict[str, str], deadline: Deadline) -> http.client.HTTPResponse:
        url = self.url
        for _ in range(self.limits.max_redirects + 1):
            answer = self._send(url, headers, deadline)
            if answer.status not in REDIRECTS:
                self.url = url  # later ranges go straight to the final location
                return answer
            self.close()  # the redirect's body is never read
            target = urljoin(url, answer.getheader("Location") or "")
            self._check_redirect(url, target)
            url = target
        raise RedirectRefused(self.url, f"more than {self.limits.max_redirects} redirects")

    def _check_redirect(self, url: str, target: str) -> None:
        here = origin_of(url)
        try:
            there = origin_of(target)
        except BadURL:
            raise RedirectRefused(url, f"to {redact(target)}: not http(s)") from None
        if here.scheme == "https" and there.scheme != "https":
            raise RedirectRefused(url, f"to {redact(target)}: from https down to http")
        if there != here and there.host not in {host.lower() for host in self.limits.allowed_hosts}:
            raise RedirectRefused(url, f"to {redact(target)}: another host (allow it with allowed_hosts)")

    def _send(self, url: str, headers: dict[str, str], deadline: Deadline) -> http.client.HTTPResponse:
        origin = origin_of(url)
        parts = urlsplit(url)
        sent = {"Accept-Encoding": "identity", "User-Agent": "disk-image-workbench", **headers}
        if self.auth and origin == self.first:
            sent["Authorization"] = self.auth
        reused = self.conn is not None and self.conn_origin == origin
        conn = self._connection(origin, deadline)
        try:
            conn.request("GET", request_target(parts), headers=sent)
            return conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:  # a kept-alive connection the server closed meanwhile: one fresh try
                raise
        self.close()
        conn = self._connection(origin, deadline)
        conn.request("GET", request_target(parts), headers=sent)
        return conn.getresponse()

    def _connection(self, origin: Origin, deadline: Deadline) -> http.client.HTTPConnection:
        if self.conn is not None and self.conn_origin == origin:
            return self.conn
        self.close()
        timeout = min(self.limits.connect_timeout, deadline.remaining())
        if origin.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                origin.host, origin.port, timeout=timeout, context=self.ssl_context
            )
        else:
            conn = http.client.HTTPConnection(origin.host, origin.port, timeout=timeout)
        self.conn, self.conn_origin = conn, origin
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(self.limits.read_timeout)
        return conn

    def _shutdown(self) -> None:
        """The watchdog: wake whatever read is blocked on the socket."""
        sock = self.conn.sock if self.conn is not None else None
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _timed_out(self) -> TimedOut:
        return TimedOut(self.url, f"no complete answer within the {self.limits.deadline:g} s deadline")

    def _translated(self, error: Exception, deadline_passed: bool) -> RemoteError:
        if deadline_passed:
            return self._timed_out()
        if isinstance(error, TimeoutError):
            return TimedOut(self.url, "connect or read timeout")
        if isinstance(error, http.client.InvalidURL):
            return BadURL(self.url, "not a valid request target")
        if isinstance(error, http.client.IncompleteRead | ConnectionResetError | BrokenPipeError):
            return Unreachable(self.url, "connection lost mid-read")
        if isinstance(error, http.client.RemoteDisconnected):
            return Unreachable(self.url, "connection closed without an answer")
        if isinstance(error, http.client.HTTPException):
            return BadResponse(self.url, type(error).__name__)
        if isinstance(error, ssl.SSLError):
            return Unreachable(self.url, f"TLS: {error.reason}")
        return Unreachable(self.url, getattr(error, "strerror", None) or type(error).__name__)

    def close(self) -> None:
        conn, self.conn, self.conn_origin = self.conn, None, None
        if conn is not None:
            conn.close()


def request_target(parts: SplitResult) -> str:
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    return f"{path}?{parts.query}" if parts.query else path
