"""What a drop (or File > Open) names: local files and folders kept, anything remote refused.

Folders are walked in a worker thread (never following symbolic links) so a large tree never
stalls the window; the walk stops at :data:`MAX_FILES`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QUrl

from ..textsafe import printable

MAX_FILES = 10_000


@dataclass
class Expanded:
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def _walk(folder: str, out: Expanded) -> None:
    links = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.islink(path):
                links += 1
                continue
            if len(out.files) >= MAX_FILES:
                out.notes.append(f"{printable(folder, 200)}: stopped after {MAX_FILES} files")
                return
            out.files.append(path)
    if links:
        out.notes.append(f"{printable(folder, 200)}: {links} symbolic link(s) skipped (drop a link itself to see it)")


def expand(paths: list[str]) -> Expanded:
    """Files as given, folders replaced by the regular files below them (blocking: run in a thread)."""
    out = Expanded()
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            before = len(out.files)
            _walk(path, out)
            if len(out.files) == before:
                out.notes.append(f"{printable(path, 200)}: no files in this folder")
        else:
            out.files.append(path)
    return out
