"""Remote images (``s3://``, ``https://``, ``http://``) read by byte ranges on the parent side.

The engine child never touches the network: the parent opens the object here (size and identity
pinned), and serves the child's reads from ``RemoteObject.read``. See docs/remote.md.
"""

from __future__ import annotations

from ..urls import SCHEMES, is_remote
from .base import MAX_SIZE, Entry, Identity, Limits, RemoteObject, Source
from .errors import (
    AbsurdSize,
    AccessDenied,
    BadResponse,
    BadURL,
    BudgetExceeded,
    ImageChanged,
    NotFound,
    RangeIgnored,
    RedirectRefused,
    RemoteError,
    TimedOut,
    Unreachable,
)
from .http import HTTPSource
from .redact import redact
from .s3 import S3Source
from .sharding import DoneKeys, done_keys, parse_shard, shard, shard_of

__all__ = [
    "MAX_SIZE",
    "SCHEMES",
    "AbsurdSize",
    "AccessDenied",
    "BadResponse",
    "BadURL",
    "BudgetExceeded",
    "DoneKeys",
    "Entry",
    "HTTPSource",
    "Identity",
    "ImageChanged",
    "Limits",
    "NotFound",
    "RangeIgnored",
    "RedirectRefused",
    "RemoteError",
    "RemoteObject",
    "S3Source",
    "Source",
    "TimedOut",
    "Unreachable",
    "done_keys",
    "is_remote",
    "open_url",
    "parse_shard",
    "redact",
    "shard",
    "shard_of",
    "source_for",
]


def source_for(url: str, limits: Limits | None = None, endpoint_url: str | None = None) -> Source:
    """The source that reads ``url``'s scheme (``endpoint_url`` applies to s3:// only)."""
    scheme = url.partition("://")[0].lower()
    if scheme == "s3":
        return S3Source(limits, endpoint_url=endpoint_url)
    if scheme in ("http", "https"):
        return HTTPSource(limits)
    raise BadURL(url, "expected s3://, https:// or http://")


def open_url(url: str, limits: Limits | None = None, endpoint_url: str | None = None) -> RemoteObject:
    """``url`` opened: size and identity pinned, nothing else read yet."""
    return source_for(url, limits, endpoint_url).open(url)
