"""Which targets are URLs of remote sources: cheap to import (``workbench inspect FILE`` asks it of every
argument), unlike :mod:`workbench.host.sources`, which brings the HTTP and S3 clients."""

from __future__ import annotations

SCHEMES = ("s3", "https", "http")


def is_remote(target: str) -> bool:
    """Whether ``target`` is a URL of a remote source rather than a local path."""
    scheme, sep, _ = target.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES
