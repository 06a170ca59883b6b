"""What a drop (or File > Open) names: local files and folders kept, anything remote refused."""

from __future__ import annotations

from PySide6.QtCore import QUrl

from ..textsafe import printable


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
