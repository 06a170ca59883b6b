"""A remote image (``s3://``, ``https://``) inspected: the parent opens it, the child reads it through its pipes.

The child gets no descriptor and no network; it asks the parent for each byte range
(:mod:`workbench.host.ranges`), so every byte counts against the same read budgets as a local file, and
the parent serves at most their sum. The report's ``path`` is the redacted URL; ``allocated_size`` is null.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from ..engine.reader import DEFAULT_BUDGET
from ..records import replace
from .open import InspectError, off_loop
from .ranges import RangeServer
from .runner import FRESH, EngineOptions, Runner, engine_request, report_of, run_request
from .sources import Limits, RemoteError, RemoteObject, open_url, redact

__all__ = ["budget_cap", "inspect_url", "limits_for", "url_file_name"]


def limits_for(timeout: float) -> Limits:
    """Source limits inside the inspection's timeout, so no request outlives it."""
    defaults = Limits()
    return Limits(
        connect_timeout=min(defaults.connect_timeout, timeout),
        read_timeout=min(defaults.read_timeout, timeout),
        deadline=min(defaults.deadline, timeout),
        attempts=1,
    )


def budget_cap(options: EngineOptions) -> int:
    """The bytes the parent serves one child at most: the sum of the read budgets the request turns on."""
    guest = options.guest_budget if options.guest else 0
    return DEFAULT_BUDGET + guest + (options.deep_budget if options.deep else 0)


def url_file_name(url: str) -> str:
    """The part of ``url`` that names the file (for the format its extension declares): an ``s3://`` key
    verbatim, an http(s) URL's path without its query."""
    if url[:5].lower() == "s3://":
        return url
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


async def inspect_url(
    url: str,
    declared: str | None,
    options: EngineOptions,
    endpoint_url: str | None = None,
    *,
    runner: Runner = FRESH,
) -> dict[str, Any]:
    """Open ``url`` (size and identity pinned, off the event loop) and run a child on it; the report is
    returned unvalidated, its ``path`` the redacted URL. A remote failure (the object changed, a timeout,
    ...) is an :class:`InspectError` with the source's one redacted line."""

    def opened() -> RemoteObject:
        try:
            return open_url(url, limits_for(options.timeout), endpoint_url)
        except RemoteError as exc:
            raise InspectError(str(exc)) from None

    image = await off_loop(opened, options.timeout, f"opening {redact(url)}", lambda obj: obj.close())
    ranges = RangeServer(image, budget_cap(options))
    served = replace(options, ranges=ranges)
    request = {"source": "remote", "size": image.size, **engine_request(redact(url), declared, options)}
    try:
        reply = await run_request(request, (), served, runner)
    finally:
        await asyncio.to_thread(image.close)
    if ranges.error is not None and reply.get("ok") is not True:
        finding = "image-changed" if ranges.changed else None
        raise InspectError(ranges.error, reply["sandbox"], finding)  # the parent's own line, not the child's echo
    return report_of(reply)
