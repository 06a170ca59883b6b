"""The guest view against real tools for the layers the main oracle disk does not hold: exFAT, squashfs,
ISO 9660 (mkfs.exfat, mksquashfs, genisoimage build; blkid is the oracle) and MD RAID member superblocks
(no tool writes one into a plain file, so a builder does; blkid and ``mdadm --examine`` are the oracles)."""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.builders.guest_disks import MIB, blkid, partition, place, root_tree, run, sparse
from tests.conftest import required_tool
from workbench.engine.guest import RawGuestDisk, inspect_guest
from workbench.engine.reader import Reader

SET_UUID = uuid.UUID("0123456789abcdef0123456789abcdef")
DEVICE_UUID = uuid.UUID("fedcba9876543210fedcba9876543210")
SCRIPT = """label: gpt
start=2048, size=65536, name=exfat
size=32768, name=squash
size=32768, name=iso
size=131072, name=md
"""


def guest(disk: Path) -> dict[str, Any]:
    fd = os.open(disk, os.O_RDONLY)
    try:
        value, _, _ = inspect_guest(RawGuestDisk(Reader(fd, os.fstat(fd).st_size, budget=1 << 40)))
    finally:
        os.close(fd)
    return value


def md_1x_superblock(size: int, data_offset: int, level: int = 1, name: bytes = b"host:mirror") -> bytes:
    """An MD 1.x superblock (md_p.h ``mdp_superblock_1``) for a member of ``size`` bytes, checksum set."""
    max_dev = 2
    sb = bytearray(256 + 2 * max_dev)
    struct.pack_into("<IIII", sb, 0, 0xA92B4EFC, 1, 0, 0)
    sb[16:32] = SET_UUID.bytes
    sb[32 : 32 + len(name)] = name
    sectors = size // 512 - data_offset
    struct.pack_into("<QIIQII", sb, 64, 1_700_000_000, level, 0, sectors, 0, 2)
    struct.pack_into("<QQQ", sb, 128, data_offset, sectors, 8)
    sb[168:184] = DEVICE_UUID.bytes
    struct.pack_into("<QQQ", sb, 192, 1_700_000_001, 5, (1 << 64) - 1)
    struct.pack_into("<I", sb, 220, max_dev)
    struct.pack_into("<HH", sb, 256, 0, 1)
    words = sum(struct.unpack_from(f"<{len(sb) // 4}I", sb))
    struct.pack_into("<I", sb, 216, ((words & 0xFFFFFFFF) + (words >> 32)) & 0xFFFFFFFF)
    return bytes(sb)


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A GPT disk with exFAT, squashfs and ISO 9660 partitions and a RAID 1 member holding ext4."""
    for tool in ("sfdisk", "blkid", "mkfs.exfat", "mksquashfs", "genisoimage", "mkfs.ext4", "mdadm"):
        required_tool(tool, "util-linux exfatprogs squashfs-tools genisoimage e2fsprogs mdadm")
    tmp = tmp_path_factory.mktemp("more")
    image = sparse(tmp / "disk.raw", 200 * MIB)
    parts = partition(image, SCRIPT)
    start = [p["start"] * 512 for p in parts]
    size = [p["size"] * 512 for p in parts]
    exfat = sparse(tmp / "exfat", size[0])
    run("mkfs.exfat", "-L", "Uploads", exfat)
    place(image, exfat, start[0])
    tree = root_tree(tmp / "tree")
    run("mksquashfs", tree, tmp / "squash", "-quiet", "-noappend")
    place(image, tmp / "squash", start[1])
    run("genisoimage", "-quiet", "-V", "INSTALL_CD", "-o", tmp / "iso", tree)
    place(image, tmp / "iso", start[2])
    member = sparse(tmp / "member", size[3])
    data_offset = 2048  # sectors: the mirror's data (an ext4) starts 1 MiB into the member
    with open(member, "r+b") as f:
        f.seek(4096)
        f.write(md_1x_superblock(size[3], data_offset))
    run("mkfs.ext4", "-q", "-F", "-L", "mirrored", "-E", f"offset={data_offset * 512}", member, "32M")
    place(image, member, start[3])
    return image, parts


def test_exfat_squashfs_iso_match_blkid(disk: tuple[Path, list[dict[str, Any]]]) -> None:
    image, _ = disk
    volumes = guest(image)["volumes"]
    for volume, kind in zip(volumes[:3], ("exfat", "squashfs", "iso9660"), strict=True):
        oracle = blkid(image, volume["start"])
        found = volume["filesystem"]
        assert found is not None, oracle
        assert (found["type"], oracle["TYPE"]) == (kind, kind)
        assert found.get("label") == oracle.get("LABEL")
        assert found.get("uuid") == oracle.get("UUID")
    assert volumes[0]["filesystem"]["label"] == "Uploads"
    assert volumes[2]["filesystem"]["label"] == "INSTALL_CD"


def test_md_member_matches_blkid_and_mdadm(disk: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    image, parts = disk
    volumes = guest(image)["volumes"]
    member = next(v for v in volumes if v["name"] == "md")
    container = member["container"]
    oracle = blkid(image, member["start"])
    assert (container["type"], oracle["TYPE"]) == ("linux_raid_member", "linux_raid_member")
    assert container["uuid"] == oracle["UUID"] == str(SET_UUID)
    assert container["name"] == oracle["LABEL"] == "host:mirror"
    assert container["version"] == oracle["VERSION"] == "1.2"
    copy = tmp_path / "member"
    with open(image, "rb") as src, open(copy, "wb") as dst:
        src.seek(member["start"])
        dst.write(src.read(member["length"]))
    examined = run("mdadm", "--examine", "--export", copy).stdout
    fields = dict(line.split("=", 1) for line in examined.splitlines() if "=" in line)
    assert fields["MD_LEVEL"] == f"raid{container['level']}"
    assert int(fields["MD_DEVICES"]) == container["raid_disks"]
    assert container["data_offset"] == 2048 * 512
    mirrored = [v for v in volumes if v["filesystem"] and v["filesystem"].get("label") == "mirrored"]
    assert len(mirrored) == 1, "the RAID 1 member's data area is examined as a copy of the array"
    assert mirrored[0]["start"] == member["start"] + 2048 * 512
    assert mirrored[0]["filesystem"]["uuid"] == blkid(image, mirrored[0]["start"])["UUID"]
