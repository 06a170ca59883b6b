"""MBR and GPT layouts: sfdisk as the oracle, hand-built hostile tables, and how raw images list them."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.builders import partitions as samples
from tests.helpers import assert_no_parser_error, checks_of, details_of, finding_ids, inspect_file, write
from workbench.engine.formats import partitions
from workbench.engine.inspection import Inspection
from workbench.engine.reader import Reader

MIB = 1 << 20


@pytest.fixture(scope="session")
def sfdisk() -> str:
    found = shutil.which("sfdisk") or shutil.which("sfdisk", path="/usr/sbin:/sbin")
    if not found:
        pytest.fail("sfdisk is required (Debian package fdisk)")
    return found


def make_disk(sfdisk: str, path: Path, script: str, size: int = 64 * MIB) -> dict[str, Any]:
    """A raw disk partitioned by sfdisk, and sfdisk's own JSON view of it."""
    with open(path, "wb") as f:
        f.truncate(size)
    subprocess.run([sfdisk, "-q", str(path)], input=script, text=True, check=True, capture_output=True)
    out = subprocess.run([sfdisk, "--json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["partitiontable"]


def layout(path: Path) -> tuple[str | None, Inspection, int]:
    """The layout module on its own: what its probe says, what its parser fills, and the bytes it read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = Reader(fd, os.fstat(fd).st_size)
        name = partitions.probe(reader)
        info = Inspection(name or "mbr")
        partitions.parse(reader, info)
        return name, info, reader.bytes_read
    finally:
        os.close(fd)


def index_of(node: str) -> int:
    return int(node.rsplit("raw", 1)[1])


# ---------------------------------------------------------------- oracles


def test_gpt_matches_sfdisk(sfdisk: str, tmp_path: Path) -> None:
    path = tmp_path / "g.raw"
    script = (
        "label: gpt\nsize=4M, type=U, name=esp\nsize=10M, type=L, name=root\nsize=8M, type=S\n"
        "type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n"
    )
    table = make_disk(sfdisk, path, script)
    name, info, read = layout(path)
    assert name == "gpt" and info.findings == []
    assert info.details["disk_guid"] == table["id"].lower()
    assert info.details["mbr"] == "protective" and info.details["sector_size"] == table["sectorsize"] == 512
    ours = info.details["partitions"]
    assert [p["type"] for p in ours] == ["EFI System", "Linux filesystem", "Linux swap", "Linux LVM"]
    reverse = {label: guid for guid, label in partitions.GPT_TYPES.items()}
    for theirs, mine in zip(table["partitions"], ours, strict=True):
        assert mine["index"] == index_of(theirs["node"])
        assert (mine["start"], mine["size"]) == (theirs["start"] * 512, theirs["size"] * 512)
        assert reverse[mine["type"]] == theirs["type"].lower()
    names = [
        child.value
        for group in info.fields
        if group.name == "GPT partition entries"
        for entry in group.children
        for child in entry.children
        if child.name == "name"
    ]
    assert names == ["esp", "root", "", ""]
    assert read < 20_000  # MBR, header, 16 KiB entry array, backup header


def test_mbr_with_logical_partitions_matches_sfdisk(sfdisk: str, tmp_path: Path) -> None:
    path = tmp_path / "m.raw"
    table = make_disk(sfdisk, path, "label: dos\n,10M,L,*\n,10M,S\n,,E\n,5M,L\n,5M,83\n,,8e\n")
    name, info, _ = layout(path)
    assert name == "mbr" and info.findings == []
    ours = info.details["partitions"]
    assert len(ours) == len(table["partitions"]) == 6
    for theirs, mine in zip(table["partitions"], ours, strict=True):
        assert mine["index"] == index_of(theirs["node"])
        assert (mine["start"], mine["size"]) == (theirs["start"] * 512, theirs["size"] * 512)
        assert int(mine["type"].split()[0], 16) == int(theirs["type"], 16)
    first = next(group for group in info.fields if group.name == "MBR").children[2]
    assert first.name == "entry 1" and first.children[0].value == "0x80"  # the bootable flag


def test_empty_dos_label_is_an_mbr(sfdisk: str, tmp_path: Path) -> None:
    path = tmp_path / "e.raw"
    make_disk(sfdisk, path, "label: dos\n", size=MIB)
    name, info, _ = layout(path)
    assert name == "mbr" and info.details["partitions"] == [] and info.findings == []


@pytest.mark.parametrize("label", ["gpt", "dos"])
def test_raw_disk_lists_its_own_table_without_mismatch(
    sfdisk: str, tmp_path: Path, qemu_info: Callable[..., Any], label: str
) -> None:
    path = tmp_path / "d.raw"
    make_disk(sfdisk, path, f"label: {label}\n,4M,L\n,,S\n", size=16 * MIB)
    expected = "gpt" if label == "gpt" else "mbr"
    for declared in ("raw", None):
        rep = inspect_file(path, declared)
        assert_no_parser_error(rep)
        assert rep["format"] == "raw" and rep["format_matches"] == [expected]
        assert not finding_ids(rep) & {"format-mismatch", "format-ambiguous", "malformed", "checksum-mismatch"}
        assert rep["virtual_size"] == qemu_info(path, "raw")["virtual-size"] == 16 * MIB
        assert any(field["name"] == f"{expected} (also matches)" for field in rep["fields"])


def test_samples_pass_sfdisk_verify(sfdisk: str, tmp_path: Path) -> None:
    disks = {
        "g.raw": samples.gpt([(samples.EFI_SYSTEM, 2048, 4095, "EFI"), (samples.LINUX_FS, 4096, 16000, "root")]),
        "e.raw": samples.mbr_extended([(0x83, 2048), (0x82, 4096), (0x83, 1000)]),
    }
    for name, data in disks.items():
        path = write(tmp_path, data, name)
        out = subprocess.run([sfdisk, "-V", str(path)], check=True, capture_output=True, text=True)
        assert "No errors detected" in out.stdout
        table = json.loads(subprocess.run([sfdisk, "--json", str(path)], check=True, capture_output=True).stdout)
        theirs = [
            (index_of(p["node"]), p["start"] * 512, p["size"] * 512) for p in table["partitiontable"]["partitions"]
        ]
        _, info, _ = layout(path)
        assert [(p["index"], p["start"], p["size"]) for p in info.details["partitions"]] == theirs
        assert info.findings == []


def test_gpt_on_4k_sectors(tmp_path: Path) -> None:
    # Checked by hand with `losetup -b 4096` and `sfdisk --json`: start 256, size 745 sectors of 4096 bytes.
    path = write(tmp_path, samples.gpt([(samples.LINUX_FS, 256, 1000, "root")], sector=4096), "disk.raw")
    name, info, _ = layout(path)
    assert name == "gpt" and info.findings == []
    assert info.details["sector_size"] == 4096
    assert info.details["partitions"] == [
        {"index": 1, "type": "Linux filesystem", "start": 256 * 4096, "size": 745 * 4096}
    ]


# ---------------------------------------------------------------- probe: no false positives


@pytest.mark.parametrize(
    "sector",
    [
        samples.fat_boot_sector(),
        samples.fat_boot_sector()[:3] + b"NTFS    " + samples.fat_boot_sector()[11:],
        samples.mbr([(0x12, 0x83, 2048, 100)]),  # boot flag neither 0x00 nor 0x80
        samples.mbr([(0x00, 0x83, 0, 100)]),  # starts on the MBR itself
        samples.mbr([(0x00, 0x00, 2048, 100)]),  # an empty type with a range: junk
        samples.mbr([])[:510] + b"\x00\x00" + bytes(MIB),  # no 0x55AA
    ],
    ids=["fat32", "ntfs", "boot-flag", "start-0", "typeless", "no-signature"],
)
def test_not_an_mbr(tmp_path: Path, sector: bytes) -> None:
    path = write(tmp_path, sector, "disk.raw")
    assert layout(path)[0] is None
    rep = inspect_file(path, "raw")
    assert rep["format_matches"] == [] and rep["format"] == "raw"


# ---------------------------------------------------------------- hostile MBR


def test_mbr_partition_of_2_tb_in_1_mb(tmp_path: Path) -> None:
    path = write(tmp_path, samples.mbr([(0x80, 0x83, 2048, 0xFFFFFFFF)], size=MIB), "disk.raw")
    name, info, _ = layout(path)
    assert name == "mbr"
    assert checks_of(info) == ["mbr.partition-past-eof"]
    assert info.findings[0].offset == 446 + 8  # the entry's start LBA
    assert info.details["partitions"][0]["size"] == 0xFFFFFFFF * 512
    rep = inspect_file(path, "raw")
    assert rep["format"] == "raw" and "malformed" in finding_ids(rep)
    assert any(f["detail"].startswith("[mbr] partition 1") for f in rep["findings"])


def test_mbr_overlapping_partitions_and_stray_protective_entry(tmp_path: Path) -> None:
    path = write(tmp_path, samples.mbr([(0, 0x83, 2048, 4096), (0, 0x07, 4000, 100), (0, 0xEE, 1, 2000)]), "disk.raw")
    _, info, _ = layout(path)
    assert checks_of(info) == ["mbr.gpt-missing", "mbr.partitions-overlap"]


def test_extended_chain_loop_is_caught(tmp_path: Path) -> None:
    name, info, read = layout(write(tmp_path, samples.mbr_chain(3, loop=True), "disk.raw"))
    assert name == "mbr"
    assert checks_of(info) == ["mbr.ebr-loop"]
    assert [p["index"] for p in info.details["partitions"]] == [1, 5, 6, 7]
    assert read == 16 + 4 * 512  # the probe's two 8-byte looks for a GPT, the MBR and three records


def test_extended_chain_is_walked_a_bounded_number_of_steps(tmp_path: Path) -> None:
    _, info, read = layout(write(tmp_path, samples.mbr_chain(200), "disk.raw"))
    assert details_of(info, "read-budget") == [
        f"extended partition chain not followed past {partitions.MAX_LOGICAL} logical partitions"
    ]
    assert len(info.details["partitions"]) == 1 + partitions.MAX_LOGICAL
    assert read == 16 + (1 + partitions.MAX_LOGICAL) * 512


def test_extended_chain_pointing_past_eof(tmp_path: Path) -> None:
    disk = samples.mbr([(0, 0x0F, 1 << 30, 100)], size=MIB)
    _, info, _ = layout(write(tmp_path, disk, "disk.raw"))
    assert "mbr.ebr-signature" in checks_of(info)


# ---------------------------------------------------------------- hostile GPT

PARTS = [(samples.LINUX_FS, 2048, 4095, "a"), (samples.LINUX_SWAP, 4096, 8191, "b")]


def gpt_layout(tmp_path: Path, **options: Any) -> tuple[Inspection, int]:
    name, info, read = layout(write(tmp_path, samples.gpt(options.pop("parts", PARTS), **options), "disk.raw"))
    assert name == "gpt"
    return info, read


def test_gpt_bad_header_crc(tmp_path: Path) -> None:
    info, _ = gpt_layout(tmp_path, bad_header_crc=True)
    [detail] = details_of(info, "checksum-mismatch")
    assert detail.startswith("GPT header: header CRC32 is 0x")
    assert len(info.details["partitions"]) == 2


def test_gpt_bad_entries_crc(tmp_path: Path) -> None:
    info, _ = gpt_layout(tmp_path, bad_entries_crc=True)
    [detail] = details_of(info, "checksum-mismatch")
    assert detail.startswith("GPT entry array CRC32 is 0x")


def test_gpt_with_2_to_the_32_entries(tmp_path: Path) -> None:
    info, read = gpt_layout(tmp_path, header={"entry_count": 0xFFFFFFFF})
    checks = checks_of(info)
    assert "gpt.entries-overlap-usable" in checks
    assert details_of(info, "read-budget") == [
        f"GPT entry array is {0xFFFFFFFF * 128} bytes: only 128 entries read, CRC32 not verified"
    ]
    assert len(info.details["partitions"]) == 2
    assert read < 40_000


@pytest.mark.parametrize("entry_size", [0, 1, 100, 2**31])
def test_gpt_bad_entry_size(tmp_path: Path, entry_size: int) -> None:
    info, read = gpt_layout(tmp_path, header={"entry_size": entry_size})
    assert "gpt.entry-size" in checks_of(info)
    assert info.details["partitions"] == []
    assert read < 4096


@pytest.mark.parametrize("lba", [1 << 40, 1, 0])
def test_gpt_entries_outside_the_disk(tmp_path: Path, lba: int) -> None:
    info, _ = gpt_layout(tmp_path, header={"entries_lba": lba})
    assert "gpt.entries-placement" in checks_of(info)
    assert info.details["partitions"] == []


def test_gpt_header_size_out_of_range(tmp_path: Path) -> None:
    info, _ = gpt_layout(tmp_path, header={"header_size": 4000})
    assert checks_of(info) == ["gpt.header-size"]
    assert info.details["partitions"] == []


def test_gpt_partition_past_eof_and_overlap(tmp_path: Path) -> None:
    parts = [*PARTS, (samples.LINUX_FS, 4000, 1 << 32, "huge")]
    info, _ = gpt_layout(tmp_path, parts=parts, header={"last_usable_lba": 1 << 33})
    # the sweep pairs the huge partition 3 with both partitions it covers
    assert checks_of(info) == ["gpt.partition-past-eof", "gpt.partitions-overlap", "gpt.partitions-overlap"]


def test_gpt_partition_outside_usable_range(tmp_path: Path) -> None:
    info, _ = gpt_layout(tmp_path, parts=[(samples.LINUX_FS, 10, 5, "backwards")])
    assert info.details["partitions"][0]["size"] == 0
    assert checks_of(info) == ["gpt.partition-outside-usable"]


def test_gpt_many_entries_beyond_the_listed_ones(tmp_path: Path) -> None:
    parts = [(samples.LINUX_FS, 2048 + 8 * n, 2055 + 8 * n, f"p{n}") for n in range(130)]
    info, _ = gpt_layout(tmp_path, parts=parts, entry_count=256)
    assert len(info.details["partitions"]) == partitions.MAX_ENTRIES
    assert details_of(info, "read-budget") == ["GPT has 256 entries; only the first 128 are listed"]
    assert "checksum-mismatch" not in {f.id for f in info.findings}  # the 32 KiB array was read whole


def test_gpt_truncated_disk_and_missing_protective_mbr(tmp_path: Path) -> None:
    disk = samples.gpt(PARTS, protective=False)[: 6 * MIB]
    name, info, _ = layout(write(tmp_path, disk, "disk.raw"))
    assert name == "gpt"
    found = {(f.detail, f.severity) for f in info.findings}
    assert ("GPT disk without a protective MBR (no 0x55AA at byte 510)", "warning") in found
    assert ("backup GPT header at LBA 16383 is past the end of the file", "warning") in found
    assert info.details["mbr"] == "missing"


def test_gpt_with_hybrid_mbr(tmp_path: Path) -> None:
    disk = bytearray(samples.gpt(PARTS))
    disk[:512] = samples.mbr_sector([(0, 0xEE, 1, 2047), (0x80, 0x83, 2048, 2048)])
    _, info, _ = layout(write(tmp_path, bytes(disk), "disk.raw"))
    assert info.details["mbr"] == "hybrid" and info.findings == []


def test_gpt_truncated_at_many_lengths(tmp_path: Path) -> None:
    disk = samples.gpt(PARTS)
    path = tmp_path / "t.raw"
    for length in (520, 600, 1024, 1100, 9000, 17408, 20000):
        path.write_bytes(disk[:length])
        rep = inspect_file(path, "raw")
        assert_no_parser_error(rep)
        assert rep["format_matches"] == ["gpt"] and rep["format"] == "raw"
        assert any(f["id"] == "malformed" and f["detail"].startswith("[gpt]") for f in rep["findings"]), length


def test_backup_header_checked(tmp_path: Path) -> None:
    disk = bytearray(samples.gpt(PARTS))
    struct.pack_into("<I", disk, len(disk) - 512 + 16, 0)  # backup header CRC
    _, info, _ = layout(write(tmp_path, bytes(disk), "disk.raw"))
    [detail] = details_of(info, "checksum-mismatch")
    assert detail.startswith("backup GPT header: header CRC32 is 0x00000000")


def test_demo_images_are_clean(tmp_path: Path) -> None:
    for name, declared, data in samples.demo_images():
        rep = inspect_file(write(tmp_path, data, name), declared)
        assert rep["format"] == "raw" and rep["format_matches"] in (["gpt"], ["mbr"]), name
        assert finding_ids(rep) == {"unencrypted"}, rep["findings"]
