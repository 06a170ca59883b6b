"""One image from a path to a verdict: open, run a child, validate the reply, apply the policy.

The command line and the window both go through :func:`inspect`; neither touches image bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from .host.open import InspectError
from .host.protocol import EngineOptions
from .host.urls import is_remote
from .policy import policy as policy_mod
from .policy.formats import format_from_extension
from .records import Record
from .schema import DEFAULT_DEEP_BUDGET, DEFAULT_GUEST_BUDGET, MAX_STRING

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from typing import Any

    from .host import direct
    from .host.runner import Runner
    from .host.walked import Walked


# ``Request.declared`` value: detect the format from the bytes alone, even when the file name has an extension.
DETECT = "probe"
_UNDECLARED = {
    "none": "no format was declared and the file name does not say one: the format above was probed",
    "probe": "the image that names this file records no format for it: the format above was probed",
}


class Request(Record):
    """What to inspect and how; ``declared=None`` means "from the extension", :data:`DETECT` "from the bytes";
    ``policy=None`` is a default :class:`~workbench.policy.policy.Policy`."""

    __slots__ = (
        "path",
        "declared",
        "follow_symlinks",
        "policy",
        "timeout",
        "include_bytes",
        "walked",
        "guest",
        "guest_budget",
        "deep",
        "deep_budget",
        "endpoint_url",
        "on_progress",
    )

    def __init__(
        self,
        path: str,
        declared: str | None = None,
        follow_symlinks: bool = False,
        policy: policy_mod.Policy | None = None,
        timeout: float = 20.0,
        include_bytes: bool = True,  # hex of the bytes read, for the hex view; batches leave it out
        walked: Walked | None = None,  # found by a folder walk: reopened through its folders, as the walk saw it
        guest: bool = False,  # the guest view: partitions, volumes, filesystems, OS (report key ``guest``)
        guest_budget: int = DEFAULT_GUEST_BUDGET,
        deep: bool = False,  # deep inspection: every metadata table (report key ``deep``)
        deep_budget: int = DEFAULT_DEEP_BUDGET,
        endpoint_url: str | None = None,  # s3:// only: the endpoint (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)
        on_progress: Callable[[dict[str, Any]], None] | None = None,  # deep inspection's progress lines
    ) -> None:
        self.path = path
        self.declared = declared
        self.follow_symlinks = follow_symlinks
        self.policy = policy_mod.Policy() if policy is None else policy
        self.timeout = timeout
        self.include_bytes = include_bytes
        self.walked = walked
        self.guest = guest
        self.guest_budget = guest_budget
        self.deep = deep
        self.deep_budget = deep_budget
        self.endpoint_url = endpoint_url
        self.on_progress = on_progress


def failed_report(path: str, declared: str | None, error: str, sandbox: dict[str, str] | None = None) -> dict[str, Any]:
    """The report of an image that could not be inspected (verdict ``failed``, exit code 30)."""
    from .schema import SCHEMA

    return {
        "schema": SCHEMA,
        "path": path,
        "declared_format": declared,
        "verdict": "failed",
        "error": error,
        "findings": [],
        "sandbox": sandbox or {},
    }


def _declared(request: Request, remote: bool) -> tuple[str | None, str]:
    """The format to declare to the engine and where it came from (``declared_source``)."""
    if request.declared == DETECT:
        return None, "probe"
    if request.declared is not None:
        return request.declared, "argument"
    if remote:
        from .host.remote import url_file_name

        declared = format_from_extension(url_file_name(request.path))
    else:
        declared = format_from_extension(request.path)
    return declared, "extension" if declared else "none"


def _options(request: Request) -> EngineOptions:
    return EngineOptions(
        timeout=request.timeout,
        require_layers=request.policy.required_layers,
        include_bytes=request.include_bytes,
        guest=request.guest,
        guest_budget=request.guest_budget,
        deep=request.deep,
        deep_budget=request.deep_budget,
        on_progress=request.on_progress,
    )


def _failed(shown: str, declared: str | None, exc: InspectError) -> dict[str, Any]:
    from .engine.findings import make

    failed = failed_report(shown, declared, str(exc), exc.sandbox)
    if exc.finding:
        failed["findings"].append(make(exc.finding, str(exc)[:MAX_STRING]).to_json())
    return failed


def _judged(raw: dict[str, Any], request: Request, shown: str, declared: str | None, source: str) -> dict[str, Any]:
    """The child's raw report validated, named as the parent knows it, and judged by the policy."""
    from .engine.findings import make
    from .host.validate import ReplyError, validate

    try:
        report = validate(raw)
    except ReplyError as exc:
        return failed_report(shown, declared, f"engine reply rejected: {exc}")
    report["path"] = shown  # the parent's own name for the file, not the child's echo
    report["declared_source"] = source
    if declared is None:
        report["findings"].append(make("format-undeclared", _UNDECLARED[source]).as_report())
    judged: Any = policy_mod.apply(report, request.policy)  # typed up to here; the window and the inspect
    return judged  # command still hold reports as plain dicts


async def inspect(request: Request, runner: Runner | None = None) -> dict[str, Any]:
    """The validated report with its verdict, or a failed report: never an exception for bad input.
    ``runner`` makes the engine child (a fresh process by default; a fork server for batches). A ``path`` that
    is an ``s3://``, ``https://`` or ``http://`` URL is read by ranges through the parent (``host/remote.py``)
    and reported under its redacted URL."""
    from .host.runner import FRESH, inspect_path

    runner = FRESH if runner is None else runner
    remote = is_remote(request.path)
    declared, source = _declared(request, remote)
    options = _options(request)
    if remote:
        from .host.remote import inspect_url
        from .host.sources import redact

        shown = redact(request.path)
    else:
        shown = request.path
    try:
        if remote:
            raw = await inspect_url(request.path, declared, options, request.endpoint_url, runner=runner)
        else:
            opened = (request.follow_symlinks, request.walked)
            raw = await inspect_path(request.path, declared, options, *opened, runner=runner)
    except InspectError as exc:
        return _failed(shown, declared, exc)
    return _judged(raw, request, shown, declared, source)


def direct_path(request: Request) -> bool:
    """Whether :func:`inspect_direct` can take ``request``: a local image, no deep inspection, on POSIX."""
    from .host import direct

    return not is_remote(request.path) and direct.available(request.deep)


def _judge_ready() -> None:
    """Import what judging a reply needs (the validator, the findings, the sandbox's layer names), while the
    child that was sent its request works."""
    from .engine.child import layers  # noqa: F401
    from .host import validate  # noqa: F401


def inspect_direct(request: Request, child: direct.Child | None = None) -> dict[str, Any]:
    """:func:`inspect` of one local image (see :func:`direct_path`) with a fresh child and no event loop: the
    same request, checks, report and verdict, at the cost of one command that inspects one file. ``child``:
    one already started for ``request``'s file (:class:`~workbench.host.direct.Child`, made before the policy
    was known), else one is started here."""
    from .host import direct

    declared, source = _declared(request, False)
    if child is None:
        child = direct.Child(request.path, request.follow_symlinks, request.walked, request.timeout)
    try:
        raw = child.inspect(declared, _options(request), meanwhile=_judge_ready)
    except InspectError as exc:
        return _failed(request.path, declared, exc)
    return _judged(raw, request, request.path, declared, source)


async def inspect_many(
    requests: Iterable[Request], jobs: int = os.cpu_count() or 2, runner: Runner | None = None
) -> list[dict[str, Any]]:
    """Reports in the order of ``requests``, with at most ``jobs`` children at once."""
    import asyncio

    gate = asyncio.Semaphore(max(1, jobs))

    async def one(request: Request) -> dict[str, Any]:
        async with gate:
            return await inspect(request, runner)

    return list(await asyncio.gather(*(one(r) for r in requests)))
