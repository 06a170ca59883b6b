"""Images are never written: inspect, triage, chain following and the window leave every byte, size,
modification time and change time as they were, and a trace of every process shows each image opened
read-only (no O_WRONLY, O_RDWR, O_CREAT, O_TRUNC or O_APPEND) and no call that could change one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from fuzz.corpus import builder_seeds

ROOT = Path(__file__).resolve().parents[1]
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND", "O_TMPFILE")
# System calls naming a file that change it, its name or its metadata.
CHANGING_CALLS = (
    "creat",
    "truncate",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmodat",
    "chown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "setxattr",
    "lsetxattr",
    "removexattr",
    "lremovexattr",
    "mknod",
    "mknodat",
)
State = tuple[str, int, int, int]


def _one_seed_per_format() -> list[tuple[str, bytes]]:
    seen: dict[str | None, tuple[str, bytes]] = {}
    for seed in builder_seeds():
        seen.setdefault(seed.declared, (seed.name, seed.data))
    return list(seen.values())


@pytest.fixture
def images(tmp_path: Path, qemu_create: Any) -> Path:
    """One image of every format, a host-path backing file, and a qcow2 -> qcow2 -> raw chain."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name, data in _one_seed_per_format():
        (folder / name).write_bytes(data)
    qemu_create("images/base.raw", "raw", "1M")
    qemu_create("images/mid.qcow2", "qcow2", "1M", "-b", "base.raw", "-F", "raw", cwd=folder)
    qemu_create("images/top.qcow2", "qcow2", "1M", "-b", "mid.qcow2", "-F", "qcow2", cwd=folder)
    return folder


def state(folder: Path) -> dict[str, State]:
    """Content hash, size, modification and change time (ns) of every file: reading changes none of them."""
    out = {}
    for path in sorted(folder.iterdir()):
        st = path.stat()
        out[path.name] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return out


def traced(trace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``workbench ARGS`` under ``strace -ff`` (one file per process, so no call is split across lines)."""
    strace = ["strace", "-ff", "-qq", "-s", "4096", "-e", "trace=%file,%desc", "-o", str(trace)]
    env = {**os.environ, "XDG_CONFIG_HOME": str(trace.parent / "config")}
    command = [*strace, sys.executable, "-m", "workbench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)


def _lines(traces: Iterable[Path]) -> list[str]:
    return [line for part in traces for line in part.read_text(errors="replace").splitlines()]


def write_access(lines: list[str], folder: Path) -> list[str]:
    """Calls that open an image for writing or change it by name."""
    bad = []
    for line in lines:
        if str(folder) not in line:
            continue
        call = line.split("(", 1)[0].strip()
        opened = call in ("open", "openat", "openat2")
        if opened and any(re.search(rf"\b{flag}\b", line) for flag in WRITE_FLAGS) or call in CHANGING_CALLS:
            bad.append(line)
    return bad


@pytest.mark.qemu
def test_inspect_triage_and_chains_never_write_an_image(images: Path, tmp_path: Path) -> None:
    assert shutil.which("strace"), "this test needs strace (apt-get install strace)"
    before = state(images)
    files = sorted(str(p) for p in images.iterdir())
    runs = [
        traced(tmp_path / "inspect", "inspect", "--json", *files),
        traced(tmp_path / "triage", "triage", str(images), "--jobs", "2", f"--json={tmp_path / 'out.json'}"),
        traced(tmp_path / "chain", "inspect", "--chain", "--json", str(images / "top.qcow2")),
    ]
    assert [run.returncode for run in runs] == [20, 20, 20], [run.stderr[-300:] for run in runs]  # backing files
    assert '"reason": "base"' in runs[2].stdout and str(images / "base.raw") in runs[2].stdout
    assert state(images) == before
    lines = _lines(part for run in ("inspect", "triage", "chain") for part in tmp_path.glob(f"{run}.*"))
    opened = [line for line in lines if re.match(r"openat?\(", line) and str(images) in line]
    assert {line.split('"')[1] for line in opened} - {str(images)} == set(files)  # every image was opened...
    assert all("O_RDONLY" in line for line in opened)  # ...read-only
    assert write_access(lines, images) == []


def test_write_access_spots_what_it_must(tmp_path: Path) -> None:
    """The trace reader on a real trace: a process that writes, truncates and touches an image is caught
    for each, and its read-only open is not."""
    image = tmp_path / "images" / "x.qcow2"
    image.parent.mkdir()
    image.write_bytes(bytes(512))
    script = (
        "import os, sys; p = sys.argv[1]; open(p, 'rb').close(); open(p, 'r+b').close(); "
        "open(p, 'ab').close(); os.truncate(p, 0); os.utime(p)"
    )
    strace = ["strace", "-ff", "-qq", "-e", "trace=%file,%desc", "-o", str(tmp_path / "probe")]
    subprocess.run([*strace, sys.executable, "-I", "-S", "-c", script, str(image)], check=True, timeout=60)
    caught = write_access(_lines(tmp_path.glob("probe.*")), image.parent)
    assert [line.split("(", 1)[0] for line in caught] == ["openat", "openat", "truncate", "utimensat"]
    assert "O_RDWR" in caught[0] and "O_APPEND" in caught[1]
