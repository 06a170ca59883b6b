"""Guest disks built with the real tools (sfdisk, mkfs.*, mkswap, cryptsetup) in sparse raw files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.builders.lvm import EXTENT, PE_START, write_pv

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


def linux_disk(folder: Path, size: int, boot: int, root: int, swap: int) -> tuple[Path, list[dict[str, Any]], str]:
    """A Linux-like GPT disk of ``size`` bytes: /boot ext4 (label boot, ``boot`` bytes) and an LVM PV over
    the rest holding LV vg0/root (ext4 rootfs with :func:`root_tree`, ``root`` bytes) and vg0/swap (label
    swappy, ``swap`` bytes). Sparse; returns the disk, ``sfdisk --json``'s partitions and the PV UUID."""
    disk = sparse(folder / "linux.raw", size)
    parts = partition(disk, f"label: gpt\nstart=2048, size={boot // 512}, type=L, name=boot\ntype=V, name=lvm\n")
    (boot_at, _), (pv_at, pv_size) = ((p["start"] * 512, p["size"] * 512) for p in parts)
    lvs = {"root": (0, root // EXTENT), "swap": (root // EXTENT, swap // EXTENT)}
    pv_uuid = write_pv(disk, pv_at, pv_size, lvs=lvs)
    run("mkfs.ext4", "-q", "-F", "-L", "boot", "-E", f"offset={boot_at}", disk, f"{boot // 1024}k")
    tree = root_tree(folder / "linux-root")
    root_at = pv_at + PE_START
    run("mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", f"offset={root_at}", "-d", tree, disk, f"{root // 1024}k")
    swap_file = sparse(folder / "linux-swap", swap)
    run("mkswap", "-L", "swappy", swap_file)
    place(disk, swap_file, root_at + root)
    swap_file.unlink()
    return disk, parts, pv_uuid


RICH_GPT_SCRIPT = """label: gpt
start=2048, size=131072, type=L, name=root
size=65536, type=U, name=esp
size=32768, type=S, name=swap
size=614400, type=L, name=data-xfs
size=245760, type=L, name=data-btrfs
size=65536, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=windows
size=40960, type=L, name=secret
"""
MBR_SCRIPT = """label: dos
start=2048, size=32768, type=c
start=34816, size=131072, type=5
start=36864, size=40960, type=83
start=79872, size=40960, type=83
"""


def rich_gpt_disk(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A 1.25 GiB sparse GPT disk: ext4 rootfs (with :func:`root_tree`), FAT16 ESP, swap, XFS, Btrfs, NTFS
    (built in files and copied in place) and a LUKS2 container; the partitions as ``sfdisk --json``."""
    disk = sparse(folder / "disk.raw", 1280 * MIB)
    parts = partition(disk, RICH_GPT_SCRIPT)
    start = [p["start"] * 512 for p in parts]
    size = [p["size"] * 512 for p in parts]
    tree = root_tree(folder / "root")
    run("mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", f"offset={start[0]}", "-d", tree, disk, f"{size[0] // 1024}k")
    run("mkfs.vfat", "-F", "16", "-n", "ESP", "--offset", str(start[1] // 512), disk, str(size[1] // 1024))
    builds = [
        (2, ["mkswap", "-L", "swappy"]),
        (3, ["mkfs.xfs", "-q", "-L", "xfsdata"]),
        (4, ["mkfs.btrfs", "-q", "-L", "btrdata"]),
        (5, ["mkfs.ntfs", "-q", "-F", "-Q", "-L", "WinData"]),
    ]
    env = os.environ | {"TEST_DIR": "1", "TEST_DEV": "1", "QA_CHECK_FS": "1"}  # mkfs.xfs: allow < 300 MiB
    for index, cmd in builds:
        fs_file = sparse(folder / f"fs{index}", size[index])
        run(*cmd, fs_file, env=env)
        place(disk, fs_file, start[index])
    place(disk, luks_volume(folder / "luks", size[6]), start[6])
    return disk, parts


def mbr_disk(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A 96 MiB MBR disk: FAT16 BOOT, then an extended partition with two logical ones, the first ext2
    (label old), the second empty; ``sfdisk --json``'s partitions (the extended one included)."""
    disk = sparse(folder / "mbr.raw", 96 * MIB)
    parts = partition(disk, MBR_SCRIPT)
    logical = [p for p in parts if p["type"] != "5"]
    run("mkfs.vfat", "-F", "16", "-n", "BOOT", "--offset", "2048", disk, "16384")
    run("mkfs.ext4", "-q", "-F", "-t", "ext2", "-L", "old", "-E", f"offset={logical[1]['start'] * 512}", disk, "20M")
    return disk, parts
