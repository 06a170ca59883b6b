"""Splitting a bucket between machines, and skipping what an earlier run already reported.

``shard`` keeps the items whose key hashes (SHA-256, so the same on every machine and in every
listing order) to one shard of N; ``done_keys`` reads a JSONL report file line by line and keeps
only a 16-byte digest per reported key (and only those of one shard when asked), so resuming a run
over millions of objects needs tens of MB, whatever the reports hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

T = TypeVar("T")
MAX_LINE = 64 << 20  # a report line longer than this is skipped (its object is inspected again)


def _encoded(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) that ``key`` belongs to."""
    return int.from_bytes(hashlib.sha256(_encoded(key)).digest()[:8], "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (as ``--shard I/N`` takes it) as (I, N), with 0 <= I < N."""
    index, sep, count = text.partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()):
        raise ValueError(f"shard {text[:40]!r}: expected I/N, for example 0/4")
    i, n = int(index), int(count)
    if not 0 <= i < n:
        raise ValueError(f"shard {i}/{n}: I must be at least 0 and below N")
    return i, n


def shard(items: Iterable[T], index: int, count: int, key: Callable[[T], str] = str) -> Iterator[T]:
    """The items of shard ``index`` of ``count`` (streamed), judged by ``key(item)``."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: index must be at least 0 and below count")
    return (item for item in items if shard_of(key(item), count) == index)


class DoneKeys:
    """A set of keys held as 16-byte BLAKE2b digests (the keys themselves may be 1 KiB each)."""

    def __init__(self) -> None:
        self._digests: set[bytes] = set()

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.blake2b(_encoded(key), digest_size=16).digest()

    def add(self, key: str) -> None:
        self._digests.add(self._digest(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._digest(key) in self._digests

    def __len__(self) -> int:
        return len(self._digests)


def done_keys(path: str | Path, field: str = "path", only_shard: tuple[int, int] | None = None) -> DoneKeys:
    """The ``field`` of every report in the JSONL file ``path`` (none if it does not exist yet).

    Streams the file; a torn last line (a run killed mid-write) or an overlong one is skipped, so its
    object is inspected again rather than wrongly counted as done.
    """
    done = DoneKeys()
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return done
    with stream:
        for line in _lines(stream):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            key = record.get(field) if isinstance(record, dict) else None
            if isinstance(key, str) and (only_shard is None or shard_of(key, only_shard[1]) == only_shard[0]):
                done.add(key)
    return done


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """Whole lines of at most MAX_LINE bytes; longer ones are read past in bounded pieces and dropped."""
    while line := stream.readline(MAX_LINE + 1):
        if len(line) <= MAX_LINE:
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(MAX_LINE)
