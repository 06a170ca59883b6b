"""The failures of a remote source: one exception type per cause, each message one redacted line.

Callers show ``str(error)`` as is: it names the redacted URL and the cause, never a credential, a
traceback or more than a capped, escaped fragment of anything a server sent.
"""

from __future__ import annotations

from workbench.render.textsafe import printable

from .redact import URL_CAP, redact

MESSAGE_CAP = 400


class RemoteError(Exception):
    """A remote object could not be read as asked (the base of every source failure)."""

    what = "remote read failed"

    def __init__(self, url: str, detail: str = "") -> None:
        self.url = printable(redact(url), cap=URL_CAP)  # keys from a listing are untrusted text too
        self.detail = printable(detail, cap=MESSAGE_CAP) if detail else ""
        super().__init__(self.url, self.detail)

    def __str__(self) -> str:
        line = f"{self.url}: {self.what}"
        return f"{line} ({self.detail})" if self.detail else line

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class BadURL(RemoteError):
    what = "not a supported remote URL"


class NotFound(RemoteError):
    what = "no such object (404)"


class AccessDenied(RemoteError):
    what = "access denied (403)"


class Unreachable(RemoteError):
    what = "server unreachable"


class TimedOut(RemoteError):
    what = "server too slow (timed out)"


class RangeIgnored(RemoteError):
    what = "server ignored the byte range (it would send the whole object); read stopped"


class RedirectRefused(RemoteError):
    what = "redirect refused"


class AbsurdSize(RemoteError):
    what = "absurd object size"


class ImageChanged(RemoteError):
    what = "object changed while it was read (its ETag, version or size differs from the first request)"


class BadResponse(RemoteError):
    what = "malformed server response"


class BudgetExceeded(RemoteError):
    what = "read budget exhausted"
