"""The engine child: harden, read one request, inspect the one image it was handed, reply, exit.

Started by :mod:`workbench.host.runner` as ``python -I -S -c ...`` (or the frozen executable with
``--engine-worker``) with the image as an inherited descriptor, an empty environment and cwd ``/``;
with ``--zygote`` it becomes the fork server of :mod:`workbench.engine.child.zygote` instead.
Protocol: one JSON request on stdin, one line (ended by a newline or by the end of stdin)::

    {"fd": N, "path": "...", "declared_format": "qcow2" | null, "require_layers": ["rlimits", ...],
     "layers": [...] (optional: apply only these), "cpu_seconds": N (optional, lower only; 60 with "deep"),
     "escapes": ["open", ...] (optional: try forbidden things instead of inspecting), "escape_args": {...},
     "guest": true, "guest_budget": N (optional: the guest view, within N bytes, default 4 MiB),
     "deep": true, "deep_budget": N (optional: deep inspection, within N metadata bytes, default 64 MiB),
     "progress": true (optional: progress lines while deep inspection or the guest view walks),
     "include_bytes": false (optional: no hex), "include_fields": false (optional: an empty field tree),
     "include_details": false (optional: empty format details),
     "handle": H, "job": "on (...)" (Windows only: the image's handle, and the job object the parent made)}

and on stdout, first one line ``{"sandbox": {layer: status}}`` written before the image is read (so that
even a crash leaves the layer report behind), with ``"progress": true`` lines ``{"progress": {"done": N, "total": M,
"what": "..."}}`` (at most ~10 a second) while it walks, then one JSON reply: ``{"ok": true, "report": {...}}``,
``{"ok": true, "escapes": {...}}`` or ``{"ok": false, "error": "..."}``.

A batch (``--isolation batch:N``, only through the fork server, :mod:`.zygote`) comes as ``{"batch": [{"path": ...,
"declared_format": ...}, ...], ...}`` with the other keys shared by every image; the server gives each item its
``"fd"``. The child inspects them in turn and writes one line per image, ``{"index": k, "ok": ..., ...}``, closing
each image once it has replied (``docs/sandbox.md``: what a batch shares).

A remote image (``s3://``, ``https://``) comes as ``{"source": "remote", "size": N, ...}`` instead of
``"fd"``: no descriptor, and the parent keeps stdin open. ``N`` is the size the parent pinned. Each range the
engine needs is asked on stdout between the two, as one line ``{"read": {"offset": O, "length": L}}``, and
answered on stdin by a frame: one tag byte, an 8-byte big-endian length, then that many bytes; ``D`` is the
data (at most ``L`` bytes), ``E`` a one-line error, after which the reply is ``{"ok": false, "error": ...}``
with that line (:mod:`.ranges`). Every byte still counts against the reader budgets. Other lines of the
same form (``{"progress": ...}``) may come between; the parent dispatches each by its one key.
"""

from __future__ import annotations

import json
import os
import sys

from ...schema import (
    DEEP_CPU_SECONDS,
    DEFAULT_DEEP_BUDGET,
    DEFAULT_GUEST_BUDGET,
    MAX_DEEP_BUDGET,
    MAX_GUEST_BUDGET,
)
from .. import report
from ..reader import Image
from . import sandbox
from .ranges import PipeImage

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

MAX_REQUEST = 64 * 1024
MAX_SIZE = 2**63 - 1


def read_request() -> dict[str, Any]:
    """The request line. Nothing may follow it before the child asks (a remote image's parent waits)."""
    raw = b""
    while not raw.endswith(b"\n") and (chunk := os.read(0, MAX_REQUEST - len(raw))):
        raw += chunk
        if len(raw) >= MAX_REQUEST:
            raise ValueError("request too large")
    line, _, rest = raw.partition(b"\n")
    if rest:
        raise ValueError("bytes after the request line")
    request = json.loads(line)
    if not isinstance(request, dict):
        raise ValueError("bad request")
    if is_remote(request):
        size = request.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
            raise ValueError("bad remote size")
    elif not isinstance(request.get("fd"), int):
        raise ValueError("bad request")
    return request


def is_remote(request: dict[str, Any]) -> bool:
    return request.get("source") == "remote"


def is_batch(request: dict[str, Any]) -> bool:
    return isinstance(request.get("batch"), list)


def image_fds(request: dict[str, Any]) -> set[int]:
    """The image's descriptor, if it has one (a remote image has none), or a batch's."""
    if is_batch(request):
        return {item["fd"] for item in request["batch"]}
    return set() if is_remote(request) else {request["fd"]}


def adopt_image(request: dict[str, Any]) -> None:
    """On Windows the image comes as an inherited handle (the parent's descriptor number means nothing here):
    make it this process's descriptor."""
    if sys.platform == "win32" and not is_remote(request):
        import msvcrt

        handle = request.get("handle")
        if not isinstance(handle, int):
            raise ValueError("no image handle")
        request["fd"] = msvcrt.open_osfhandle(handle, os.O_RDONLY)


def reply(obj: dict[str, Any], end: bytes = b"") -> None:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode() + end
    view = memoryview(data)
    while view:
        written = os.write(1, view)
        view = view[written:]


def preload(request: dict[str, Any]) -> None:
    """Import, while files can still be opened, what only some requests run: the guest view, deep inspection,
    the escape attempts (once hardened, this process can open no module file)."""
    if request.get("guest") is True or request.get("deep") is True:
        from .. import guest, mapping  # noqa: F401
    if request.get("deep") is True:
        from .. import deep  # noqa: F401
    if isinstance(request.get("escapes"), list):
        from . import escapes  # noqa: F401


EVERYTHING = {"guest": True, "deep": True, "escapes": []}  # what the fork server preloads for its children


def plan_for(request: dict[str, Any], expected_fds: set[int]) -> sandbox.Plan:
    """The request may narrow the layers (tests, benchmarks) or lower the CPU limit, never widen them."""
    plan = sandbox.Plan(expected_fds)
    if request.get("deep") is True:  # the deep walk's work is bounded by its budget, not by the header's
        plan.cpu_seconds = DEEP_CPU_SECONDS
    layers = request.get("layers")
    if isinstance(layers, list):
        plan.layers = tuple(name for name in sandbox.ORDER if name in layers)
    cpu = request.get("cpu_seconds")
    if isinstance(cpu, int) and 0 < cpu < plan.cpu_seconds:
        plan.cpu_seconds = cpu
    if is_batch(request):  # one process for the batch: the CPU limit of each image, once per image
        plan.cpu_seconds *= max(1, len(request["batch"]))
    if isinstance(request.get("job"), str):
        plan.job = request["job"][:300]
    return plan


def report_layers(request: dict[str, Any], layers: dict[str, str]) -> bool:
    """Send the layer line; when a layer the request requires is not on, send the refusal and say so."""
    reply({"sandbox": layers}, b"\n")
    missing = sandbox.missing_required(layers, list(request.get("require_layers") or []))
    if missing:
        reply({"ok": False, "error": f"sandbox layers required but not on: {', '.join(missing)}"})
    return bool(missing)


def budget_for(request: dict[str, Any], key: str, default: int, cap: int) -> int | None:
    """The budget ``{key}_budget`` when the request asks for ``key`` (a bad budget is the default), else None."""
    if request.get(key) is not True:
        return None
    budget = request.get(f"{key}_budget")
    valid = isinstance(budget, int) and not isinstance(budget, bool) and 0 < budget <= cap
    return budget if valid else default


def progress_line(done: int, total: int, what: str) -> None:
    """One progress line for the parent (deep inspection throttles its calls; the guest view makes one per volume)."""
    reply({"progress": {"done": done, "total": total, "what": what[:80]}}, b"\n")


def inspect_request(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The exit code and the reply of an inspection of the request's descriptor, or of the remote image the
    parent serves (hardened or not: the caller's)."""
    declared = request.get("declared_format")
    image: Image = PipeImage(request["size"]) if is_remote(request) else request["fd"]
    try:
        result = report.build(
            image,
            str(request.get("path", "")),
            declared if isinstance(declared, str) else None,
            include_bytes=request.get("include_bytes") is not False,
            guest_budget=budget_for(request, "guest", DEFAULT_GUEST_BUDGET, MAX_GUEST_BUDGET),
            deep_budget=budget_for(request, "deep", DEFAULT_DEEP_BUDGET, MAX_DEEP_BUDGET),
            progress=progress_line if request.get("progress") is True else None,
            include_fields=request.get("include_fields") is not False,
            include_details=request.get("include_details") is not False,
        )
    except OSError as exc:
        return 4, {"ok": False, "error": f"reading the image failed: {exc.strerror or exc}"}
    if isinstance(image, PipeImage) and image.error is not None:  # a layer that turns errors into findings hid it
        return 4, {"ok": False, "error": f"reading the image failed: {image.error}"}
    return 0, {"ok": True, "report": result}


def handle(request: dict[str, Any], layers: dict[str, str], plan: sandbox.Plan) -> int:
    """After hardening: refuse if a required layer is missing, else make the escape attempts or inspect; reply once.
    ``"timings": true`` in the request adds what each hardening step cost (for the benchmark)."""
    if is_batch(request) and "fds" in layers:  # say so in every report of the batch
        layers["fds"] += (
            f" (--isolation batch: {len(request['batch'])} images in turn, each closed once it has replied)"
        )
    if report_layers(request, layers):
        return 3
    if is_batch(request):
        return _inspect_batch(request, plan)
    if not is_remote(request):
        request["fd"] = plan.moved.get(request["fd"], request["fd"])  # the fds layer may have renumbered the image
    extra: dict[str, Any] = {}
    if request.get("timings") is True:
        extra["timings_ms"] = {name: round(seconds * 1000, 3) for name, seconds in plan.timings.items()}
    if isinstance(request.get("escapes"), list):
        from . import escapes

        args = {**dict(request.get("escape_args") or {}), "image_fd": request.get("fd", -1)}
        reply({"ok": True, "escapes": escapes.run([str(name) for name in request["escapes"]], args), **extra})
        return 0
    # the report carries no layers: the parent gives it those of the line sent before the image was read
    code, body = inspect_request(request)
    reply({**body, **extra})
    return code


def _inspect_batch(request: dict[str, Any], plan: sandbox.Plan) -> int:
    """Each image of a batch in turn: one reply line each, then the image is closed (what a later image might do to
    this process can no longer read it). The exit code is the first image's that failed, else 0."""
    shared = {key: value for key, value in request.items() if key != "batch"}
    code = 0
    for index, item in enumerate(request["batch"]):
        one = {**shared, **item}
        one["fd"] = plan.moved.get(one["fd"], one["fd"])  # the fds layer may have renumbered it
        item_code, body = inspect_request(one)
        reply({"index": index, **body}, b"\n")
        os.close(one["fd"])
        code = code or item_code
    return code


def serve() -> int:
    """Run one inspection; the return value is the process exit code."""
    try:
        request = read_request()
        adopt_image(request)
    except (ValueError, OSError) as exc:
        reply({"sandbox": {}}, b"\n")
        reply({"ok": False, "error": f"engine: unreadable request ({exc})"})
        return 2
    preload(request)
    plan = plan_for(request, {0, 1, 2, *image_fds(request)})
    return handle(request, sandbox.harden(plan), plan)


def main() -> None:
    if "--zygote" in sys.argv[1:]:
        from . import zygote

        code = zygote.serve()  # its children are reaped and its socket closed: nothing left to tear down
    else:
        code = serve()
    # The replies went out with os.write, unbuffered: end here rather than tear the interpreter down, which
    # finalizes every module for a process about to vanish (~4 ms of CPU, an eighth of a fresh child).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
