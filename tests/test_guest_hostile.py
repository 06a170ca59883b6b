"""Hostile guest layouts: each bounded, each a finding, none a hang or an exception."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from tests.builders import partitions
from tests.builders.guest_disks import MIB, blkid, run, sparse
from tests.builders.lvm import pv_image
from tests.conftest import required_tool
from workbench.engine.filesystems.ext import read_superblock
from workbench.engine.filesystems.ext_files import ExtFiles
from workbench.engine.guest import RawGuestDisk, inspect_guest
from workbench.engine.guest_disk import BudgetedDisk, View
from workbench.engine.inspection import Inspection
from workbench.engine.reader import Reader

PARTS = [(partitions.LINUX_FS, 2048, 4095, "one")]


def guest_of(path: Path, budget: int = 4 << 20) -> tuple[dict[str, Any], list[Any]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        value, _, findings = inspect_guest(RawGuestDisk(Reader(fd, os.fstat(fd).st_size, 1 << 40)), budget)
    finally:
        os.close(fd)
    assert value["bytes_read"] <= budget
    assert not [f for f in findings if "internal error" in f.detail]
    return value, findings


def ids(findings: list[Any]) -> set[str]:
    return {f.id for f in findings}


def test_extended_chain_pointing_back(tmp_path: Path) -> None:
    disk = tmp_path / "loop.raw"
    disk.write_bytes(partitions.mbr_chain(3, loop=True))
    value, findings = guest_of(disk)
    assert any(f.id == "guest-layout" and "loops back" in f.detail for f in findings)
    assert value["partition_table"]["type"] == "mbr"


def test_gpt_claiming_millions_of_entries(tmp_path: Path) -> None:
    disk = tmp_path / "huge.raw"
    disk.write_bytes(partitions.gpt(PARTS, header={"entry_count": 5_000_000}))
    value, findings = guest_of(disk)
    assert "guest-budget" in ids(findings) or "guest-layout" in ids(findings)
    assert len(value["volumes"]) <= 128


def test_gpt_headers_that_disagree(tmp_path: Path) -> None:
    data = bytearray(partitions.gpt(PARTS))
    backup = len(data) - 512
    data[backup + 56 : backup + 72] = bytes(range(16))  # another disk GUID in the backup header
    disk = tmp_path / "disagree.raw"
    disk.write_bytes(bytes(data))
    _, findings = guest_of(disk)
    assert any(f.id == "guest-layout" and "disk_guid" in f.detail for f in findings)


def test_lvm_pv_with_linear_lv_matches_blkid(tmp_path: Path) -> None:
    required_tool("mkfs.ext4", "e2fsprogs")
    disk = tmp_path / "pv.raw"
    pv_uuid = pv_image(disk, lvs={"root": (0, 8)})  # 8 extents of 4 MiB at PE 0
    run("mkfs.ext4", "-q", "-F", "-L", "lvroot", "-E", f"offset={1 * MIB}", disk, "32M")
    value, findings = guest_of(disk)
    pv, lv = value["volumes"]
    assert pv["container"]["type"] == blkid(disk, 0)["TYPE"] == "LVM2_member"
    assert pv["container"]["uuid"] == blkid(disk, 0)["UUID"] == pv_uuid
    assert (lv["name"], lv["start"], lv["length"]) == ("vg0/root", 1 * MIB, 32 * MIB)
    assert lv["filesystem"]["label"] == "lvroot"
    assert lv["filesystem"]["uuid"] == blkid(disk, MIB)["UUID"]
    assert not [f for f in findings if f.id in ("guest-malformed", "guest-layout")]


def test_lvm_metadata_huge_or_nested(tmp_path: Path) -> None:
    nested = tmp_path / "nested.raw"
    pv_image(nested, text="vg0 {\n" + "a {\n" * 40 + "}\n" * 41)
    _, findings = guest_of(nested)
    assert any(f.id == "guest-malformed" and "nested deeper" in f.detail for f in findings)
    huge = tmp_path / "huge.raw"
    pv_image(huge, text="vg0 {\n" + "x = 1\n" * 20000 + "}\n")
    _, findings = guest_of(huge)
    assert any(f.id == "guest-budget" and "LVM2 metadata text" in f.detail for f in findings)


def _ext_with_etc(tmp_path: Path) -> tuple[Path, ExtFiles, int, bytes]:
    required_tool("mkfs.ext4", "e2fsprogs")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("h\n")
    image = sparse(tmp_path / "fs.ext4", 16 * MIB)
    run("mkfs.ext4", "-q", "-F", "-d", tree, image)
    fd = os.open(image, os.O_RDONLY)
    try:
        view = View.window(BudgetedDisk(RawGuestDisk(Reader(fd, 16 * MIB, 1 << 40))), 0, 16 * MIB)
        values, _ = read_superblock(view, Inspection("ext"))
        files = ExtFiles(view, values)
        number, inode = files.lookup("/etc") or (0, b"")
        block = files._blocks(inode, number, files.block)[0][1] * files.block
    finally:
        os.close(fd)
    return image, files, block, inode


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_ext_directory_record_length_zero(tmp_path: Path) -> None:
    image, _, block, _ = _ext_with_etc(tmp_path)
    _patch(image, block + 4, b"\0\0")  # the first entry of /etc: rec_len 0 (a naive reader spins forever)
    value, findings = guest_of(image)
    assert any(f.id == "guest-malformed" and "record length 0" in f.detail for f in findings)
    assert value["volumes"][0]["os"] is None


def test_ext_inode_number_past_the_table(tmp_path: Path) -> None:
    image, files, block, _ = _ext_with_etc(tmp_path)
    with open(image, "rb") as f:
        f.seek(block)
        data = f.read(files.block)
    at = data.index(b"hostname") - 8
    _patch(image, block + at, struct.pack("<I", files.inodes + 1000))
    _, findings = guest_of(image)
    assert any(f.id == "guest-malformed" and "outside 1.." in f.detail for f in findings)


def test_ext_extent_tree_loop(tmp_path: Path) -> None:
    image, files, block, inode = _ext_with_etc(tmp_path)
    with open(image, "rb") as f:
        raw = f.read()
    at = raw.index(inode)  # the /etc inode in its table; make its extent root an index node pointing at itself
    root = struct.pack("<HHHHI", 0xF30A, 1, 4, 1, 0) + struct.pack("<IIHH", 0, block // files.block, 0, 0)
    _patch(image, at + 40, root)
    _patch(
        image, block, struct.pack("<HHHHI", 0xF30A, 1, 340, 1, 0) + struct.pack("<IIHH", 0, block // files.block, 0, 0)
    )
    _, findings = guest_of(image)
    assert any(f.id == "guest-malformed" and "extent" in f.detail for f in findings)
