"""Local servers for the remote-source tests: a stdlib HTTP server with switchable misbehaviour, and
moto's S3 server behind a WSGI layer that logs the body bytes of every answer (and can refuse, stall or
cut one). Each logs what it sent, so tests check the bytes transferred from the server's side."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = 64 * 1024
HUGE = 1 << 30  # the size a Range-ignoring server claims and would stream
STALL_SECONDS = 5.0
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


@dataclass
class Sent:
    """One answer as the server logged it: what was asked and how many body bytes went out."""

    method: str
    path: str
    range: str | None
    status: int
    body_bytes: int = 0
    finished: threading.Event = field(default_factory=threading.Event)


@dataclass
class ServerState:
    objects: dict[str, bytes] = field(default_factory=dict)
    mode: str = "honour"  # honour | ignore-range | stall | trickle | cut | huge | redirect-away | redirect-home
    honour_conditions: bool = True
    redirect_to: str = ""
    log: list[Sent] = field(default_factory=list)
    connections: list[socket.socket] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    after_get: Callable[[ServerState], None] | None = None  # called once each GET is answered (say, to replace)
    latency: float = 0.0  # seconds each GET waits before it is answered (the benchmark's network)

    def settled(self) -> list[Sent]:
        """The log, once every handler has finished writing its answer."""
        for entry in self.log:
            assert entry.finished.wait(10), "a handler is still writing"
        return self.log

    def body_bytes(self) -> int:
        return sum(entry.body_bytes for entry in self.settled())


@functools.lru_cache(maxsize=256)  # a bytes object caches its own hash: a hit costs no pass over the data
def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


class RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle waits for the client's delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.state.connections.append(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Quiet: the state's log is what tests read."""

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        state: ServerState = self.server.state
        sent = Sent("GET", self.path, self.headers.get("Range"), 0)
        state.log.append(sent)
        if state.latency:
            state.stop.wait(state.latency)
        try:
            self._serve(state, sent)
        finally:
            sent.finished.set()
            if state.after_get is not None:
                state.after_get(state)

    def _serve(self, state: ServerState, sent: Sent) -> None:
        mode = state.mode
        if mode == "stall":
            state.stop.wait(STALL_SECONDS)
            return
        if mode.startswith("redirect") and self.path.startswith("/moved"):
            target = state.redirect_to + self.path.removeprefix("/moved")
            return self._answer(sent, 302, {"Location": target, "Content-Length": "0"})
        if mode == "ignore-range":
            return self._stream_whole(sent)
        if self.path.startswith("/private"):
            return self._answer(sent, 403, {"Content-Length": "0"})
        data = state.objects.get(self.path.partition("?")[0])
        if data is None:
            return self._answer(sent, 404, {"Content-Length": "0"})
        headers = {"ETag": etag_of(data), "Last-Modified": formatdate(0, usegmt=True)}
        if state.honour_conditions and self.headers.get("If-Match") not in (None, headers["ETag"]):
            return self._answer(sent, 412, {"Content-Length": "0"})
        match = _RANGE.fullmatch(self.headers.get("Range") or "")
        if match is None:
            return self._answer(sent, 400, {"Content-Length": "0"})
        first, last = int(match[1]), min(int(match[2]), len(data) - 1)
        if first >= len(data):
            return self._answer(sent, 416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
        total = str(2**64) if mode == "huge" else str(len(data))
        headers |= {"Content-Range": f"bytes {first}-{last}/{total}", "Content-Length": str(last - first + 1)}
        body = data[first : last + 1]
        if mode == "trickle":  # headers at once, then one byte every 50 ms: never idle long enough to time out
            self._answer(sent, 206, headers)
            for byte in body:
                if state.stop.wait(0.05):
                    break
                self.wfile.write(bytes([byte]))
                sent.body_bytes += 1
            return
        if mode == "cut":  # the server dies halfway through the body
            self._answer(sent, 206, headers, body[: len(body) // 2])
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self._answer(sent, 206, headers, body)

    def _answer(self, sent: Sent, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        sent.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        sent.body_bytes += len(body)

    def _stream_whole(self, sent: Sent) -> None:
        """200 and a 1 GiB body, written until the client hangs up: what an ignored Range costs."""
        sent.status = 200
        self.send_response(200)
        self.send_header("Content-Length", str(HUGE))
        self.end_headers()
        zeros = bytes(CHUNK)
        try:
            while sent.body_bytes < HUGE:
                self.wfile.write(zeros)
                sent.body_bytes += CHUNK
        except OSError:
            self.close_connection = True


class RangeServer:
    """The stdlib HTTP server on 127.0.0.1 in a thread; ``url(path)`` names an object on it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.state = ServerState()
        self.httpd = ThreadingHTTPServer((host, 0), RangeHandler)
        self.httpd.daemon_threads = True
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def stop(self) -> None:
        """The server killed: no more connections, and the open ones cut."""
        self.state.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for conn in self.state.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@dataclass
class S3Faults:
    """What the WSGI layer in front of moto does to requests whose path ends with a given key."""

    deny: set[str] = field(default_factory=set)  # answered 403 AccessDenied, as S3 does
    stall: set[str] = field(default_factory=set)  # held STALL_SECONDS before moto answers
    cut: set[str] = field(default_factory=set)  # GET bodies cut halfway (the server dies mid-read)
    ignore_range: set[str] = field(default_factory=set)  # the Range header dropped: 200 and the whole object


class S3Server:
    """moto's S3 server (``moto[server]``) on 127.0.0.1, with a request log of body bytes sent."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        self.log: list[Sent] = []
        self.faults = S3Faults()
        self.stop_event = threading.Event()
        app = DomainDispatcherApplication(create_backend_app)
        self.server = make_server("127.0.0.1", 0, self._logged(app), threaded=True)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _logged(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
            sent = Sent(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("HTTP_RANGE"), 0)
            self.log.append(sent)
            try:
                yield from self._answer(app, environ, start_response, sent)
            finally:
                sent.finished.set()

        return wsgi

    def _answer(
        self,
        app: Callable[..., Iterable[bytes]],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        sent: Sent,
    ) -> Iterator[bytes]:
        key = sent.path.rsplit("/", 1)[-1]
        if key in self.faults.deny:
            sent.status = 403
            body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            yield body if sent.method != "HEAD" else b""
            return
        if key in self.faults.stall:
            self.stop_event.wait(STALL_SECONDS)
        if key in self.faults.ignore_range:
            environ.pop("HTTP_RANGE", None)
        captured: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            captured["status"] = int(status.split()[0])
            return start_response(status, headers, *rest)

        body = b"".join(app(environ, start))
        sent.status = captured.get("status", 0)
        cut = key in self.faults.cut and sent.method == "GET"
        if cut:
            body = body[: len(body) // 2]
        for start_at in range(0, len(body), CHUNK):  # counted once written: what really left
            piece = body[start_at : start_at + CHUNK]
            yield piece
            sent.body_bytes += len(piece) if sent.method != "HEAD" else 0
        if cut:
            raise ConnectionAbortedError("the server dies mid-body")

    def settled(self) -> list[Sent]:
        """The log, once every answer has been written (or abandoned by its client)."""
        for entry in self.log:
            assert entry.finished.wait(10), "an answer is still being written"
        return self.log

    def body_bytes(self, method: str = "GET") -> int:
        return sum(entry.body_bytes for entry in self.settled() if entry.method == method)

    def stop(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
