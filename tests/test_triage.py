"""``workbench triage``: walking folders, every output format, exit codes, interruption."""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import seed_corpus
from tests.test_cli import run_cli
from workbench.host import runner as client
from workbench.inspector import Request, inspect
from workbench.policy.policy import Policy
from workbench.triage import run as triage
from workbench.triage.walk import Entry, walk


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    root = tmp_path / "uploads"
    (root / "customer-a").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "customer-a" / "disk.raw").write_bytes(bytes(1 << 16))
    (root / "customer-a" / "notes.bin").write_bytes(b"hello")
    (root / "top.raw").write_bytes(bytes(4096))
    os.mkfifo(root / "customer-a" / "pipe.raw")
    (root / "link.raw").symlink_to(root / "top.raw")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.raw").write_bytes(bytes(512))
    (root / "linked-folder").symlink_to(outside, target_is_directory=True)
    return root


def test_walk_lists_files_and_refuses_symlinks_without_entering_them(uploads: Path) -> None:
    entries = list(walk([str(uploads)]))
    by_name = {Path(e.path).name: e for e in entries}
    assert sorted(by_name) == ["disk.raw", "link.raw", "linked-folder", "notes.bin", "pipe.raw", "top.raw"]
    assert "symbolic link" in (by_name["link.raw"].refused or "")
    assert "symbolic link" in (by_name["linked-folder"].refused or "")
    assert by_name["disk.raw"].refused is None
    assert not any("secret" in e.path for e in entries)


def test_walk_reports_unlistable_folders(uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir

    def scandir(folder: int):  # type: ignore[no-untyped-def]
        if os.readlink(f"/proc/self/fd/{folder}").endswith("customer-a"):  # the walk lists open folders
            raise PermissionError(13, "Permission denied")
        return real_scandir(folder)

    monkeypatch.setattr(os, "scandir", scandir)
    entries = list(walk([str(uploads)]))
    refused = [e for e in entries if e.path.endswith("customer-a")]
    assert refused and "Permission denied" in (refused[0].refused or "")


def test_walk_of_an_empty_folder_is_empty(tmp_path: Path) -> None:
    assert list(walk([str(tmp_path)])) == []


def test_triage_writes_every_output_and_exits_30_when_a_file_failed(uploads: Path, tmp_path: Path) -> None:
    out = {kind: tmp_path / f"out.{kind}" for kind in ("json", "jsonl", "csv", "html")}
    args = [f"--{kind}={path}" for kind, path in out.items()]
    result = run_cli("triage", str(uploads), *args, "--jobs", "2")
    assert result.returncode == 30, result.stderr
    assert "6 file(s)" in result.stdout
    assert "failed 3" in result.stdout and "accept 2" in result.stdout and "review 1" in result.stdout
    reports = json.loads(out["json"].read_text())
    assert len(reports) == 6
    assert {r["verdict"] for r in reports} == {"accept", "review", "failed"}
    lines = [json.loads(line) for line in out["jsonl"].read_text().splitlines()]
    assert sorted(r["path"] for r in lines) == sorted(r["path"] for r in reports)
    rows = list(csv.DictReader(out["csv"].open()))
    assert len(rows) == 6 and {row["verdict"] for row in rows} == {"accept", "review", "failed"}
    page = out["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<tr><td>") == 6


def test_triage_exit_code_is_the_worst_verdict(tmp_path: Path) -> None:
    (tmp_path / "a.raw").write_bytes(bytes(4096))
    assert run_cli("triage", str(tmp_path)).returncode == 0
    (tmp_path / "b.vmdk").write_bytes(bytes(4096))  # declared vmdk by extension, no signature: mismatch
    result = run_cli("triage", str(tmp_path))
    assert result.returncode == 20
    assert "REJECT" in result.stdout and "format-mismatch" in result.stdout


def test_hostile_names_are_escaped_in_csv_and_html(tmp_path: Path) -> None:
    (tmp_path / "=cmd|calc.raw").write_bytes(bytes(512))
    (tmp_path / "<script>alert(1)<!--.raw").write_bytes(bytes(512))
    out_csv, out_html = tmp_path.parent / "t.csv", tmp_path.parent / "t.html"
    run_cli("triage", str(tmp_path), f"--csv={out_csv}", f"--html={out_html}")
    assert "<script>" not in out_html.read_text()
    assert "&lt;script&gt;" in out_html.read_text()
    paths = [row["path"] for row in csv.DictReader(out_csv.open())]
    assert all(not p.startswith("=") for p in paths)


def test_interrupt_keeps_valid_partial_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    # Enough images that the run cannot finish between its first output and the interrupt (60 could, on a
    # quiet machine, and the test then saw exit 0).
    count = 1000
    for i in range(count):
        (folder / f"{i:04}.raw").write_bytes(bytes(512))
    out_json, out_jsonl = tmp_path / "o.json", tmp_path / "o.jsonl"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "triage", str(folder), "--jobs", "1", f"--json={out_json}",
         f"--jsonl={out_jsonl}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out_jsonl.exists() or out_jsonl.stat().st_size == 0):
        time.sleep(0.05)
    engines = descendants(proc.pid)
    ended = proc.poll()  # send_signal would skip a process that has ended: say so instead
    assert ended is None, f"triage ended (status {ended}) before the interrupt: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    lines = len(out_jsonl.read_text().splitlines())
    assert proc.returncode == 130, f"status {proc.returncode} after the interrupt, {lines} reports: {out} {err}"
    assert "interrupted" in err
    done = json.loads(out_json.read_text())
    assert 1 <= len(done) < count
    assert all(json.loads(line)["verdict"] == "accept" for line in out_jsonl.read_text().splitlines())
    assert engines, "the run had engine processes to stop"
    assert not [pid for pid in engines if Path(f"/proc/{pid}").exists()]


def descendants(root: int) -> list[int]:
    """Every process below ``root`` now (its zygote and the zygote's children), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def special_files(folder: Path) -> dict[str, str]:
    """A character device node named like an image (root only), a FIFO and a Unix socket in ``folder``: each
    name and what the walk must call it."""
    made = {"pipe.raw": "a FIFO (named pipe)", "socket.raw": "a socket"}
    os.mkfifo(folder / "pipe.raw")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "socket.raw"))
    if os.geteuid() == 0:
        os.mknod(folder / "customer-disk.img", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
        made["customer-disk.img"] = "a character device"
    return made


def test_walk_decides_from_lstat_and_refuses_special_files(tmp_path: Path) -> None:
    special = special_files(tmp_path)
    (tmp_path / "disk.raw").write_bytes(bytes(512))
    entries = {Path(e.path).name: e for e in walk([str(tmp_path)])}
    assert sorted(entries) == sorted([*special, "disk.raw"])
    for name, kind in special.items():
        assert entries[name].refused == f"is {kind}: triage reads only regular files; not opened"
        assert entries[name].walked is None
    st = os.lstat(tmp_path / "disk.raw")
    assert entries["disk.raw"].walked == client.Walked(str(tmp_path), ("disk.raw",), (st.st_dev, st.st_ino))


def test_strace_shows_no_open_of_device_nodes_fifos_or_sockets(tmp_path: Path) -> None:
    assert shutil.which("strace"), "this test needs strace (apt-get install strace)"
    folder = tmp_path / "uploads"
    (folder / "inner").mkdir(parents=True)
    special = special_files(folder)
    special |= {f"inner/{name}": kind for name, kind in special_files(folder / "inner").items()}
    (folder / "disk.raw").write_bytes(bytes(4096))
    (folder / "inner" / "other.raw").write_bytes(bytes(4096))
    trace = tmp_path / "trace"
    result = subprocess.run(
        ["strace", "-f", "-qq", "-s", "4096", "-e", "trace=open,openat", "-o", str(trace),
         sys.executable, "-m", "workbench", "triage", str(folder)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 30, result.stderr
    for name, kind in special.items():
        assert f"FAILED {folder / name}: is {kind}: triage reads only regular files; not opened" in result.stdout
    opens = trace.read_text().splitlines()
    assert [line for line in opens if '"disk.raw"' in line or '"other.raw"' in line], "the trace shows the opens"
    for name in special:
        assert not [line for line in opens if f'{Path(name).name}"' in line], name


@pytest.mark.parametrize("swap", ["symlink", "other-folder"])
def test_folder_swapped_after_the_walk_is_not_followed(uploads: Path, tmp_path: Path, swap: str) -> None:
    """A folder replaced between the walk and the open never redirects the open: a failed row, not a read."""
    entries = list(walk([str(uploads)]))
    decoy = tmp_path / "outside"  # holds a disk.raw of its own
    (decoy / "disk.raw").write_bytes(bytes(1 << 16))
    (uploads / "customer-a").rename(tmp_path / "moved")
    if swap == "symlink":
        (uploads / "customer-a").symlink_to(decoy, target_is_directory=True)
        expected = "it or a folder on its path was replaced since it was checked (by a symbolic link?): refused"
    else:
        decoy.rename(uploads / "customer-a")
        expected = "was replaced between its check and its open: refused"
    reports = {r["path"]: r for r in asyncio.run(collect(entries))}
    assert reports[str(uploads / "customer-a" / "disk.raw")]["error"] == expected
    assert reports[str(uploads / "top.raw")]["verdict"] == "accept"


def test_file_removed_after_the_walk_is_a_failed_row(uploads: Path) -> None:
    entries = list(walk([str(uploads)]))
    (uploads / "top.raw").unlink()
    reports = {r["path"]: r for r in asyncio.run(collect(entries))}
    assert reports[str(uploads / "top.raw")]["error"] == "no such file (removed since it was checked?)"
    assert reports[str(uploads / "customer-a" / "disk.raw")]["verdict"] == "accept"


def test_file_removed_while_the_folder_is_walked_is_a_failed_row(tmp_path: Path) -> None:
    for name in ("a.raw", "b.raw"):
        (tmp_path / name).write_bytes(bytes(512))
    entries = walk([str(tmp_path)])
    assert next(entries).walked is not None  # the folder is listed, a.raw looked at
    (tmp_path / "b.raw").unlink()
    gone = next(entries)
    assert gone.path == str(tmp_path / "b.raw")
    assert gone.refused == "cannot read (removed while walked?): No such file or directory"
    assert list(entries) == []


def test_triage_refuses_follow_symlinks(uploads: Path) -> None:
    result = run_cli("triage", "--follow-symlinks", str(uploads))
    assert result.returncode == 2
    assert result.stderr.startswith("workbench triage: --follow-symlinks is refused: triage never follows")
    assert result.stdout == ""


async def collect(entries: list[Entry]) -> list[dict[str, Any]]:
    """Every report of a triage of ``entries`` (real engine, a fresh process per image)."""
    return [report async for report in triage.run(entries, lambda path: Request(path, timeout=30), 2)]


def _same_either_way(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without its field tree, its format details, its time and the number the zygote received the
    image on."""
    sandbox = {**report["sandbox"], "fds": re.sub(r"moved \d+ to 0", "moved _ to 0", report["sandbox"]["fds"])}
    kept = {key: value for key, value in report.items() if key not in ("fields", "details", "elapsed_ms")}
    return kept | {"sandbox": sandbox}


def test_a_batch_of_summaries_asks_for_no_field_tree_or_details_and_loses_nothing(
    tmp_path: Path, qemu_img: str
) -> None:
    """Every seed image (the test builders' and qemu-img's), through the zygote as `workbench triage` runs it:
    with and without full reports, the same summaries, verdicts, findings, references and sizes."""
    declared = seed_corpus(tmp_path, qemu_img)
    entries = [Entry(path) for path in sorted(declared)]

    async def batch(full_reports: bool) -> dict[str, dict[str, Any]]:
        async with triage.engine_pool(Policy().required_layers, print, {"guest": False, "deep": False}) as pool:
            assert pool is not None
            inspect_one = functools.partial(inspect, runner=triage.GatedRunner(pool, 2, full_reports))
            make = lambda path: Request(path, declared[path], include_bytes=False, timeout=30)  # noqa: E731
            return {report["path"]: report async for report in triage.run(entries, make, 2, inspect_one)}

    full, summaries = asyncio.run(batch(True)), asyncio.run(batch(False))
    assert sorted(full) == sorted(summaries) == sorted(declared)
    assert all(report["fields"] == [] and report["details"] == {} for report in summaries.values())
    assert sum(bool(report["fields"]) for report in full.values()) >= len(full) - 2  # raw zeros: no structures
    assert sum(bool(report["details"]) for report in full.values()) >= len(full) // 2
    assert {"accept", "reject"} <= {report["verdict"] for report in full.values()}
    for path, report in full.items():
        assert triage.summarise(summaries[path]) == triage.summarise(report)
        assert _same_either_way(summaries[path]) == _same_either_way(report)


def test_triage_asks_for_full_reports_only_for_json_outputs(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.raw").write_bytes(bytes(4096))
    (tmp_path / "in" / "b.vmdk").write_bytes(bytes(4096))
    csv_only, both = tmp_path / "only.csv", tmp_path / "both.csv"
    jsonl = tmp_path / "out.jsonl"
    assert run_cli("triage", str(tmp_path / "in"), f"--csv={csv_only}").returncode == 20
    assert run_cli("triage", str(tmp_path / "in"), f"--csv={both}", f"--jsonl={jsonl}").returncode == 20
    assert sorted(csv_only.read_text().splitlines()) == sorted(both.read_text().splitlines())
    assert all(json.loads(line)["fields"] for line in jsonl.read_text().splitlines())
