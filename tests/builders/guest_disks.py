"""Guest disks built with the real tools (sfdisk, mkfs.*, mkswap, cryptsetup) in sparse raw files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

MIB = 1 << 20
OS_RELEASE = 'PRETTY_NAME="Testix GNU/Linux 13 (trixie)"\nNAME="Testix"\nVERSION_ID="13"\nID=testix\n'


def run(*cmd: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kwargs)


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def place(disk: Path, fs_file: Path, offset: int) -> None:
    """Copy a filesystem built in its own file into the disk at ``offset`` (sparse, in place)."""
    with open(fs_file, "rb") as src, open(disk, "r+b") as dst:
        position = 0
        while chunk := src.read(MIB):
            if chunk.strip(b"\0"):
                dst.seek(offset + position)
                dst.write(chunk)
            position += len(chunk)


def root_tree(folder: Path) -> Path:
    """A tiny root filesystem: /etc/hostname, and /etc/os-release as a symbolic link like Debian's."""
    (folder / "etc").mkdir(parents=True)
    (folder / "usr/lib").mkdir(parents=True)
    (folder / "usr/lib/os-release").write_text(OS_RELEASE)
    os.symlink("../usr/lib/os-release", folder / "etc/os-release")
    (folder / "etc/hostname").write_text("guest-host\n")
    for n in range(200):  # a directory spanning several blocks
        (folder / "etc" / f"file-{n:03d}.conf").write_text("x")
    return folder


def luks_volume(path: Path, size: int) -> Path:
    """A LUKS2 container of ``size`` bytes made by cryptsetup (fast PBKDF2: only its header matters here)."""
    volume = sparse(path, size)
    iterations = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
    run("cryptsetup", "luksFormat", "--batch-mode", *iterations, volume, input="password")
    return volume


def partition(disk: Path, script: str) -> list[dict[str, Any]]:
    run("sfdisk", "-q", disk, input=script)
    return json.loads(run("sfdisk", "--json", disk).stdout)["partitiontable"]["partitions"]


def blkid(disk: Path, offset: int) -> dict[str, str]:
    out = subprocess.run(
        ["blkid", "-p", "-O", str(offset), "-o", "export", str(disk)], capture_output=True, text=True, check=False
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


GPT_SCRIPT = """label: gpt
start=2048, size=40960, type=L, name=root
size=32768, type=U, name=esp
"""


def gpt_guest_disk(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A 64 MiB GPT disk: an ext4 root filesystem (label rootfs, with :func:`root_tree`) and a FAT16 ESP;
    the partitions as ``sfdisk --json`` lists them."""
    disk = sparse(folder / "disk.raw", 64 * MIB)
    parts = partition(disk, GPT_SCRIPT)
    root, esp = ((p["start"] * 512, p["size"] * 512) for p in parts)
    tree = root_tree(folder / "root")
    run("mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", f"offset={root[0]}", "-d", tree, disk, f"{root[1] // 1024}k")
    run("mkfs.vfat", "-F", "16", "-n", "ESP", "--offset", str(esp[0] // 512), disk, str(esp[1] // 1024))
    return disk, parts
