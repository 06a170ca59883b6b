"""The parent's half of the engine protocol that needs no event loop, shared by the ``asyncio`` runners
(:mod:`workbench.host.runner`) and the synchronous single-image path (:mod:`workbench.host.direct`): what a
child is asked, and how its untrusted stdout is split, decoded and checked (how it is started:
:mod:`workbench.host.spawn`). The sandbox's layer names and the findings are imported when a reply is checked,
not before ``workbench inspect FILE`` sends its request.
"""

from __future__ import annotations

import json
import os

from ..records import Record
from ..schema import DEFAULT_DEEP_BUDGET, DEFAULT_GUEST_BUDGET, MAX_INT, REPLY_CAP
from .open import InspectError
from .spawn import engine_command as engine_command  # re-exported: the runners take these from here
from .spawn import kill_group as kill_group
from .spawn import spawn_options as spawn_options

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..engine.child import winjob
    from .ranges import RangeServer

STDERR_CAP = 64 << 10
CONTROL_CAP = 4096  # a line the child sends between its layer line and its reply ({"read": ...}, {"progress": ...})
_SIGNALS = {
    "SIGSYS": "killed by the sandbox for a forbidden system call (SIGSYS)",
    "SIGXCPU": "stopped at its CPU time limit (SIGXCPU)",
    "SIGKILL": "killed (SIGKILL)",
}
_CHANGES = (("size", "st_size"), ("modification time", "st_mtime_ns"), ("status change time", "st_ctime_ns"))


class EngineOptions(Record):
    """How a child inspects: ``include_bytes``, the hex of what was read (the window's hex view); ``guest``, the
    guest view (report key ``guest``) reading at most ``guest_budget`` guest bytes; ``deep``, deep inspection
    (report key ``deep``) reading at most ``deep_budget`` metadata bytes; ``on_progress``, called with each valid
    ``{"done", "total", "what"}`` line as it comes; ``ranges``, for a remote image, answers the child's
    ``{"read": ...}`` lines."""

    __slots__ = (
        "timeout",
        "reply_cap",
        "require_layers",
        "include_bytes",
        "guest",
        "guest_budget",
        "deep",
        "deep_budget",
        "on_progress",
        "ranges",
    )

    def __init__(
        self,
        timeout: float = 20.0,
        reply_cap: int = REPLY_CAP,
        require_layers: list[str] | None = None,
        include_bytes: bool = True,
        guest: bool = False,
        guest_budget: int = DEFAULT_GUEST_BUDGET,
        deep: bool = False,
        deep_budget: int = DEFAULT_DEEP_BUDGET,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        ranges: RangeServer | None = None,
    ) -> None:
        self.timeout = timeout
        self.reply_cap = reply_cap
        self.require_layers: list[str] = [] if require_layers is None else require_layers
        self.include_bytes = include_bytes
        self.guest = guest
        self.guest_budget = guest_budget
        self.deep = deep
        self.deep_budget = deep_budget
        self.on_progress = on_progress
        self.ranges = ranges


class ChildOutcome(Record):
    """What a child left: its exit code (negative: the signal that ended it), stdout and stderr."""

    __slots__ = ("returncode", "out", "err")

    def __init__(self, returncode: int | None, out: bytes, err: bytes) -> None:
        self.returncode = returncode
        self.out = out
        self.err = err


def confine_on_windows(request: dict[str, Any], pid: int) -> tuple[dict[str, Any], winjob.Job]:
    """Put the new child in a job object before it gets its request (it reads nothing else before that), and
    tell it the image's handle and the job's status."""
    import msvcrt

    from ..engine.child import winjob

    job = winjob.confine(pid)
    if "fd" not in request:  # a remote image: no handle
        return {**request, "job": job.status}, job
    handle = msvcrt.get_osfhandle(request["fd"])  # type: ignore[attr-defined,unused-ignore]  # Windows only
    return {**request, "handle": handle, "job": job.status}, job


def _control(line: bytes) -> tuple[str, Any] | None:
    """``(kind, value)`` of a line that is one message to the parent (``{"read": ...}``, ``{"progress": ...}``),
    else None: the line is part of the reply."""
    if len(line) > CONTROL_CAP or not line.startswith(b'{"'):
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if isinstance(message, dict) and len(message) == 1:
        kind, value = next(iter(message.items()))
        if kind in ("read", "progress"):
            return kind, value
    return None


class StdoutLines:
    """The child's stdout as a stream of lines, fed as it comes: after the layer line, each
    ``{"read"|"progress": ...}`` line is a message for the caller to dispatch; everything else (the layer line
    and the reply) is kept, within ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._out = bytearray()
        self._pending = bytearray()
        self._searched = 0  # bytes of ``_pending`` known to hold no newline

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        """The messages completed by ``chunk``, in order; InspectError past the cap."""
        messages = []
        self._pending += chunk
        while (end := self._pending.find(b"\n", self._searched)) >= 0:
            line = bytes(self._pending[:end])
            del self._pending[: end + 1]
            self._searched = 0
            message = _control(line) if self._out else None  # the layer line comes first, and is no message
            if message is None:
                self._out += line + b"\n"
            else:
                messages.append(message)
        self._searched = len(self._pending)
        if len(self._out) + len(self._pending) > self.cap:
            raise InspectError(f"engine reply larger than {self.cap} bytes: refused")
        return messages

    def kept(self) -> bytes:
        """The layer line and the reply, as :func:`decode_reply` takes them."""
        return bytes(self._out + self._pending)


def show_progress(value: Any, options: EngineOptions) -> None:
    """Hand a ``{"progress": ...}`` line's value, when valid, to ``options.on_progress``."""
    progress = progress_of(value)
    if progress is not None and options.on_progress is not None:
        options.on_progress(progress)


def local_message(kind: str, value: Any, options: EngineOptions) -> None:
    """A child's message that needs no answer: progress is shown; a byte range has nobody to serve it."""
    if kind != "progress":
        raise InspectError("engine asked for a byte range of an image that is not remote")
    show_progress(value, options)


def too_large(what: str, cap: int) -> InspectError:
    return InspectError(f"engine {what} larger than {cap} bytes: refused")


def exit_reason(returncode: int, stderr: bytes) -> str:
    """One line saying how a child ended without a usable reply."""
    if returncode < 0:
        import signal  # a child that ended badly only

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"engine {_SIGNALS.get(name, f'crashed ({name})')}"
    last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return f"engine exited with status {returncode} {last[0][:200]}".rstrip()


def _sandbox_line(line: bytes) -> dict[str, str] | None:
    """The layer report the child writes before it reads the image, as capped text (a copy of its own: the
    children of one fork server all send the same line, decoded once)."""
    if line != _last_line[0]:
        _last_line[:] = [line, _decoded_line(line)]
    layers = _last_line[1]
    return None if layers is None else dict(layers)


def _decoded_line(line: bytes) -> dict[str, str] | None:
    try:
        head = json.loads(line)
    except (ValueError, RecursionError):
        return None
    layers = head.get("sandbox") if isinstance(head, dict) else None
    if not isinstance(layers, dict):
        return None
    return {str(name)[:64]: str(status)[:300] for name, status in list(layers.items())[:32]}


_last_line: list[Any] = [None, None]  # the last layer line and what it decoded to


def progress_of(value: Any) -> dict[str, Any] | None:
    """The value of a child's ``{"progress": ...}`` line as ``{"done", "total", "what"}`` (capped), else None."""
    try:
        done, total, what = value["done"], value["total"], value["what"]
    except (AttributeError, KeyError, TypeError):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < MAX_INT for n in (done, total)):
        return None
    return {"done": done, "total": total, "what": str(what)[:80]}


def decode_reply(outcome: ChildOutcome) -> dict[str, Any]:
    """The child's reply object (with its ``sandbox``), or an :class:`InspectError` saying in one line why
    there is none; the error carries the layer report when the child got as far as sending it. (The lines
    between the two went to ``_dispatch`` as they came.)"""
    code = outcome.returncode or 0
    line, _, rest = outcome.out.partition(b"\n")
    layers = _sandbox_line(line)
    if code and not rest:
        raise InspectError(exit_reason(code, outcome.err), layers)
    if layers is None:
        raise InspectError("engine reply does not start with its sandbox report")
    try:
        reply = json.loads(rest)
    except (ValueError, RecursionError):
        why = exit_reason(code, outcome.err) if code else "exited normally"
        raise InspectError(f"engine reply is not valid JSON ({why})", layers) from None
    if not isinstance(reply, dict):
        raise InspectError("engine reply is not a JSON object", layers)
    reply["sandbox"] = layers
    return reply


def require_layers(layers: dict[str, str], required: list[str]) -> None:
    """The parent's own check of a child's pre-parse layer line: refuse when a required layer is not on."""
    from ..engine.child.layers import missing_required

    missing = missing_required(layers, required)
    if missing:
        raise InspectError(f"sandbox layers required but not on: {', '.join(missing)}", layers)


def request_line(request: dict[str, Any]) -> bytes:
    """The one line a child reads first."""
    return json.dumps(request).encode() + b"\n"


def checked_reply(outcome: ChildOutcome, options: EngineOptions) -> dict[str, Any]:
    """:func:`decode_reply`, then the parent's own check of the layers ``options`` require."""
    reply = decode_reply(outcome)
    require_layers(reply["sandbox"], options.require_layers)
    return reply


def engine_request(path: str, declared: str | None, options: EngineOptions) -> dict[str, Any]:
    """The request for a child, without its image (``"fd"``, or ``"source": "remote"`` and ``"size"``)."""
    return {
        "path": path,
        "declared_format": declared,
        "require_layers": options.require_layers,
        "include_bytes": options.include_bytes,
        "guest": options.guest,
        "guest_budget": options.guest_budget,
        "deep": options.deep,
        "deep_budget": options.deep_budget,
        "progress": options.on_progress is not None,  # lines only for a caller who shows them
    }


def changes(before: os.stat_result, after: os.stat_result) -> str | None:
    """How the file changed between two ``fstat`` of its descriptor, in words, or None."""
    changed = [what for what, key in _CHANGES if getattr(before, key) != getattr(after, key)]
    if not changed:
        return None
    return f"its {', '.join(changed)} changed while the engine read it ({before.st_size} -> {after.st_size} bytes)"


def report_of(reply: dict[str, Any]) -> dict[str, Any]:
    """The (unvalidated) report of a decoded reply, with the layer line sent before parsing; else the error."""
    if reply.get("ok") is not True:
        raise InspectError(str(reply.get("error", "engine failed without a message"))[:500], reply["sandbox"])
    report = reply.get("report")
    if not isinstance(report, dict):
        raise InspectError("engine reply carries no report")
    report["sandbox"] = reply["sandbox"]  # the line sent before parsing, never what the child says after
    return report


def checked_report(reply: dict[str, Any], before: os.stat_result, after: os.stat_result) -> dict[str, Any]:
    """:func:`report_of` a local image's reply, with an ``image-changed`` finding when the descriptor's size or
    times moved between the fstat at the open (``before``) and the one after the child (``after``)."""
    report = report_of(reply)
    changed = changes(before, after)
    if changed and isinstance(report.get("findings"), list):  # not a list: validation refuses the report
        from ..engine.findings import make

        report["findings"].append(make("image-changed", changed).to_json())
    return report
