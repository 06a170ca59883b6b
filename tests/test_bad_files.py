"""Bad files test_cli.py does not cover: empty and one-byte files, sparse files of many terabytes, files that
shrink or grow while they are read, and a triage folder holding all of them at once.

Outcomes, decided per case (docs/robustness.md):
- a 0- or 1-byte file is a valid (empty or tiny) raw image: declared raw it gets a verdict (accept), declared
  as a container format it is rejected as ``format-mismatch``; neither is "could not inspect".
- a sparse file of many terabytes is inspected like any other: the engine reads a few KiB at its start
  and end, reports the logical size and the file size, and the size limit rejects it.
- a file that shrinks after the engine's fstat is read as far as it goes: reads past the new end come back
  short, the parsers report what is missing, nothing beyond the real end is read. A file that grows is read
  as it was when the engine looked at it. Where the change happens before the child starts, the child
  simply sees the new file.
Every command runs under a subprocess timeout: a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders import luks, qcow2, vhdx, vmdk, vpc
from tests.helpers import assert_no_parser_error, finding_ids
from tests.test_cli import run_cli
from workbench import inspector
from workbench.engine import report
from workbench.host import runner as client

TIB = 1 << 40
HANG_GUARD = 30  # seconds; the runs take about one


def inspect_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("inspect", "--json", *args, timeout=HANG_GUARD)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize(
    ("name", "content", "code", "verdict"),
    [
        ("empty.raw", b"", 0, "accept"),
        ("one.raw", b"Q", 0, "accept"),
        ("empty.qcow2", b"", 20, "reject"),
        ("one.vmdk", b"K", 20, "reject"),
    ],
)
def test_empty_and_one_byte_files(tmp_path: Path, name: str, content: bytes, code: int, verdict: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    returncode, rep = inspect_json(str(path))
    assert (returncode, rep["verdict"]) == (code, verdict)
    assert (rep["format"], rep["file_size"], rep["virtual_size"]) == ("raw", len(content), len(content))
    assert rep["bytes_read"] == len(content)
    assert ("format-mismatch" in finding_ids(rep)) == (verdict == "reject")
    human = run_cli("inspect", str(path), timeout=HANG_GUARD)
    assert human.returncode == code
    assert human.stdout.splitlines()[0] == f"{path}: {verdict.upper()}"


def sparse(path: Path, head: bytes = b"", tail: bytes = b"") -> int:
    """The largest sparse file (of 64, 16 or 8 TiB) this file system allows, with ``head`` and ``tail`` written."""
    with path.open("wb") as out:
        for size in (64 * TIB, 16 * TIB - 4096, 8 * TIB):
            try:
                out.truncate(size)
                break
            except OSError:
                continue
        else:
            raise AssertionError("this file system refuses sparse files of 8 TiB")
        out.write(head)
        out.seek(size - len(tail))
        out.write(tail)
    return size


def test_sparse_raw_file_of_many_terabytes_is_measured_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.raw"
    size = sparse(path)
    returncode, rep = inspect_json(str(path))
    assert returncode == 20
    assert (rep["file_size"], rep["virtual_size"]) == (size, size)
    assert rep["allocated_size"] < 1 << 20
    assert rep["bytes_read"] < 64 << 10
    assert "virtual-size-limit" in finding_ids(rep)
    returncode, rep = inspect_json("--max-virtual-size", "128T", str(path))
    assert (returncode, rep["verdict"]) == (0, "accept")


def test_sparse_file_with_a_header_and_a_footer_is_read_at_both_ends(tmp_path: Path) -> None:
    path = tmp_path / "huge.qcow2"
    size = sparse(path, head=qcow2.qcow2(1 << 30), tail=vpc.footer(vpc.FIXED, 1 << 30, data_offset=vpc.NO_OFFSET))
    returncode, rep = inspect_json(str(path))
    assert rep["format"] == "qcow2" and rep["virtual_size"] == 1 << 30 and rep["file_size"] == size
    assert {"qcow2", "vpc"} <= set(rep["format_matches"])
    assert "format-ambiguous" in finding_ids(rep)
    assert any(region["offset"] == size - 512 for region in rep["byte_regions"])
    assert rep["bytes_read"] < 64 << 10
    assert returncode == 20


# --- files that change under the engine --------------------------------------------------------------------

# format -> (image, bytes left when it shrinks, the finding that shows the cut). A VMDK cut inside its
# first sector gives no finding: every check compares with the file size from fstat, which is stale, and
# the header's fields all lie in the bytes still there.
CHANGING = {
    "qcow2": (qcow2.qcow2(1 << 30, snapshots=[qcow2.snapshot_entry("1", "snap")]), 70_000, "malformed"),
    "vpc": (vpc.fixed(1 << 20), 1 << 19, "format-mismatch"),
    "luks": (luks.luks2(), 8192, "malformed"),
    "vhdx": (vhdx.vhdx(), 200_000, "malformed"),
    "vmdk": (vmdk.sparse(), 400, None),
}


@pytest.fixture
def after_fstat(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, Callable[[], None]], None]:
    """``after_fstat(fd, change)``: run ``change`` right after the engine's fstat of ``fd``, so the size the
    engine works with is stale for all its reads."""

    def arm(fd: int, change: Callable[[], None]) -> None:
        real = os.fstat

        def fstat(target: int) -> os.stat_result:
            st = real(target)
            if target == fd:
                monkeypatch.setattr(report.os, "fstat", real)
                change()
            return st

        monkeypatch.setattr(report.os, "fstat", fstat)

    return arm


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[Callable[[bytes], tuple[Path, int]]]:
    fds: list[int] = []

    def open_image(data: bytes) -> tuple[Path, int]:
        path = tmp_path / f"image-{len(fds)}"
        path.write_bytes(data)
        fds.append(os.open(path, os.O_RDONLY))
        return path, fds[-1]

    yield open_image
    for fd in fds:
        os.close(fd)


def _read_ranges(rep: dict[str, Any]) -> list[tuple[int, int]]:
    return [(r["offset"], r["offset"] + len(r["hex"]) // 2) for r in rep["byte_regions"]]


@pytest.mark.parametrize("fmt", sorted(CHANGING))
def test_file_that_shrinks_while_being_read(fmt: str, after_fstat: Any, opened: Any) -> None:
    data, kept, finding = CHANGING[fmt]
    path, fd = opened(data)
    after_fstat(fd, lambda: os.truncate(path, kept))
    rep = report.build(fd, str(path), fmt)
    assert_no_parser_error(rep)
    assert rep["file_size"] == len(data)  # the size the engine was told
    assert all(end <= kept for _, end in _read_ranges(rep)), "read past the real end of the file"
    assert rep["bytes_read"] <= rep["read_budget"]
    # a fixed VHD's only footer was at the end: gone, so its bytes no longer say VHD
    assert rep["format"] == ("raw" if fmt == "vpc" else fmt)
    assert finding is None or finding in finding_ids(rep)


@pytest.mark.parametrize("fmt", sorted(CHANGING))
def test_file_that_grows_while_being_read(fmt: str, after_fstat: Any, opened: Any) -> None:
    data, _, _ = CHANGING[fmt]
    path, fd = opened(data)
    clean = report.build(fd, str(path), fmt)

    def grow() -> None:
        with path.open("ab") as out:
            out.write(vpc.footer(vpc.FIXED, 1 << 40) * 8)

    after_fstat(fd, grow)
    rep = report.build(fd, str(path), fmt)
    assert rep["file_size"] == len(data)
    assert all(end <= len(data) for _, end in _read_ranges(rep))
    assert rep["format_matches"] == clean["format_matches"]
    assert finding_ids(rep) == finding_ids(clean)


@pytest.mark.parametrize("change", ["shrink", "grow"])
def test_change_between_the_parents_open_and_the_childs_read(
    change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real child inspects the file as it is when it looks: no failure, its own fstat's size; the parent's
    fstat after the child differs from the one at the open, so the change is a critical finding."""
    path = tmp_path / "disk.qcow2"
    data = qcow2.qcow2(1 << 30)
    path.write_bytes(data)
    real_open = client.open_image

    def open_then_change(name: str, follow_symlinks: bool = False, walked: Any = None) -> tuple[int, os.stat_result]:
        opened = real_open(name, follow_symlinks, walked)
        if change == "shrink":
            os.truncate(name, 0)
        else:
            with open(name, "ab") as out:
                out.write(bytes(1 << 20))
        return opened

    monkeypatch.setattr(client, "open_image", open_then_change)
    rep = asyncio.run(inspector.inspect(inspector.Request(str(path), timeout=HANG_GUARD)))
    assert rep["file_size"] == os.stat(path).st_size
    assert "image-changed" in finding_ids(rep)
    if change == "shrink":
        assert (rep["format"], rep["verdict"]) == ("raw", "reject")
        assert "format-mismatch" in finding_ids(rep)
    else:
        assert (rep["format"], rep["verdict"]) == ("qcow2", "reject")  # accept, but for the change
        assert [f["id"] for f in rep["findings"] if f["severity"] == "critical"] == ["image-changed"]


def test_triage_of_a_folder_of_bad_files_finishes_with_one_line_each(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "empty.raw").write_bytes(b"")
    (folder / "one.raw").write_bytes(b"\x1b")
    sparse(folder / "huge.raw")
    os.mkfifo(folder / "pipe.raw")
    (folder / "dangling.raw").symlink_to(folder / "nowhere")
    with socket.socket(socket.AF_UNIX) as holder:
        holder.bind(str(folder / "socket.raw"))
        result = run_cli("triage", str(folder), "--jobs", "2", timeout=HANG_GUARD)
    assert result.returncode == 30, result.stderr
    assert result.stdout.splitlines()[0].startswith("6 file(s)")
    assert "reject 1, review 0, accept 2, failed 3" in result.stdout
    failed = sorted(line for line in result.stdout.splitlines() if line.startswith("FAILED"))
    assert [line.split(": ", 1)[0] for line in failed] == [
        f"FAILED {folder / name}" for name in ("dangling.raw", "pipe.raw", "socket.raw")
    ]
    assert "symbolic link" in failed[0] and "FIFO" in failed[1] and "socket" in failed[2]
