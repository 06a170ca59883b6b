"""``redact(url)``: a URL safe to show: no userinfo, no secret query values, no fragment."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "REDACTED"
URL_CAP = 2048

# Query parameters that carry (or sign with) a secret: AWS SigV2/V4 and STS, GCS (V2 and V4), Azure SAS
# (its ``sig``), OAuth-style tokens and codes, and the usual names of keys and passwords.
_SECRET = re.compile(
    r"^(x-amz-.*|x-goog-.*|signature|sig|awsaccesskeyid|googleaccessid|.*token.*|.*secret.*|.*passw.*|pwd|"
    r"key|api[-_]?key|access[-_]?key.*|credential.*|auth.*|code)$",
    re.IGNORECASE,
)


def redact(url: str) -> str:
    """``url`` with its userinfo dropped, secret query values replaced and the fragment dropped.

    A URL that does not even parse is replaced whole: it may be a credential pasted by mistake.
    """
    url = str(url)[:URL_CAP]
    if url[:5].lower() == "s3://":  # everything after the bucket is the key, verbatim (it may hold ? and #)
        bucket, sep, key = url[5:].partition("/")
        return f"s3://{bucket.rpartition('@')[2]}{sep}{key}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        query = _redact_query(parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return f"<unparsable URL {REDACTED}>"


def _redact_query(query: str) -> str:
    """Each ``name=value`` with a secret name gets its value replaced; a bare part (an opaque token) goes whole."""
    shown = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        if not sep:
            shown.append(REDACTED if part else part)
        else:
            shown.append(f"{name}={REDACTED}" if _SECRET.match(unquote_plus(name)) else part)
    return "&".join(shown)
