"""File > Open URL: an ``s3://``, ``https://`` or ``http://`` object inspected by ranges (docs/remote.md).

The URL as typed may carry a secret (a presigned query, ``user:password@``): the window shows and stores
only :func:`~workbench.host.sources.redact`'s form. The URL itself goes to the session, which hands it to
:func:`workbench.inspector.inspect` like any path; nothing else keeps it.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QVBoxLayout, QWidget

from ..host.sources import is_remote, redact
from ..render.textsafe import printable
from .widgets import plain_label

HINT = (
    "s3://bucket/key, https://… or http://… (a presigned link works; its secret is never shown or stored). "
    "Only the byte ranges the inspection needs are fetched; nothing is downloaded in full."
)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be opened as one remote image, or ``None``."""
    if not is_remote(url):
        return "Give an s3://, https:// or http:// URL."
    if url[:5].lower() == "s3://" and ("/" not in url[5:] or url.endswith("/")):
        return "Name one object (s3://bucket/key): a bucket or prefix is a triage job (workbench triage)."
    return None


def endpoint_problem(endpoint: str) -> str | None:
    """Why ``endpoint`` is no S3 endpoint to remember (it must not carry a secret either), or ``None``."""
    if not endpoint:
        return None
    if not endpoint.lower().startswith(("https://", "http://")):
        return "The S3 endpoint is an https:// or http:// URL (or empty: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)."
    if redact(endpoint).lower() != endpoint.lower():
        return "The S3 endpoint must not hold credentials or a query: they come from the standard AWS chain."
    return None


class OpenUrlDialog(QDialog):
    """The URL and an optional S3 endpoint (remembered in the settings by the window)."""

    def __init__(self, endpoint: str = "", url: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open URL")
        self.url = QLineEdit(url)
        self.url.setPlaceholderText("s3://bucket/key or https://host/path/disk.qcow2")
        self.url.setAccessibleName("Image URL")
        self.url.setMinimumWidth(520)
        self.endpoint = QLineEdit(endpoint)
        self.endpoint.setPlaceholderText("from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS")
        self.endpoint.setAccessibleName("S3 endpoint URL")
        self.hint = plain_label(HINT, wrap=True)
        self.error = plain_label(wrap=True)
        self.error.setAccessibleName("Why the URL cannot be opened")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("&URL:", self.url)
        form.addRow("S3 &endpoint:", self.endpoint)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.url.textChanged.connect(self._validate)
        self.endpoint.textChanged.connect(self._validate)
        self._validate()

    def values(self) -> tuple[str, str]:
        """The URL as typed (it may hold a secret) and the endpoint (``""``: from the environment)."""
        return self.url.text().strip(), self.endpoint.text().strip()

    def _validate(self) -> bool:
        url, endpoint = self.values()
        problem = (url_problem(url) if url else None) or endpoint_problem(endpoint)
        self.error.setText(printable(problem or "", 300))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(url) and problem is None)
        return bool(url) and problem is None

    def accept(self) -> None:
        if self._validate():
            super().accept()
