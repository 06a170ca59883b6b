"""What ``triage`` inspects: local folders walked, remote prefixes listed, then a shard and a resume applied.

A target ending in ``/`` with the ``s3://`` scheme is a prefix, listed page by page (flat memory); any other
``s3://``, ``https://`` or ``http://`` target is one object. ``--shard I/N`` keeps the entries whose (redacted)
path hashes to shard I, the same split on every machine; ``--resume FILE`` skips the paths an earlier run's
JSONL already reports (``host/sources/sharding.py``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

from ..host.sources import is_remote, redact
from .walk import Entry, walk

if TYPE_CHECKING:  # the remote sources are imported when a target is remote (a local triage needs none)
    from ..host.sources import DoneKeys

T = TypeVar("T")
AHEAD = 2000  # entries a listing runs ahead of the inspections (two pages of 1,000 keys)
_END = object()


def is_prefix(target: str) -> bool:
    return target[:5].lower() == "s3://" and target.endswith("/")


def ahead(items: Iterable[T], depth: int = AHEAD) -> Iterator[T]:
    """``items`` produced by a thread of their own at most ``depth`` ahead, so that a page request of a
    listing does not hold the event loop that consumes them (it blocks only when the listing falls behind)."""
    buffer: queue.Queue[object] = queue.Queue(depth)

    def produce() -> None:
        try:
            for item in items:
                buffer.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            buffer.put(exc)
        buffer.put(_END)

    threading.Thread(target=produce, name="listing", daemon=True).start()
    while (item := buffer.get()) is not _END:
        if isinstance(item, BaseException):
            raise item
        yield item  # type: ignore[misc]


def listed(prefix: str, timeout: float, endpoint_url: str | None) -> Iterator[Entry]:
    """The objects under an ``s3://`` prefix, listed in a thread ahead of their use (each request within
    ``timeout``); a listing that fails is one failed entry naming the prefix."""
    from ..host.remote import limits_for
    from ..host.sources import RemoteError, source_for

    limits = limits_for(timeout)

    def pages() -> Iterator[Entry]:
        try:
            for item in source_for(prefix, limits, endpoint_url).list(prefix):
                yield Entry(item.url)
        except RemoteError as exc:
            yield Entry(redact(prefix), refused=f"listing failed: {exc}")

    return ahead(pages())


def entries(targets: Iterable[str], timeout: float, endpoint_url: str | None = None) -> Iterator[Entry]:
    """Every entry of ``targets`` in order: local paths through the walk, remote ones as objects or listings
    (a listing's requests each within ``timeout``)."""
    local: list[str] = []
    for target in targets:
        if not is_remote(target):
            local.append(target)
            continue
        yield from walk(local)
        local = []
        yield from listed(target, timeout, endpoint_url) if is_prefix(target) else [Entry(target)]
    yield from walk(local)


def selected(items: Iterable[Entry], shard: tuple[int, int] | None, done: DoneKeys | None) -> Iterator[Entry]:
    """The entries of one shard that no earlier run reported (both judged by the path a report carries)."""
    if shard is not None:
        from ..host.sources import shard_of
    for entry in items:
        shown = redact(entry.path) if is_remote(entry.path) else entry.path
        if shard is not None and shard_of(shown, shard[1]) != shard[0]:
            continue
        if done is not None and shown in done:
            continue
        yield entry
