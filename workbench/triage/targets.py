"""What ``triage`` inspects: local folders walked, remote prefixes listed, then a shard and a resume applied.

A target ending in ``/`` with the ``s3://`` scheme is a prefix, listed page by page (flat memory); any other
``s3://``, ``https://`` or ``http://`` target is one object. ``--shard I/N`` keeps the entries whose (redacted)
path hashes to shard I, the same split on every machine; ``--resume FILE`` skips the paths an earlier run's
JSONL already reports (``host/sources/sharding.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..host.sources import DoneKeys, Limits, RemoteError, is_remote, redact, shard_of, source_for
from .walk import Entry, walk


def is_prefix(target: str) -> bool:
    return target[:5].lower() == "s3://" and target.endswith("/")


def listed(prefix: str, limits: Limits, endpoint_url: str | None) -> Iterator[Entry]:
    """The objects under an ``s3://`` prefix; a listing that fails is one failed entry naming the prefix."""
    try:
        for item in source_for(prefix, limits, endpoint_url).list(prefix):
            yield Entry(item.url)
    except RemoteError as exc:
        yield Entry(redact(prefix), refused=f"listing failed: {exc}")


def entries(targets: Iterable[str], limits: Limits, endpoint_url: str | None = None) -> Iterator[Entry]:
    """Every entry of ``targets`` in order: local paths through the walk, remote ones as objects or listings."""
    local: list[str] = []
    for target in targets:
        if not is_remote(target):
            local.append(target)
            continue
        yield from walk(local)
        local = []
        yield from listed(target, limits, endpoint_url) if is_prefix(target) else [Entry(target)]
    yield from walk(local)


def selected(items: Iterable[Entry], shard: tuple[int, int] | None, done: DoneKeys | None) -> Iterator[Entry]:
    """The entries of one shard that no earlier run reported (both judged by the path a report carries)."""
    for entry in items:
        shown = redact(entry.path) if is_remote(entry.path) else entry.path
        if shard is not None and shard_of(shown, shard[1]) != shard[0]:
            continue
        if done is not None and shown in done:
            continue
        yield entry
