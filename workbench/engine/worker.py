"""The engine child: harden, read one request, inspect the one image it was handed, reply, exit.

Started by :mod:`workbench.engine.client` as ``python -I -S -c ...`` (or the frozen executable with
``--engine-worker``) with the image as an inherited descriptor, an empty environment and cwd ``/``.
Protocol: one JSON request line on stdin (``{"fd": N, "path": "...", "declared_format": "qcow2"|null}``),
one JSON reply on stdout (``{"ok": true, "report": {...}}`` or ``{"ok": false, "error": "..."}``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from . import report, sandbox

MAX_REQUEST = 64 * 1024


def _read_request() -> dict[str, Any]:
    raw = b""
    while chunk := os.read(0, MAX_REQUEST - len(raw)):
        raw += chunk
        if len(raw) >= MAX_REQUEST:
            raise ValueError("request too large")
    request = json.loads(raw)
    if not isinstance(request, dict) or not isinstance(request.get("fd"), int):
        raise ValueError("bad request")
    return request


def _reply(obj: dict[str, Any]) -> None:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()
    view = memoryview(data)
    while view:
        written = os.write(1, view)
        view = view[written:]


def serve() -> int:
    """Run one inspection; the return value is the process exit code."""
    try:
        request = _read_request()
    except (ValueError, OSError) as exc:
        _reply({"ok": False, "error": f"engine: unreadable request ({exc})"})
        return 2
    fd = request["fd"]
    layers = sandbox.harden(expected_fds={0, 1, 2, fd})
    missing = sandbox.missing_required(layers, request.get("require_layers") or [])
    if missing:
        _reply({"ok": False, "error": f"sandbox layers required but not on: {', '.join(missing)}", "sandbox": layers})
        return 3
    declared = request.get("declared_format")
    try:
        result = report.build(fd, str(request.get("path", "")), declared if isinstance(declared, str) else None)
    except OSError as exc:
        _reply({"ok": False, "error": f"reading the image failed: {exc.strerror or exc}", "sandbox": layers})
        return 4
    result["sandbox"] = layers
    _reply({"ok": True, "report": result})
    return 0


def main() -> None:
    sys.exit(serve())


if __name__ == "__main__":
    main()
