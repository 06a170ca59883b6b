"""The guest view against the real tools: sfdisk, mkfs.*, mkswap, cryptsetup build; blkid, sfdisk --json
and debugfs are the oracles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.builders.guest_disks import MIB, OS_RELEASE, blkid, luks_volume, partition, place, root_tree, run, sparse
from tests.conftest import required_tool
from workbench.engine.guest import RawGuestDisk, inspect_guest
from workbench.engine.reader import Reader

TOOLS = ("sfdisk", "blkid", "debugfs", "mkfs.ext4", "mkfs.vfat", "mkfs.xfs", "mkfs.btrfs", "mkfs.ntfs", "mkswap")
GPT_SCRIPT = """label: gpt
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


def guest(disk: Path) -> tuple[dict[str, Any], list[Any], list[Any]]:
    fd = os.open(disk, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return inspect_guest(RawGuestDisk(Reader(fd, size, budget=1 << 40)))
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def gpt_disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    for tool in (*TOOLS, "cryptsetup"):
        required_tool(tool, "e2fsprogs dosfstools xfsprogs btrfs-progs ntfs-3g util-linux cryptsetup-bin")
    tmp = tmp_path_factory.mktemp("gpt")
    disk = sparse(tmp / "disk.raw", 1280 * MIB)
    parts = partition(disk, GPT_SCRIPT)
    start = [p["start"] * 512 for p in parts]
    size = [p["size"] * 512 for p in parts]
    tree = root_tree(tmp / "root")
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
        fs_file = sparse(tmp / f"fs{index}", size[index])
        run(*cmd, fs_file, env=env)
        place(disk, fs_file, start[index])
    luks = luks_volume(tmp / "luks", size[6])
    place(disk, luks, start[6])
    return disk, parts


def test_partitions_match_sfdisk(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, parts = gpt_disk
    value, fields, findings = guest(disk)
    assert value["partition_table"]["type"] == "gpt"
    got = [(v["index"], v["start"], v["length"], v["name"]) for v in value["volumes"]]
    assert got == [(i + 1, p["start"] * 512, p["size"] * 512, p["name"]) for i, p in enumerate(parts)]
    assert not [f for f in findings if f.id in ("guest-layout", "guest-malformed", "guest-budget")]
    assert fields


def test_filesystems_match_blkid(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, parts = gpt_disk
    value, _, _ = guest(disk)
    for volume in value["volumes"][:6]:
        oracle = blkid(disk, volume["start"])
        found = volume["filesystem"]
        assert found is not None, oracle
        assert found["type"] == oracle["TYPE"]
        assert found["label"] == oracle.get("LABEL")
        assert found["uuid"] == oracle.get("UUID")
    types = [v["filesystem"]["type"] for v in value["volumes"][:6]]
    assert types == ["ext4", "vfat", "swap", "xfs", "btrfs", "ntfs"]
    assert value["volumes"][1]["filesystem"]["version"] == "FAT16"
    assert value["volumes"][0]["filesystem"]["state"] == "clean"


def test_os_release_matches_debugfs(gpt_disk: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    disk, parts = gpt_disk
    value, _, _ = guest(disk)
    root = tmp_path / "root.ext4"
    with open(disk, "rb") as src:
        src.seek(parts[0]["start"] * 512)
        root.write_bytes(src.read(parts[0]["size"] * 512))
    assert run("debugfs", "-R", "cat /usr/lib/os-release", root).stdout == OS_RELEASE
    found = value["volumes"][0]["os"]
    assert found["name"] == "Testix GNU/Linux 13 (trixie)"
    assert (found["id"], found["version_id"], found["hostname"]) == ("testix", "13", "guest-host")
    assert all(v["os"] is None for v in value["volumes"][1:])


def test_luks_volume_reported_not_opened(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, _ = gpt_disk
    value, _, findings = guest(disk)
    luks = value["volumes"][6]
    oracle = blkid(disk, luks["start"])
    assert luks["container"]["type"] == oracle["TYPE"] == "crypto_LUKS"
    assert luks["container"]["uuid"] == oracle["UUID"]
    assert luks["filesystem"] is None
    assert [f.offset for f in findings if f.id == "guest-encrypted-volume"] == [luks["start"]]


def test_guest_bytes_bounded_by_budget(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, _ = gpt_disk
    value, _, _ = guest(disk)
    assert 0 < value["bytes_read"] <= value["budget"] == 4 << 20
    fd = os.open(disk, os.O_RDONLY)
    try:
        small, _, findings = inspect_guest(RawGuestDisk(Reader(fd, os.fstat(fd).st_size, 1 << 40)), 64 << 10)
    finally:
        os.close(fd)
    assert small["bytes_read"] <= 64 << 10
    assert any(f.id == "guest-budget" and "not examined" in f.detail for f in findings)


def test_mbr_with_logical_partitions_matches_sfdisk(tmp_path: Path) -> None:
    for tool in TOOLS[:5]:
        required_tool(tool, "util-linux e2fsprogs dosfstools")
    disk = sparse(tmp_path / "mbr.raw", 96 * MIB)
    parts = partition(disk, MBR_SCRIPT)
    logical = [p for p in parts if p["type"] != "5"]
    run("mkfs.vfat", "-F", "16", "-n", "BOOT", "--offset", "2048", disk, "16384")
    run("mkfs.ext4", "-q", "-F", "-t", "ext2", "-L", "old", "-E", f"offset={logical[1]['start'] * 512}", disk, "20M")
    value, _, findings = guest(disk)
    assert value["partition_table"]["type"] == "mbr"
    got = [(v["index"], v["start"], v["length"]) for v in value["volumes"]]
    assert got == [(int(p["node"].rsplit("raw", 1)[1]), p["start"] * 512, p["size"] * 512) for p in logical]
    assert value["volumes"][0]["filesystem"]["type"] == "vfat"
    assert value["volumes"][0]["filesystem"]["version"] == "FAT16"
    ext2 = value["volumes"][1]["filesystem"]
    assert (ext2["type"], ext2["label"], ext2["uuid"]) == (
        "ext2",
        "old",
        blkid(disk, logical[1]["start"] * 512)["UUID"],
    )
    assert value["volumes"][2]["filesystem"] is None
    assert not [f for f in findings if f.id.startswith("guest-") and f.id != "guest-encrypted-volume"]
