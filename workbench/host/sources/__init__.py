"""Remote images (``s3://``, ``https://``, ``http://``) read by byte ranges on the parent side.

The engine child never touches the network: the parent opens the object here (size and identity
pinned), and serves the child's reads from ``RemoteObject.read``. See docs/remote.md.
"""

from __future__ import annotations

from ..urls import SCHEMES, is_remote
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
from .redact import redact

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .base import MAX_SIZE, Entry, Identity, Limits, RemoteObject, Source
    from .http import HTTPSource
    from .s3 import S3Source
    from .sharding import DoneKeys, done_keys, parse_shard, shard, shard_of

# Loaded on first use: a command on local files only never needs the HTTP and S3 clients, whose imports
# (http.client, ssl, the email parser, dataclasses) cost a local `workbench triage` ~40 ms before its first child.
_LAZY = {
    "MAX_SIZE": "base",
    "Entry": "base",
    "Identity": "base",
    "Limits": "base",
    "RemoteObject": "base",
    "Source": "base",
    "HTTPSource": "http",
    "S3Source": "s3",
    "DoneKeys": "sharding",
    "done_keys": "sharding",
    "parse_shard": "sharding",
    "shard": "sharding",
    "shard_of": "sharding",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value


def source_for(url: str, limits: Limits | None = None, endpoint_url: str | None = None) -> Source:
    """The source that reads ``url``'s scheme (``endpoint_url`` applies to s3:// only)."""
    scheme = url.partition("://")[0].lower()
    if scheme == "s3":
        from .s3 import S3Source

        return S3Source(limits, endpoint_url=endpoint_url)
    if scheme in ("http", "https"):
        from .http import HTTPSource

        return HTTPSource(limits)
    raise BadURL(url, "expected s3://, https:// or http://")


def open_url(url: str, limits: Limits | None = None, endpoint_url: str | None = None) -> RemoteObject:
    """``url`` opened: size and identity pinned, nothing else read yet."""
    return source_for(url, limits, endpoint_url).open(url)
