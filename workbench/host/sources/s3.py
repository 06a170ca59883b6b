"""``s3://bucket/key`` and ``s3://bucket/prefix/`` through boto3 (docs/remote.md says why boto3).

The endpoint is ``endpoint_url``, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (S3-compatible
stores); credentials come from boto3's standard chain (environment, config files, SSO, instance roles).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import (
    Deadline,
    Entry,
    Identity,
    Limits,
    RemoteObject,
    Source,
    checked_size,
    deleted_means_changed,
    parse_content_range,
    read_exactly,
)
from .errors import (
    AccessDenied,
    BadResponse,
    BadURL,
    ImageChanged,
    NotFound,
    RangeIgnored,
    RemoteError,
    TimedOut,
    Unreachable,
)

_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "401", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_CHANGED = {"412", "PreconditionFailed", "NoSuchVersion"}


def split_s3_url(url: str, listing: bool = False) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; the key is taken verbatim (S3 keys may hold ``?`` and ``#``)."""
    if not url.startswith("s3://"):
        raise BadURL(url, "expected s3://bucket/key")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise BadURL(url, "no bucket")
    if not listing and (not key or key.endswith("/")):
        raise BadURL(url, "names a prefix, not an object (list it instead)")
    return bucket, key


def endpoint_from_env(explicit: str | None = None) -> str | None:
    """The S3 endpoint: the explicit one, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``, else AWS."""
    return explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


class S3Source(Source):
    """S3 and S3-compatible stores. One boto3 client per source, shared by its objects (thread-safe)."""

    schemes = ("s3",)
    page_size = 1000  # keys per listing request (S3's maximum): memory stays at one page

    def __init__(self, limits: Limits | None = None, endpoint_url: str | None = None, session: Any = None) -> None:
        super().__init__(limits)
        self.endpoint_url = endpoint_from_env(endpoint_url)
        self._session = session
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as error:
            raise RemoteError("s3://", "s3:// needs boto3: pip install 'disk-image-workbench[remote]'") from error
        limits = self.limits
        config = Config(
            connect_timeout=limits.connect_timeout,
            read_timeout=limits.read_timeout,
            retries={"mode": "standard", "total_max_attempts": max(1, limits.attempts)},
            # S3-compatible stores on a custom endpoint (MinIO, Ceph, moto) mostly want path-style addressing.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            user_agent_extra="disk-image-workbench",
        )
        session = self._session or boto3.session.Session()
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)

    def open(self, url: str) -> S3Object:
        bucket, key = split_s3_url(url)
        deadline = Deadline(url, self.limits.deadline)
        with translated(url):
            head = self.client.head_object(Bucket=bucket, Key=key)
        deadline.remaining()
        size = checked_size(url, head.get("ContentLength"))
        version = head.get("VersionId")
        modified = head.get("LastModified")
        identity = Identity(
            etag=head.get("ETag") or None,
            version=version if version and version != "null" else None,
            last_modified=modified.isoformat() if modified is not None else None,
        )
        if not identity.etag and not identity.version:
            raise BadResponse(url, "no ETag or version id to pin the object")
        return S3Object(url, size, identity, self.limits, self, bucket, key)

    def list(self, prefix_url: str) -> Iterator[Entry]:
        bucket, prefix = split_s3_url(prefix_url, listing=True)
        with translated(prefix_url):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if key.endswith("/"):  # a "folder" marker, not an object
                        continue
                    url = f"s3://{bucket}/{key}"
                    yield Entry(url, key, checked_size(url, item.get("Size")), item.get("ETag"))


class S3Object(RemoteObject):
    """One S3 object: every GET carries its Range, If-Match on the pinned ETag, and the version id if any."""

    def __init__(
        self, url: str, size: int, identity: Identity, limits: Limits, source: S3Source, bucket: str, key: str
    ) -> None:
        super().__init__(url, size, identity, limits)
        self._source = source
        self._bucket = bucket
        self._key = key

    def _fetch(self, offset: int, count: int) -> bytes:
        deadline = Deadline(self._url, self.limits.deadline)
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key}
        request["Range"] = f"bytes={offset}-{offset + count - 1}"
        if self.identity.etag:
            request["IfMatch"] = self.identity.etag
        if self.identity.version:
            request["VersionId"] = self.identity.version
        with deleted_means_changed(self._url), translated(self._url):
            answer = self._source.client.get_object(**request)
            body = answer["Body"]
            try:
                self._check(answer, offset, count)
                return read_exactly(self._url, body, count, deadline)
            finally:
                body.close()

    def close(self) -> None:
        """Nothing to release: the connections belong to the source's client."""

    def _check(self, answer: dict[str, Any], offset: int, count: int) -> None:
        status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status != 206 or not answer.get("ContentRange"):
            raise RangeIgnored(self._url, f"HTTP {status} without Content-Range")
        first, last, total = parse_content_range(self._url, answer["ContentRange"])
        etag = answer.get("ETag")
        if total != self.size or (self.identity.etag and etag and etag != self.identity.etag):
            raise ImageChanged(self._url, f"now size {total}, ETag {etag}; pinned {self.size}, {self.identity}")
        if (first, last) != (offset, offset + count - 1):
            raise BadResponse(self._url, f"asked bytes {offset}-{offset + count - 1}, got {first}-{last}")


@contextmanager
def translated(url: str) -> Iterator[None]:
    """botocore's exceptions as this package's one-line errors (their text may hold URLs: never shown)."""
    from botocore import exceptions as bc

    try:
        yield
    except bc.ClientError as error:
        info = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        for codes, kind in ((_CHANGED, ImageChanged), (_MISSING, NotFound), (_DENIED, AccessDenied)):
            if code in codes or status in codes:
                raise kind(url, code) from None
        raise RemoteError(url, f"HTTP {status} {code}") from None
    except bc.NoCredentialsError:
        raise AccessDenied(url, "no credentials in the environment, config files or instance role") from None
    except (bc.ConnectTimeoutError, bc.ReadTimeoutError) as error:
        raise TimedOut(url, type(error).__name__) from None
    except (
        bc.EndpointConnectionError,
        bc.ConnectionClosedError,
        bc.ResponseStreamingError,
        bc.IncompleteReadError,
    ) as error:
        raise Unreachable(url, type(error).__name__) from None
    except bc.BotoCoreError as error:
        raise RemoteError(url, type(error).__name__) from None
    except ValueError:  # botocore's word for a malformed endpoint URL
        raise BadURL(url, "invalid S3 endpoint URL") from None
