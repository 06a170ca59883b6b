"""One image from a path to a verdict: open, run a child, validate the reply, apply the policy.

The command line and the window both go through :func:`inspect`; neither touches image bytes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from .engine.findings import make
from .host.remote import inspect_url, url_file_name
from .host.runner import FRESH, EngineOptions, InspectError, Runner, Walked, inspect_path
from .host.sources import is_remote, redact
from .host.validate import SCHEMA, ReplyError, validate
from .policy import policy as policy_mod
from .schema import DEFAULT_DEEP_BUDGET, DEFAULT_GUEST_BUDGET, MAX_STRING

# Only extensions that name one format; ``.img`` and ``.bin`` are used for raw and qcow2 alike.
EXTENSIONS = {
    ".qcow2": "qcow2",
    ".qcow": "qcow",
    ".qed": "qed",
    ".raw": "raw",
    ".vmdk": "vmdk",
    ".vhd": "vpc",
    ".vpc": "vpc",
    ".vhdx": "vhdx",
    ".vdi": "vdi",
    ".hdd": "parallels",
    ".hds": "parallels",
    ".iso": "iso",
    ".dmg": "dmg",
    ".luks": "luks",
}


# ``Request.declared`` value: detect the format from the bytes alone, even when the file name has an extension.
DETECT = "probe"
_UNDECLARED = {
    "none": "no format was declared and the file name does not say one: the format above was probed",
    "probe": "the image that names this file records no format for it: the format above was probed",
}


def format_from_extension(path: str) -> str | None:
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


@dataclass
class Request:
    """What to inspect and how; ``declared=None`` means "from the extension", :data:`DETECT` "from the bytes"."""

    path: str
    declared: str | None = None
    follow_symlinks: bool = False
    policy: policy_mod.Policy = field(default_factory=policy_mod.Policy)
    timeout: float = 20.0
    include_bytes: bool = True  # hex of the bytes read, for the hex view; batches leave it out
    walked: Walked | None = None  # found by a folder walk: reopened through its folders, as the walk saw it
    guest: bool = False  # the guest view: partitions, volumes, filesystems, OS (report key ``guest``)
    guest_budget: int = DEFAULT_GUEST_BUDGET
    deep: bool = False  # deep inspection: every metadata table (report key ``deep``)
    deep_budget: int = DEFAULT_DEEP_BUDGET
    endpoint_url: str | None = None  # s3:// only: the endpoint (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)
    on_progress: Callable[[dict[str, Any]], None] | None = None  # deep inspection's ``{"done", "total", "what"}``


def failed_report(path: str, declared: str | None, error: str, sandbox: dict[str, str] | None = None) -> dict[str, Any]:
    """The report of an image that could not be inspected (verdict ``failed``, exit code 30)."""
    return {
        "schema": SCHEMA,
        "path": path,
        "declared_format": declared,
        "verdict": "failed",
        "error": error,
        "findings": [],
        "sandbox": sandbox or {},
    }


async def inspect(request: Request, runner: Runner = FRESH) -> dict[str, Any]:
    """The validated report with its verdict, or a failed report: never an exception for bad input.
    ``runner`` makes the engine child (a fresh process by default; a fork server for batches). A ``path`` that
    is an ``s3://``, ``https://`` or ``http://`` URL is read by ranges through the parent (``host/remote.py``)
    and reported under its redacted URL."""
    remote = is_remote(request.path)
    shown = redact(request.path) if remote else request.path
    declared = request.declared
    source = "argument"
    if declared == DETECT:
        declared, source = None, "probe"
    elif declared is None:
        declared = format_from_extension(url_file_name(request.path) if remote else request.path)
        source = "extension" if declared else "none"
    options = EngineOptions(
        timeout=request.timeout,
        require_layers=request.policy.required_layers,
        include_bytes=request.include_bytes,
        guest=request.guest,
        guest_budget=request.guest_budget,
        deep=request.deep,
        deep_budget=request.deep_budget,
        on_progress=request.on_progress,
    )
    try:
        if remote:
            raw = await inspect_url(request.path, declared, options, request.endpoint_url, runner=runner)
        else:
            opened = (request.follow_symlinks, request.walked)
            raw = await inspect_path(request.path, declared, options, *opened, runner=runner)
        report = validate(raw)
    except InspectError as exc:
        failed = failed_report(shown, declared, str(exc), exc.sandbox)
        if exc.finding:
            failed["findings"].append(make(exc.finding, str(exc)[:MAX_STRING]).to_json())
        return failed
    except ReplyError as exc:
        return failed_report(shown, declared, f"engine reply rejected: {exc}")
    report["path"] = shown  # the parent's own name for the file, not the child's echo
    report["declared_source"] = source
    if declared is None:
        report["findings"].append(make("format-undeclared", _UNDECLARED[source]).as_report())
    # typed up to here; the window and the inspect command still hold reports as plain dicts
    return cast(dict[str, Any], policy_mod.apply(report, request.policy))


async def inspect_many(
    requests: Iterable[Request], jobs: int = os.cpu_count() or 2, runner: Runner = FRESH
) -> list[dict[str, Any]]:
    """Reports in the order of ``requests``, with at most ``jobs`` children at once."""
    gate = asyncio.Semaphore(max(1, jobs))

    async def one(request: Request) -> dict[str, Any]:
        async with gate:
            return await inspect(request, runner)

    return list(await asyncio.gather(*(one(r) for r in requests)))
