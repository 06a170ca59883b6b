"""The guest view against the real tools: sfdisk, mkfs.*, mkswap, cryptsetup build; blkid, sfdisk --json
and debugfs are the oracles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.builders.guest_disks import OS_RELEASE, blkid, mbr_disk, rich_gpt_disk, run
from tests.conftest import required_tool
from workbench.engine.guest import RawGuestDisk, inspect_guest
from workbench.engine.reader import Reader

TOOLS = ("sfdisk", "blkid", "debugfs", "mkfs.ext4", "mkfs.vfat", "mkfs.xfs", "mkfs.btrfs", "mkfs.ntfs", "mkswap")


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
    return rich_gpt_disk(tmp_path_factory.mktemp("gpt"))


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
    disk, parts = mbr_disk(tmp_path)
    logical = [p for p in parts if p["type"] != "5"]
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
