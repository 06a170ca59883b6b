"""Issue 17's "done when": ``inspect --guest --json`` (the real sandboxed CLI) agrees with sfdisk, blkid and
debugfs on every test disk in every container format qemu-img converts to.

Three raw disks: the rich GPT disk (ext4 with os-release, FAT16, swap, XFS, Btrfs, NTFS, LUKS), a GPT disk
with /boot and an LVM PV holding root ext4 and swap, and an MBR disk with logical partitions. The oracles
run once per disk on the raw file; each disk is converted once per format."""

from __future__ import annotations

import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.builders.guest_disks import MIB, blkid, linux_disk, mbr_disk, rich_gpt_disk, run
from tests.builders.lvm import PE_START
from tests.conftest import required_tool
from tests.test_guest_cli import inspect_json

TOOLS = ("sfdisk", "blkid", "debugfs", "mkfs.ext4", "mkfs.vfat", "mkfs.xfs", "mkfs.btrfs", "mkfs.ntfs", "mkswap")
CONTAINERS = ("crypto_LUKS", "LVM2_member")  # blkid TYPEs the guest view reports as `container`
FORMATS = {  # id: qemu-img convert -O arguments
    "qcow2": ("qcow2",),
    "qcow2-compressed": ("qcow2", "-c"),
    "vmdk-monolithicSparse": ("vmdk", "-o", "subformat=monolithicSparse"),
    "vmdk-streamOptimized": ("vmdk", "-o", "subformat=streamOptimized"),
    "vpc": ("vpc",),
    "vhdx": ("vhdx",),
    "vdi": ("vdi",),
    "qed": ("qed",),
    "parallels": ("parallels",),
}
LV_ROOT, LV_SWAP = 48 * MIB, 8 * MIB


@dataclass
class Oracle:
    """What the real tools say about one raw disk: volumes as (index, start, length, name), and per volume
    index blkid's export and debugfs's /etc/os-release (parsed)."""

    disk: Path
    volumes: list[tuple[int, int, int, str | None]]
    blkid: dict[int, dict[str, str]]
    os_release: dict[int, dict[str, str] | None]


def debugfs_os_release(disk: Path, offset: int) -> dict[str, str] | None:
    """/etc/os-release of the ext filesystem at ``offset``, the symbolic link followed once (debugfs's
    ``cat`` does not follow links); None when there is none."""
    device = f"{disk}?offset={offset}"
    stat = subprocess.run(["debugfs", "-R", "stat /etc/os-release", device], capture_output=True, text=True).stdout
    link = re.search(r'Fast link dest: "([^"]*)"', stat)
    path = posixpath.normpath(posixpath.join("/etc", link.group(1))) if link else "/etc/os-release"
    text = subprocess.run(["debugfs", "-R", f"cat {path}", device], capture_output=True, text=True).stdout
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs} or None


def oracle(disk: Path, volumes: list[tuple[int, int, int, str | None]]) -> Oracle:
    found = {index: blkid(disk, start) for index, start, _, _ in volumes}
    os_release = {
        index: debugfs_os_release(disk, start) if found[index].get("TYPE", "").startswith("ext") else None
        for index, start, _, _ in volumes
    }
    return Oracle(disk, volumes, found, os_release)


def sfdisk_volumes(parts: list[dict[str, Any]]) -> list[tuple[int, int, int, str | None]]:
    """sfdisk's partitions as volumes: numbered by their device node, the extended container left out."""
    return [
        (int(p["node"].rsplit("raw", 1)[1]), p["start"] * 512, p["size"] * 512, p.get("name"))
        for p in parts
        if p["type"] != "5"
    ]


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Oracle]:
    for tool in (*TOOLS, "cryptsetup"):
        required_tool(tool, "e2fsprogs dosfstools xfsprogs btrfs-progs ntfs-3g util-linux cryptsetup-bin")
    rich, rich_parts = rich_gpt_disk(tmp_path_factory.mktemp("rich"))
    linux, linux_parts, _ = linux_disk(tmp_path_factory.mktemp("lvm"), 128 * MIB, 16 * MIB, LV_ROOT, LV_SWAP)
    mbr, mbr_parts = mbr_disk(tmp_path_factory.mktemp("mbr"))
    root_at = linux_parts[1]["start"] * 512 + PE_START  # the builder's LVs: root at PE 0, swap after it
    lvs = [(3, root_at, LV_ROOT, "vg0/root"), (4, root_at + LV_ROOT, LV_SWAP, "vg0/swap")]
    return {
        "rich-gpt": oracle(rich, sfdisk_volumes(rich_parts)),
        "lvm": oracle(linux, sfdisk_volumes(linux_parts) + lvs),
        "mbr-logical": oracle(mbr, sfdisk_volumes(mbr_parts)),
    }


def test_oracles_see_every_layer(disks: dict[str, Oracle]) -> None:
    """The disks hold what the comparison below relies on (so an empty oracle cannot pass it)."""
    types = {name: [o.get("TYPE") for o in d.blkid.values()] for name, d in disks.items()}
    assert types == {
        "rich-gpt": ["ext4", "vfat", "swap", "xfs", "btrfs", "ntfs", "crypto_LUKS"],
        "lvm": ["ext4", "LVM2_member", "ext4", "swap"],
        "mbr-logical": ["vfat", "ext2", None],
    }
    assert [i for d in disks.values() for i, found in d.os_release.items() if found] == [1, 3]
    assert disks["lvm"].os_release[3] == disks["rich-gpt"].os_release[1]
    assert disks["lvm"].os_release[3]["PRETTY_NAME"] == "Testix GNU/Linux 13 (trixie)"  # type: ignore[index]


@pytest.mark.parametrize("name", ["rich-gpt", "lvm", "mbr-logical"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_guest_matches_the_tools_in_every_container(
    fmt: str, name: str, disks: dict[str, Oracle], qemu_img: str, tmp_path: Path
) -> None:
    expected = disks[name]
    image = tmp_path / f"{name}.{fmt}"
    out_fmt, *options = FORMATS[fmt]
    run(qemu_img, "convert", "-f", "raw", "-O", out_fmt, *options, expected.disk, image)
    report = inspect_json("--guest", "--guest-budget", "64M", "-f", out_fmt, str(image))
    assert report["format"] == out_fmt
    guest = report["guest"]
    assert [(v["index"], v["start"], v["length"], v["name"]) for v in guest["volumes"]] == expected.volumes
    for volume in guest["volumes"]:
        tool = expected.blkid[volume["index"]]
        if tool.get("TYPE") in CONTAINERS:
            assert volume["filesystem"] is None
            assert (volume["container"]["type"], volume["container"]["uuid"]) == (tool["TYPE"], tool["UUID"])
        elif tool:
            found = volume["filesystem"]
            assert (found["type"], found["label"], found["uuid"]) == (tool["TYPE"], tool.get("LABEL"), tool["UUID"])
        else:
            assert volume["filesystem"] is None and volume["container"] is None
        os_release = expected.os_release[volume["index"]]
        if os_release is None:
            assert volume["os"] is None
        else:
            assert volume["os"]["os_release"] == os_release
            assert volume["os"]["name"] == os_release["PRETTY_NAME"]
    ids = {f["id"] for f in report["findings"]}
    assert not ids & {"guest-budget", "guest-malformed", "guest-not-in-file"}, report["findings"]
