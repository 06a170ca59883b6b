"""What a folder walk found, for :func:`workbench.host.open.open_image` to reopen (its own module, so that the
single-image path, which never walks, imports neither ``typing`` nor ``collections`` before its child starts)."""

from __future__ import annotations

from typing import NamedTuple


class Walked(NamedTuple):
    """Where a folder walk found a regular file: the folder it started from (as given), the names below it, and
    ``(st_dev, st_ino)`` from the walk's lstat. :func:`~workbench.host.open.open_image` reopens exactly that
    file, or refuses."""

    root: str
    names: tuple[str, ...]
    identity: tuple[int, int]
