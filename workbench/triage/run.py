"""Triage many images: walk folders, inspect with bounded concurrency, stream results as they arrive.

Memory stays flat with the number of files: the walk is a generator, at most ``jobs`` inspections are
in flight, each full report goes straight to the outputs, and only a small summary per file is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import stat
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..engine.child.sandbox import degraded
from ..host.open import O_DIRECTORY, O_NOFOLLOW, OPEN_FLAGS, InspectError, Walked, kind_of
from ..host.runner import ForkServerRunner
from ..inspector import Request, failed_report, inspect
from ..policy import policy as policy_mod
from ..schema import most_severe_first

Inspect = Callable[[Request], Awaitable[dict[str, Any]]]
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


@contextlib.asynccontextmanager
async def engine_pool(
    required_layers: list[str], warn: Callable[[str], None]
) -> AsyncIterator[ForkServerRunner | None]:
    """A started fork server for a batch, or ``None`` (a fresh process per image) when it cannot start."""
    zygote = ForkServerRunner(required_layers)
    try:
        await zygote.start()
    except InspectError as exc:
        warn(f"engine zygote unavailable ({exc}); starting a fresh process per image")
        yield None
        return
    try:
        yield zygote
    finally:
        await zygote.close()


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The few values the triage table and the final summary need."""
    findings = report.get("findings", [])
    ranked = sorted(findings, key=lambda f: most_severe_first(f["severity"]))
    top = ranked[0] if ranked and ranked[0]["severity"] != "info" else None
    return {
        "path": report["path"],
        "verdict": report["verdict"],
        "format": report.get("format"),
        "declared_format": report.get("declared_format"),
        "virtual_size": report.get("virtual_size"),
        "file_size": report.get("file_size"),
        "encrypted": report.get("encrypted"),
        "top_finding": f"{top['id']}: {top['detail']}" if top else (report.get("error") or ""),
        "critical": [f"{f['id']}: {f['detail']}" for f in findings if f["severity"] == "critical"],
        "sandbox_degraded": ", ".join(degraded(report.get("sandbox") or {})) if findings else "",
    }


@dataclass
class Tally:
    """Counts per verdict and the rejected files, updated as results arrive."""

    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    degraded: Counter[str] = field(default_factory=Counter)  # weaker sandbox layers -> files parsed so

    def add(self, summary: dict[str, Any]) -> None:
        self.counts[summary["verdict"]] += 1
        if summary.get("sandbox_degraded"):
            self.degraded[summary["sandbox_degraded"]] += 1
        if summary["verdict"] == "reject":
            self.rejected.append({"path": summary["path"], "critical": summary["critical"]})
        elif summary["verdict"] == "failed":
            self.failed.append({"path": summary["path"], "error": summary["top_finding"]})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def exit_code(self) -> int:
        return policy_mod.EXIT_CODES[policy_mod.worst(list(self.counts))]


async def run(
    entries: Iterable[Entry],
    make_request: Callable[[str], Request],
    jobs: int,
    inspect_one: Inspect = inspect,
) -> AsyncGenerator[dict[str, Any], None]:
    """Full reports in the order they finish, with at most ``jobs`` inspections in flight."""
    source = iter(entries)
    pending: set[asyncio.Task[dict[str, Any]]] = set()

    def start_next() -> bool:
        for entry in source:
            if entry.refused:
                refused = asyncio.get_running_loop().create_future()
                refused.set_result(failed_report(entry.path, None, entry.refused))
                pending.add(asyncio.ensure_future(refused))
                return True
            request = dataclasses.replace(make_request(entry.path), walked=entry.walked)
            pending.add(asyncio.ensure_future(inspect_one(request)))
            return True
        return False

    try:
        while len(pending) < jobs and start_next():
            pass
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                yield task.result()
                start_next()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
