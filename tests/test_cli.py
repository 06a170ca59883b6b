"""``workbench inspect`` end to end: real engine children, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(cwd or Path("/nonexistent-config"))}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(1 << 20))
    return path


def test_clean_raw_is_accepted(raw_image: Path) -> None:
    result = run_cli("inspect", str(raw_image))
    assert result.returncode == 0, result.stderr
    assert "ACCEPT" in result.stdout
    assert "raw (declared raw by extension" in result.stdout


def test_json_for_one_file_is_an_object_and_for_several_an_array(raw_image: Path, tmp_path: Path) -> None:
    one = json.loads(run_cli("inspect", "--json", str(raw_image)).stdout)
    assert one["schema"] == "workbench-report/1"
    assert one["verdict"] == "accept"
    assert one["sandbox"]["rlimits"].startswith("on")
    other = tmp_path / "other.raw"
    other.write_bytes(bytes(512))
    many = json.loads(run_cli("inspect", "--json", str(raw_image), str(other)).stdout)
    assert [r["path"] for r in many] == [str(raw_image), str(other)]


def test_undeclared_format_is_reviewed(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(bytes(4096))
    result = run_cli("inspect", str(path))
    assert result.returncode == 10
    assert "format-undeclared" in result.stdout


def test_max_virtual_size_rejects(raw_image: Path) -> None:
    result = run_cli("inspect", "--max-virtual-size", "512K", str(raw_image))
    assert result.returncode == 20
    assert "virtual-size-limit" in result.stdout


def test_child_qcow2_names_its_backing_file_and_is_rejected(qemu_create: Callable[..., Path], tmp_path: Path) -> None:
    base = qemu_create("base.qcow2", "qcow2", "1G")
    child = qemu_create("child.qcow2", "qcow2", "1G", "-b", str(base), "-F", "qcow2")
    result = run_cli("inspect", "--json", "-f", "qcow2", str(child))
    assert result.returncode == 20
    report = json.loads(result.stdout)
    assert report["verdict"] == "reject"
    assert report["backing"] == {"filename": str(base), "format": "qcow2", "kind": "path"}
    assert "backing-file" in {f["id"] for f in report["findings"]}


def test_declared_raw_with_qcow2_header_is_a_mismatch(qemu_create: Callable[..., Path], tmp_path: Path) -> None:
    disguised = tmp_path / "guest.raw"
    disguised.write_bytes(qemu_create("evil.qcow2", "qcow2", "1G", "-b", "/etc/shadow", "-F", "raw", "-u").read_bytes())
    result = run_cli("inspect", "--json", str(disguised))
    report = json.loads(result.stdout)
    assert result.returncode == 20
    assert report["declared_format"] == "raw"
    assert report["format"] == "qcow2"
    assert {"format-mismatch", "backing-file"} <= {f["id"] for f in report["findings"]}


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "symlink", "socket", "unreadable", "chardev"])
def test_bad_files_give_one_line_and_exit_30(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "thing"
    expected = {
        "missing": "no such file",
        "directory": "is a directory",
        "fifo": "FIFO",
        "symlink": "symbolic link to",
        "socket": "socket",
        "unreadable": "permission denied",
        "chardev": "character device",
    }[kind]
    holder = None
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        (tmp_path / "real.raw").write_bytes(bytes(512))
        target.symlink_to(tmp_path / "real.raw")
    elif kind == "socket":
        holder = socket.socket(socket.AF_UNIX)
        holder.bind(str(target))
    elif kind == "unreadable":
        target.write_bytes(bytes(512))
        target.chmod(0)
        if os.geteuid() == 0:  # root reads anything: use a path it is refused instead
            target = Path("/proc/1/mem")
            expected = "permission denied|cannot open|character device"
    elif kind == "chardev":
        target = Path("/dev/zero")
    try:
        result = run_cli("inspect", str(target), timeout=20)
    finally:
        if holder:
            holder.close()
    assert result.returncode == 30
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert any(part in lines[0] for part in expected.split("|")), lines[0]


def test_symlink_is_followed_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "real.raw").write_bytes(bytes(512))
    (tmp_path / "link.raw").symlink_to(tmp_path / "real.raw")
    result = run_cli("inspect", "--follow-symlinks", str(tmp_path / "link.raw"))
    assert result.returncode == 0, result.stderr


def test_several_files_exit_with_the_worst(raw_image: Path, tmp_path: Path) -> None:
    result = run_cli("inspect", str(raw_image), str(tmp_path / "missing.raw"))
    assert result.returncode == 30
    assert "ACCEPT" in result.stdout


def test_usage_errors_exit_2(raw_image: Path) -> None:
    assert run_cli("inspect").returncode == 2
    assert run_cli("inspect", "-f", "nonsense", str(raw_image)).returncode == 2
    assert run_cli("inspect", "--max-virtual-size", "lots", str(raw_image)).returncode == 2


def test_hostile_names_do_not_reach_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "evil\x1b]0;pwned\x07.raw"
    path.write_bytes(bytes(512))
    result = run_cli("inspect", str(path))
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;pwned\\x07" in result.stdout


def test_help_and_version() -> None:
    assert "inspect" in run_cli("--help").stdout
    assert run_cli("--version").stdout.startswith("workbench ")


def test_demo_inspects_every_demonstration_image_headlessly() -> None:
    result = run_cli("demo", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    reports = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert reports["clean.qcow2"]["verdict"] == "accept"
    assert reports["backing-host-file.qcow2"]["verdict"] == "reject"
    assert "format-mismatch" in {f["id"] for f in reports["guest-raw-disk.img"]["findings"]}
    assert "external-extent" in {f["id"] for f in reports["host-extent.vmdk"]["findings"]}
    assert "virtual-size-limit" in {f["id"] for f in reports["claims-16TiB.qcow2"]["findings"]}
    assert reports["luks2-volume.luks"]["encrypted"] is True
