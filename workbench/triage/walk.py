"""Folder walks for triage: every entry judged by its lstat through descriptors opened without following links,
so a walk never opens a device node, FIFO or socket, and a file found is reopened exactly as it was seen."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..host.open import O_DIRECTORY, O_NOFOLLOW, OPEN_FLAGS, kind_of
from ..host.walked import Walked

MAX_WALK_DEPTH = 64


@dataclass
class Entry:
    """One file found by the walk; ``refused`` is why it will not be read (a symlink, a device node, say), and
    ``walked`` how to reopen exactly the regular file the walk saw."""

    path: str
    refused: str | None = None
    walked: Walked | None = None


# Folders are opened relative to their parent's descriptor where the platform can (not Windows): a folder
# replaced by a symbolic link while it is walked is then never entered.
_AT = os.open in os.supports_dir_fd and os.scandir in os.supports_fd
_FOLDER_FLAGS = OPEN_FLAGS | O_DIRECTORY | O_NOFOLLOW
Folder = int | str  # a descriptor, or on Windows a path


def _entry(path: str, root: str, names: tuple[str, ...], st: os.stat_result) -> Entry:
    """The walk's verdict from its lstat alone: a regular file to inspect, or anything else refused unopened."""
    if stat.S_ISREG(st.st_mode):
        return Entry(path, walked=Walked(root, names, (st.st_dev, st.st_ino)))
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return Entry(path, f"is a symbolic link to {target!r}: refused, not read")
    return Entry(path, f"is {kind_of(st.st_mode)}: triage reads only regular files; not opened")


def _open_folder(name: str, parent: Folder | None, st: os.stat_result) -> Folder:
    """Open a folder the walk lstat'ed; OSError if it is gone or no longer that folder."""
    if not _AT:
        return name if parent is None else os.path.join(str(parent), name)
    fd = os.open(name, _FOLDER_FLAGS, dir_fd=parent if isinstance(parent, int) else None)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise OSError(errno.ESTALE, "replaced while it was walked")
    return fd


def _walk_folder(folder: Folder, root: str, path: str, names: tuple[str, ...], depth: int) -> Iterator[Entry]:
    """Entries of one open folder (closed at the end), then each subfolder's, in sorted order."""
    try:
        try:
            with os.scandir(folder) as it:
                listed = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Entry(path, f"cannot list folder: {exc.strerror}")
            return
        subfolders = []
        for item in listed:
            inner = os.path.join(path, item.name)
            try:
                st = item.stat(follow_symlinks=False)
            except OSError as exc:
                yield Entry(inner, f"cannot read (removed while walked?): {exc.strerror}")
                continue
            if not stat.S_ISDIR(st.st_mode):
                yield _entry(inner, root, (*names, item.name), st)
            elif depth + 1 < MAX_WALK_DEPTH:
                subfolders.append((item.name, st))
            else:
                yield Entry(inner, f"folder deeper than {MAX_WALK_DEPTH} levels: not walked")
        for name, st in subfolders:
            inner = os.path.join(path, name)
            try:
                sub = _open_folder(name, folder, st)
            except OSError as exc:
                yield Entry(inner, f"cannot open folder: {exc.strerror}")
                continue
            yield from _walk_folder(sub, root, inner, (*names, name), depth + 1)
    finally:
        if isinstance(folder, int):
            os.close(folder)


def walk(paths: Iterable[str]) -> Iterator[Entry]:
    """Files under ``paths`` in sorted order, each judged by its lstat: only regular files are to be opened;
    symbolic links, device nodes, FIFOs and sockets are refused unopened, symlinked folders never entered."""
    for top in paths:
        try:
            st = os.lstat(top)
        except OSError as exc:
            yield Entry(top, f"cannot read: {exc.strerror}")
            continue
        if not stat.S_ISDIR(st.st_mode):
            folder, name = os.path.split(top)
            yield _entry(top, folder or os.curdir, (name,), st)
            continue
        try:
            fd = _open_folder(top, None, st)
        except OSError as exc:
            yield Entry(top, f"cannot open folder: {exc.strerror}")
            continue
        yield from _walk_folder(fd, top, top, (), 0)
