"""The Python API for pipelines: one path (or several) to a validated report and a verdict.

Each function does what ``workbench inspect --json`` does: the same sandboxed engine child, the same
required sandbox layers, the settings file's policy unless one is given (``docs/api.md``). An image that
cannot be inspected is a failed :class:`Result`, never an exception; only a usage error (an unknown format
name, a bad size, a bad timeout or job count) raises ``ValueError``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .host.runner import FRESH
from .inspector import Request, inspect, inspect_many
from .policy import policy as policy_mod
from .policy import settings as settings_mod
from .records import replace
from .schema import Finding, Verdict
from .triage.jobs import local_jobs

__all__ = [
    "Result",
    "inspect_path",
    "inspect_path_async",
    "inspect_paths",
    "inspect_paths_async",
    "inspect_url",
    "inspect_url_async",
]

PathLike = str | os.PathLike[str]
_log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """One inspection: ``report`` has the keys of ``workbench inspect --json``; ``error`` is set when it failed."""

    report: dict[str, Any]
    verdict: Verdict
    exit_code: int
    error: str | None

    @classmethod
    def of(cls, report: dict[str, Any]) -> Result:
        verdict = Verdict(report["verdict"])
        return cls(report, verdict, policy_mod.EXIT_CODES[verdict], report.get("error"))

    @property
    def ok(self) -> bool:
        """True only for ``accept``: review, reject and failed all mean "do not use as it is"."""
        return self.verdict is Verdict.ACCEPT

    @property
    def findings(self) -> list[Finding]:
        return list(self.report.get("findings", []))


def _declared(name: str | None) -> str | None:
    """A known format name, checked as ``-f`` checks it (same message, with the name to use)."""
    if name is None:
        return None
    from .policy.formats import check_format_name

    return check_format_name(name)


def _max_size(value: int | str) -> int:
    if isinstance(value, str):
        return policy_mod.parse_size(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= policy_mod.MAX_SIZE:
        raise ValueError(f"max_virtual_size must be a size text or a whole number of bytes in 0..2**64-1: {value!r}")
    return value


def _template(
    declared_format: str | None,
    max_virtual_size: int | str | None,
    policy: policy_mod.Policy | None,
    timeout: float,
    follow_symlinks: bool,
) -> Request:
    """A request without its path: the arguments checked once, the policy as the command line makes it."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not (math.isfinite(timeout) and timeout > 0)
    ):
        raise ValueError(f"timeout must be a positive number of seconds: {timeout!r}")
    chosen = replace(policy) if policy is not None else settings_mod.load().policy()
    if max_virtual_size is not None:
        chosen.max_virtual_size = _max_size(max_virtual_size)
    return Request("", _declared(declared_format), follow_symlinks, chosen, float(timeout))


def _jobs(jobs: int | None) -> int:
    if jobs is None:
        return local_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number of at least 1: {jobs!r}")
    return jobs


async def inspect_path_async(
    path: PathLike,
    *,
    declared_format: str | None = None,
    max_virtual_size: int | str | None = None,
    policy: policy_mod.Policy | None = None,
    timeout: float = 20.0,
    follow_symlinks: bool = False,
) -> Result:
    """Inspect one image in a fresh sandboxed child; see :func:`inspect_path`."""
    template = _template(declared_format, max_virtual_size, policy, timeout, follow_symlinks)
    return Result.of(await inspect(replace(template, path=os.fspath(path)), FRESH))


def inspect_path(
    path: PathLike,
    *,
    declared_format: str | None = None,
    max_virtual_size: int | str | None = None,
    policy: policy_mod.Policy | None = None,
    timeout: float = 20.0,
    follow_symlinks: bool = False,
) -> Result:
    """Inspect one image as ``workbench inspect --json PATH`` does. ``declared_format``: the format the
    upload claims (default: from the extension); ``max_virtual_size``: bytes or a size text (``"4T"``);
    ``policy``: default the settings file's. Blocking; from a running event loop use the async variant."""
    return _run(
        inspect_path_async(
            path,
            declared_format=declared_format,
            max_virtual_size=max_virtual_size,
            policy=policy,
            timeout=timeout,
            follow_symlinks=follow_symlinks,
        )
    )


async def inspect_url_async(
    url: str,
    *,
    endpoint_url: str | None = None,
    declared_format: str | None = None,
    max_virtual_size: int | str | None = None,
    policy: policy_mod.Policy | None = None,
    timeout: float = 20.0,
) -> Result:
    """Inspect one remote image by byte ranges; see :func:`inspect_url`."""
    from .host.sources import is_remote

    if not isinstance(url, str) or not is_remote(url):
        raise ValueError("url must be an s3://, https:// or http:// URL")
    template = _template(declared_format, max_virtual_size, policy, timeout, False)
    return Result.of(await inspect(replace(template, path=url, endpoint_url=endpoint_url), FRESH))


def inspect_url(
    url: str,
    *,
    endpoint_url: str | None = None,
    declared_format: str | None = None,
    max_virtual_size: int | str | None = None,
    policy: policy_mod.Policy | None = None,
    timeout: float = 20.0,
) -> Result:
    """Inspect ``s3://bucket/key``, ``https://...`` or ``http://...`` as ``workbench inspect --json URL`` does:
    the parent reads byte ranges (never the whole object) and serves them to the sandboxed child. The report's
    ``path`` is the redacted URL; ``endpoint_url`` names an S3-compatible endpoint (else the
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` variables). Blocking; from a running loop use the async variant."""
    return _run(
        inspect_url_async(
            url,
            endpoint_url=endpoint_url,
            declared_format=declared_format,
            max_virtual_size=max_virtual_size,
            policy=policy,
            timeout=timeout,
        )
    )


async def inspect_paths_async(
    paths: Iterable[PathLike],
    *,
    jobs: int | None = None,
    declared_format: str | None = None,
    max_virtual_size: int | str | None = None,
    policy: policy_mod.Policy | None = None,
    timeout: float = 20.0,
    follow_symlinks: bool = False,
) -> list[Result]:
    """Results in the order of ``paths``, at most ``jobs`` (default: the core count) at once, each child
    forked from one sandboxed fork server for the batch (as ``triage`` does)."""
    from .triage.run import engine_pool

    template = _template(declared_format, max_virtual_size, policy, timeout, follow_symlinks)
    gate = _jobs(jobs)
    requests = [replace(template, path=os.fspath(path)) for path in paths]
    if not requests:
        return []
    async with engine_pool(template.policy.required_layers, _log.warning) as pool:
        reports = await inspect_many(requests, gate, runner=pool or FRESH)
    return [Result.of(report) for report in reports]


def inspect_paths(
    paths: Iterable[PathLike],
    *,
    jobs: int | None = None,
    declared_format: str | None = None,
    max_virtual_size: int | str | None = None,
    policy: policy_mod.Policy | None = None,
    timeout: float = 20.0,
    follow_symlinks: bool = False,
) -> list[Result]:
    """The blocking form of :func:`inspect_paths_async`."""
    return _run(
        inspect_paths_async(
            paths,
            jobs=jobs,
            declared_format=declared_format,
            max_virtual_size=max_virtual_size,
            policy=policy,
            timeout=timeout,
            follow_symlinks=follow_symlinks,
        )
    )


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a new event loop; refused (with the async name to use) inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop in this thread: the usual case
    else:
        coroutine.close()
        raise RuntimeError("called from a running event loop: await inspect_path_async / inspect_paths_async instead")
    return asyncio.run(coroutine)
