"""The child's side of a remote image: byte ranges asked of the parent over the child's own pipes.

The child has no network and no image descriptor. For each range it writes one line on stdout,
``{"read": {"offset": O, "length": L}}``, and reads the parent's answer on stdin: a frame of one tag byte,
an 8-byte big-endian length and that many bytes: tag ``D`` the data (at most ``L`` bytes; fewer only past
the end of the object), tag ``E`` a one-line error (UTF-8, at most :data:`MAX_ERROR` bytes). After an error
every later read fails at once with the same error, and nothing more is asked: the report is a failure.
Only ``read`` on fd 0 and ``write`` on fd 1 are used, which the seccomp filter already allows.
"""

from __future__ import annotations

import json
import os

from ..reader import SourceFailed

HEADER = 9  # tag byte + 8-byte length
MAX_ERROR = 4096


class PipeImage:
    """A remote image of ``size`` bytes read through the parent: ``pread`` as :class:`engine.reader.Reader` wants it."""

    def __init__(self, size: int, stdin: int = 0, stdout: int = 1, pending: bytes = b"") -> None:
        self.size = size
        self._in = stdin
        self._out = stdout
        self._pending = bytearray(pending)  # bytes read past the request line (none when the parent waits)
        self.error: str | None = None

    def pread(self, length: int, offset: int) -> bytes:
        if self.error is not None:
            raise SourceFailed(self.error)
        if length <= 0 or offset >= self.size:
            return b""
        line = json.dumps({"read": {"offset": offset, "length": length}}, separators=(",", ":")).encode() + b"\n"
        view = memoryview(line)
        while view:
            view = view[os.write(self._out, view) :]
        header = self._exactly(HEADER)
        tag, count = header[:1], int.from_bytes(header[1:], "big")
        if tag == b"D" and count <= length:
            return self._exactly(count)
        if tag == b"E" and count <= MAX_ERROR:
            self.error = self._exactly(count).decode("utf-8", "replace").replace("\n", " ") or "remote read failed"
        else:
            self.error = f"bad answer from the parent (tag {tag!r}, {count} bytes for a {length}-byte range)"
        raise SourceFailed(self.error)

    def _exactly(self, count: int) -> bytes:
        """``count`` bytes from stdin (``count`` is already capped by the caller)."""
        while len(self._pending) < count:
            chunk = os.read(self._in, max(65536, count - len(self._pending)))
            if not chunk:
                self.error = "the parent closed the pipe mid-answer"
                raise SourceFailed(self.error)
            self._pending += chunk
        data = bytes(self._pending[:count])
        del self._pending[:count]
        return data
