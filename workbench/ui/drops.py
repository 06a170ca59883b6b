"""What a drop (or File > Open) names: local files and folders kept, anything remote refused."""

from __future__ import annotations

import os
import re

from PySide6.QtCore import QUrl

from ..render.textsafe import printable


def split_urls(urls: list[QUrl]) -> tuple[list[str], list[str]]:
    """``(local paths, refusals)``: only ``file:`` URLs on this machine are opened."""
    paths, refused = [], []
    for url in urls:
        if url.isLocalFile() and not url.host():
            paths.append(url.toLocalFile())
        else:
            shown = printable(url.toDisplayString(), 200)
            refused.append(f"refused {shown}: only local files are inspected (copy the image here first)")
    return paths, refused


def refused_name(name: str) -> str | None:
    """Why a name given on the command line or to File > Open is refused (a URL: ``https://...``,
    ``s3://...``), or ``None`` for a local path. A file that really has such a name is kept."""
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", name) and not os.path.lexists(name):
        return f"refused {printable(name, 200)}: a URL, not a local file (copy the image here first)"
    return None
