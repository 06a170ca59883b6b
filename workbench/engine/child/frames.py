"""The fork server's socket frames, for the server (:mod:`.zygote`) and its client
(:class:`workbench.host.runner.ForkServerRunner`), which must not import the server's engine to speak to it.

A frame is a kind byte, the request id (8 bytes, little-endian), then the kind's body: no JSON to wrap and unwrap
around each request and exit code. The server's loop does as little as it can: every page it writes after a fork
is copied while its children share it (measured: ~10 fewer such faults per image than with JSON messages).
"""

from __future__ import annotations

REQUEST = b"R"  # parent -> server: the engine request's JSON; the image and the two pipes attached
KILL = b"K"  # parent -> server: kill that request's child; no body
STATUS = b"S"  # server -> parent: the child was reaped; its exit code (4 bytes, signed, little-endian)
ERROR = b"E"  # server -> parent: no child was made; why, in UTF-8
HEAD = 9  # bytes before the body
MAX_FRAME = 64 * 1024  # the largest frame the server reads (a batch's request that would not fit is not sent)


def frame(kind: bytes, ident: int, body: bytes = b"") -> bytes:
    return kind + ident.to_bytes(8, "little") + body


def parse(data: bytes) -> tuple[bytes, int, bytes]:
    """Kind, id and body of a frame (a frame shorter than its head has id 0 and an empty body)."""
    return data[:1], int.from_bytes(data[1:HEAD], "little"), data[HEAD:]


def status_body(code: int) -> bytes:
    return code.to_bytes(4, "little", signed=True)


def status_of(body: bytes) -> int | None:
    """A STATUS frame's exit code; None if the body is not one."""
    return int.from_bytes(body, "little", signed=True) if len(body) == 4 else None
