"""The block-table formats' guest-to-file mappings (VMDK, VHD, VHDX, VDI, Parallels) against qemu:
``qemu-img map --output=json`` for the runs, ``qemu-img convert -O raw`` for every byte read through them,
the guest view of a converted GPT disk against the raw disk's, and hand-patched hostile tables."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import uuid
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from tests.builders import vmdk as vmdk_samples
from tests.builders.guest_disks import run
from tests.test_cli import run_cli
from tests.test_guest_cli import gpt_disk, inspect_json  # noqa: F401  (gpt_disk is a fixture)
from workbench.engine import detect
from workbench.engine.formats.vhdx import FILE_PARAMETERS, METADATA_ENTRY, METADATA_HEADER
from workbench.engine.mapping import (
    Kind,
    MappedGuestDisk,
    Mapping,
    Run,
    Table,
    Unmappable,
    _joins,  # qemu_map's own merge rule, applied to qemu's entries
    mapping_for,
    qemu_map,
)
from workbench.engine.reader import BudgetExceeded, Reader
from workbench.engine.report import _run_parser, build

pytestmark = pytest.mark.qemu
MIB = 1 << 20
WRITES = ("write -P 0xab 0 64k", "write -P 0xcd 3M 1k", "write -z 5M 1M", "write -P 0xef 7M 512")
KEYS = ("start", "length", "present", "zero", "data", "offset")


def mapping_of(path: Path, budget: int = 64 * MIB) -> Iterator[tuple[Mapping, Reader]]:
    """The engine's mapping of ``path`` (its header parsed as the report does), with its reader."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        header = Reader(fd, size)
        fmt = detect.primary_format(detect.detect(header), None, header)
        reader = Reader(fd, size, budget)
        yield mapping_for(fmt, reader, _run_parser(header, fmt)), reader
    finally:
        os.close(fd)


def one_mapping(path: Path, budget: int = 64 * MIB) -> tuple[Mapping, Reader, Iterator[Any]]:
    it = mapping_of(path, budget)
    mapping, reader = next(it)
    return mapping, reader, it


def image(qemu_img: str, tmp_path: Path, fmt: str, *options: str) -> Path:
    """An 8 MiB image of ``fmt`` with data, a zero write and a lone sector written by qemu-io."""
    path = tmp_path / f"disk.{fmt}"
    run(qemu_img, "create", "-q", "-f", fmt, *options, path, "8M")
    run("qemu-io", "-f", fmt, *(arg for w in WRITES for arg in ("-c", w)), path)
    return path


def converted(qemu_img: str, tmp_path: Path, fmt: str, *options: str) -> Path:
    """The same content converted from a raw file by qemu-img (streamOptimized, static, fixed...)."""
    raw = tmp_path / "source.raw"
    run(qemu_img, "create", "-q", "-f", "raw", raw, "8M")
    run("qemu-io", "-f", "raw", *(arg for w in WRITES for arg in ("-c", w)), raw)
    path = tmp_path / f"conv.{fmt}"
    run(qemu_img, "convert", "-f", "raw", "-O", fmt, *options, raw, path)
    return path


def qemu_runs(qemu_img: str, path: Path, fmt: str) -> list[dict[str, Any]]:
    """qemu-img's map with the host file's holes inside data blocks (``data`` and ``zero`` both set, which
    qemu learns from the host filesystem, not from the image) read as data, merged again."""
    out: list[dict[str, Any]] = []
    for e in json.loads(run(qemu_img, "map", "--output=json", "-f", fmt, path).stdout):
        entry = {k: e[k] for k in KEYS if k in e} | ({"zero": False} if e["data"] else {})
        if out and _joins(out[-1], entry):  # type: ignore[arg-type]
            out[-1]["length"] += entry["length"]
        else:
            out.append(entry)
    return out


def ours(mapping: Mapping) -> list[dict[str, Any]]:
    return [{k: e[k] for k in KEYS if k in e} for e in qemu_map(mapping.runs(0, mapping.size), mapping.backing)]


def assert_bytes_match(qemu_img: str, path: Path, fmt: str, mapping: Mapping, reader: Reader) -> None:
    raw = path.with_suffix(".out.raw")
    run(qemu_img, "convert", "-f", fmt, "-O", "raw", path, raw)
    assert MappedGuestDisk(mapping, reader).read(0, mapping.size) == raw.read_bytes()


CASES = {
    "vmdk": ("vmdk", False, ()),
    "vmdk-zeroed-grain": ("vmdk", False, ("-o", "zeroed_grain=on")),
    "vmdk-stream": ("vmdk", True, ("-o", "subformat=streamOptimized")),
    "vpc": ("vpc", False, ()),
    "vdi": ("vdi", False, ()),
    "vdi-static": ("vdi", True, ("-o", "static=on")),
    "parallels": ("parallels", False, ()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_runs_equal_qemu_img_map(case: str, qemu_img: str, tmp_path: Path) -> None:
    fmt, convert, options = CASES[case]
    path = (converted if convert else image)(qemu_img, tmp_path, fmt, *options)
    mapping, reader, it = one_mapping(path)
    assert ours(mapping) == qemu_runs(qemu_img, path, fmt)
    assert_bytes_match(qemu_img, path, fmt, mapping, reader)
    kinds = {r.kind for r in mapping.runs(0, mapping.size)}
    assert Kind.INVALID not in kinds and (Kind.COMPRESSED in kinds) == (case == "vmdk-stream")
    if case == "vmdk-zeroed-grain":
        assert Kind.ZERO in kinds
    it.close()


@pytest.mark.parametrize(
    "options", [(), ("-o", "block_size=1M"), ("-o", "subformat=fixed")], ids=["32M", "1M", "fixed"]
)
def test_vhdx_reads_what_qemu_converts(options: tuple[str, ...], qemu_img: str, tmp_path: Path) -> None:
    """qemu 7.2 has no block status for VHDX (its map is one data run without offsets): the bytes are the oracle."""
    path = (converted if "subformat=fixed" in options else image)(qemu_img, tmp_path, "vhdx", *options)
    mapping, reader, it = one_mapping(path)
    assert_bytes_match(qemu_img, path, "vhdx", mapping, reader)
    runs = list(mapping.runs(0, mapping.size))
    assert all(r.kind in (Kind.DATA, Kind.ZERO, Kind.UNALLOCATED) for r in runs)
    assert runs[0].kind is Kind.DATA and runs[0].offset is not None and runs[0].offset >= 4 * MIB
    names = [t.name for t in mapping.tables()]
    assert names[:5] == ["file identifier", "header 1", "header 2", "region table 1", "region table 2"]
    assert {"log", "BAT", "metadata region"} <= set(names)
    it.close()


def test_vmdk_tables_list_both_directories(qemu_img: str, tmp_path: Path) -> None:
    path = image(qemu_img, tmp_path, "vmdk")
    mapping, _, it = one_mapping(path)
    names = [t.name for t in mapping.tables()]
    assert {"header", "descriptor", "grain directory", "redundant grain directory"} <= set(names)
    assert "grain table 0" in names and "redundant grain table 0" in names
    it.close()


def test_vpc_tables_list_footers_and_bitmaps(qemu_img: str, tmp_path: Path) -> None:
    path = image(qemu_img, tmp_path, "vpc")
    mapping, _, it = one_mapping(path)
    names = [t.name for t in mapping.tables()]
    assert names[:4] == ["footer copy", "dynamic header", "BAT", "footer"]
    assert [n for n in names if n.startswith("sector bitmap")] == [f"sector bitmap {n}" for n in range(4)]
    it.close()


def test_monolithic_flat_extent_is_external(qemu_img: str, tmp_path: Path) -> None:
    path = converted(qemu_img, tmp_path, "vmdk", "-o", "subformat=monolithicFlat")
    mapping, reader, it = one_mapping(path)
    assert list(mapping.runs(0, mapping.size)) == [Run(0, 8 * MIB, Kind.EXTERNAL, 0)]
    qemu = qemu_runs(qemu_img, path, "vmdk")  # qemu reads the flat file: its holes are zero, all offsets its own
    assert all(e["present"] and e["data"] and e["offset"] == e["start"] for e in qemu)
    assert MappedGuestDisk(mapping, reader).read(0, 512) is None  # never opened: "not in this file"
    it.close()


@pytest.mark.parametrize("embedded", [False, True], ids=["descriptor-file", "capacity-0-header"])
def test_flat_extent_naming_its_own_file_stays_external(embedded: bool, qemu_img: str, tmp_path: Path) -> None:
    """qemu opens every extent by its path (vmdk_parse_extents: bdrv_open_child on the descriptor's folder
    plus the name), never through the file it is reading, even when the name is that file's own: what it
    reads depends on what the name resolves to, so the extent stays EXTERNAL and reads "not in this file"."""
    body = vmdk_samples.flat_descriptor('RW 2048 FLAT "self.vmdk" 2048\n')
    head = vmdk_samples.capacity_zero(body) if embedded else body.encode()
    path = tmp_path / "self.vmdk"
    path.write_bytes(head.ljust(MIB, b"\0") + b"\xab" * MIB)
    mapped = run(qemu_img, "map", "-f", "vmdk", path).stdout.splitlines()[1].split()
    assert mapped[2:] == ["0x100000", str(path)]  # here the name is this file...
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "copy.vmdk").write_bytes(path.read_bytes())
    moved = subprocess.run([qemu_img, "info", elsewhere / "copy.vmdk"], capture_output=True, text=True)
    assert moved.returncode != 0 and "self.vmdk" in moved.stderr  # ...but qemu opens the name, not the file
    mapping, reader, it = one_mapping(path)
    assert list(mapping.runs(0, mapping.size)) == [Run(0, MIB, Kind.EXTERNAL, MIB)]
    assert MappedGuestDisk(mapping, reader).read(0, 512) is None
    it.close()


def test_vhd_differencing_bitmap(qemu_img: str, tmp_path: Path) -> None:
    """A differencing VHD (built by hand from a dynamic one): bitmap bits say which sectors are its own."""
    path = image(qemu_img, tmp_path, "vpc")
    data = bytearray(path.read_bytes())
    for at in (0, len(data) - 512):  # disk type 4 in both footers, checksums fixed
        data[at + 60 : at + 64] = (4).to_bytes(4, "big")
        data[at + 64 : at + 68] = bytes(4)
        data[at + 64 : at + 68] = (~sum(data[at : at + 512]) & 0xFFFFFFFF).to_bytes(4, "big")
    bat = int.from_bytes(data[512 + 16 : 512 + 24], "big")
    bitmap = int.from_bytes(data[bat : bat + 4], "big") * 512
    data[bitmap : bitmap + 512] = b"\xc0" + bytes(511)  # only sectors 0 and 1 of block 0 are this disk's
    path.write_bytes(data)
    mapping, _, it = one_mapping(path)
    assert mapping.backing
    runs = list(mapping.runs(0, 4 * MIB))
    assert runs[0] == Run(0, 1024, Kind.DATA, bitmap + 512, entry=bat)
    assert runs[1] == Run(1024, 2 * MIB - 1024, Kind.UNALLOCATED, entry=bat)
    it.close()


@pytest.mark.parametrize("fmt", ["vmdk", "vpc", "vhdx", "vdi", "parallels"])
def test_guest_view_equals_the_raw_disks(fmt: str, gpt_disk: tuple[Path, list[dict[str, Any]]], qemu_img: str) -> None:  # noqa: F811
    disk, _ = gpt_disk
    path = disk.with_name(f"guest.{fmt}")
    run(qemu_img, "convert", "-f", "raw", "-O", fmt, disk, path)
    raw, other = inspect_json("--guest", str(disk))["guest"], inspect_json("--guest", str(path))["guest"]
    for value in (raw, other):  # what reading cost differs by container, not what was found
        value.pop("bytes_read"), value.pop("elapsed_ms")
    assert other == raw and raw["volumes"][0]["os"]


# --- hostile tables ---------------------------------------------------------------------------------------


def guest_report(path: Path) -> dict[str, Any]:
    """``inspect --guest --json`` on a hostile image: a report with its guest value, whatever the verdict."""
    result = run_cli("inspect", "--json", "--guest", str(path))
    assert result.returncode in (0, 10, 20), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert not [f for f in report["findings"] if f["id"] == "guest-malformed"], report["findings"]
    return report


def patched(path: Path, offset: int, data: bytes) -> Path:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
    return path


def test_vdi_entry_past_eof_is_invalid(qemu_img: str, tmp_path: Path) -> None:
    path = image(qemu_img, tmp_path, "vdi")
    patched(path, 512, struct.pack("<I", 0x7FFFFFFF))
    mapping, reader, it = one_mapping(path)
    first = next(mapping.runs(0, 1))
    assert (first.kind, first.entry) == (Kind.INVALID, 512)
    assert MappedGuestDisk(mapping, reader).read(0, 512) is None
    it.close()


def test_vhd_block_on_its_own_metadata_is_invalid(qemu_img: str, tmp_path: Path) -> None:
    path = image(qemu_img, tmp_path, "vpc")
    patched(path, 1536, struct.pack(">I", 0))  # block 0's bitmap at sector 0: the footer copy
    mapping, _, it = one_mapping(path)
    assert next(mapping.runs(0, 1)).kind is Kind.INVALID and next(mapping.runs(0, 1)).entry == 1536
    it.close()


def until_budget(items: Iterator[Any]) -> list[Any]:
    """What an iterator yields before the reader's budget stops it (deep inspection reports the rest)."""
    seen = []
    try:
        for item in items:
            seen.append(item)
    except BudgetExceeded:
        pass
    return seen


def test_vmdk_absurd_grain_directory(qemu_img: str, tmp_path: Path) -> None:
    """Over qemu's grain directory limit: unmappable. Under it but running far past the file: the entries
    inside the file are followed within the budget, the rest is one INVALID run, tables() stops at the file."""
    path = image(qemu_img, tmp_path, "vmdk")
    patched(path, 12, struct.pack("<Q", 1 << 50))  # capacity: a grain directory of 2**34 entries
    with pytest.raises(Unmappable, match="grain directory"):
        one_mapping(path)
    patched(path, 12, struct.pack("<Q", 1 << 40))  # 2**24 entries, the file holds a few hundred thousand
    mapping, reader, it = one_mapping(path, budget=MIB)
    runs = until_budget(islice(mapping.runs(0, mapping.size), 100_000))  # a 512 TiB disk: walked lazily
    tables = until_budget(mapping.tables())
    assert runs and tables and reader.bytes_read <= MIB
    assert {r.kind for r in runs} <= {Kind.DATA, Kind.UNALLOCATED, Kind.INVALID}
    it.close()
    assert "guest" in guest_report(path)


def test_vhdx_reserved_state_is_invalid(qemu_img: str, tmp_path: Path) -> None:
    path = image(qemu_img, tmp_path, "vhdx", "-o", "block_size=1M")
    mapping, _, it = one_mapping(path)
    bat = next(t for t in mapping.tables() if t.name == "BAT").offset
    it.close()
    entry = int.from_bytes(path.read_bytes()[bat : bat + 8], "little")
    patched(path, bat, struct.pack("<Q", entry & ~7 | 4))
    mapping, _, it = one_mapping(path)
    assert (next(mapping.runs(0, 1)).kind, next(mapping.runs(0, 1)).entry) == (Kind.INVALID, bat)
    it.close()
    assert "guest" in guest_report(path)


def test_vhdx_unreplayed_log_is_unmappable(qemu_img: str, tmp_path: Path) -> None:
    path = image(qemu_img, tmp_path, "vhdx")
    data = bytearray(path.read_bytes())
    for at in (64 << 10, 128 << 10):  # a log GUID in both headers (checksums left stale: the parser reads on)
        data[at + 48 : at + 64] = b"\x11" * 16
    path.write_bytes(data)
    with pytest.raises(Unmappable):
        one_mapping(path)


def test_hostile_tables_never_raise_through_the_cli(qemu_img: str, tmp_path: Path) -> None:
    path = image(qemu_img, tmp_path, "parallels")
    patched(path, 64, struct.pack("<II", 1, 0xFFFFFFFF))  # entry 1 past the end of the file
    mapping, _, it = one_mapping(path)
    first, second = list(mapping.runs(0, 2 * MIB))
    assert (first.kind, first.offset, second.kind, second.entry) == (Kind.DATA, MIB, Kind.INVALID, 68)
    it.close()
    assert "guest" in guest_report(path)


def test_table_reads_past_the_guest_budget_are_a_budget_finding(
    gpt_disk: tuple[Path, list[dict[str, Any]]],  # noqa: F811
    qemu_img: str,
) -> None:
    """Grain directory and table pages count against the guest budget too: whichever read passes it, the
    view stops with ``guest-budget``, never an internal error."""
    disk, _ = gpt_disk
    path = disk.with_name("budget.vmdk")
    run(qemu_img, "convert", "-f", "raw", "-O", "vmdk", disk, path)
    fd = os.open(path, os.O_RDONLY)
    try:
        for budget in range(4096, 96 * 1024, 4096):
            report = build(fd, str(path), None, guest_budget=budget)
            ids = {f["id"] for f in report["findings"] if f["id"].startswith("guest-")}
            assert "guest-malformed" not in ids and report["guest"]["bytes_read"] <= budget, (budget, ids)
            assert ids <= {"guest-budget"} and ("guest-budget" in ids or report["guest"]["volumes"][0]["os"])
    finally:
        os.close(fd)


def test_vhdx_partially_present_block_follows_the_sector_bitmap(qemu_img: str, tmp_path: Path) -> None:
    """A differencing VHDX (qemu cannot make one: the has-parent flag set by hand): block 0 partially
    present, its chunk's sector bitmap (appended, 1 MiB) marking sectors 0-7 and 16 as this file's."""
    path = image(qemu_img, tmp_path, "vhdx", "-o", "block_size=1M")
    mapping, _, it = one_mapping(path)
    found = {t.name: t for t in mapping.tables()}
    it.close()
    data = bytearray(path.read_bytes())
    meta = found["metadata region"].offset
    for n in range(METADATA_HEADER.unpack(data[meta : meta + 32])["entry_count"]):
        entry = METADATA_ENTRY.unpack(data[meta + 32 + n * 32 : meta + 64 + n * 32])
        if entry["item_id"] == uuid.UUID(FILE_PARAMETERS).bytes_le:
            at = meta + entry["offset"] + 4
            data[at : at + 4] = struct.pack("<I", 2)  # has parent
    bat, bitmap_at = found["BAT"].offset, -(-len(data) // MIB) * MIB
    block0 = struct.unpack("<Q", data[bat : bat + 8])[0] >> 20 << 20
    ratio = (1 << 23) * 512 // MIB
    data[bat : bat + 8] = struct.pack("<Q", block0 | 7)
    data[bat + ratio * 8 : bat + ratio * 8 + 8] = struct.pack("<Q", bitmap_at | 6)
    data += bytes(bitmap_at - len(data)) + b"\xff\x00\x01" + bytes(MIB - 3)
    path.write_bytes(data)
    mapping, _, it = one_mapping(path)
    assert mapping.backing
    assert list(mapping.runs(0, 9 * 1024)) == [
        Run(0, 4096, Kind.DATA, block0, entry=bat),
        Run(4096, 4096, Kind.UNALLOCATED, entry=bat),
        Run(8192, 512, Kind.DATA, block0 + 8192, entry=bat),
        Run(8704, 512, Kind.UNALLOCATED, entry=bat),
    ]
    assert Table("sector bitmap 0", bitmap_at, MIB) in list(mapping.tables())
    it.close()


def test_cowd_grains_equal_qemu_img_map(qemu_img: str, tmp_path: Path) -> None:
    """A hand-made ESX COWD disk (qemu cannot create one): grain directory at sector 4, its grain table at
    sector 8 (4096 entries), grains 0 and 5 of one sector stored at sectors 40 and 41."""
    data = bytearray(vmdk_samples.cowd(capacity=2048))
    cid = b"CID=12345678\nparentCID=ffffffff\n"  # qemu reads the CID in the free header bytes at 0x200
    data[512 : 512 + len(cid)] = cid
    data[4 * 512 : 4 * 512 + 4] = struct.pack("<I", 8)
    data = data.ljust(40 * 512, b"\0")
    data[8 * 512 : 8 * 512 + 4], data[8 * 512 + 20 : 8 * 512 + 24] = struct.pack("<I", 40), struct.pack("<I", 41)
    path = tmp_path / "cowd.vmdk"
    path.write_bytes(data + b"\xab" * 512 + b"\xcd" * 512)
    mapping, reader, it = one_mapping(path)
    assert ours(mapping) == qemu_runs(qemu_img, path, "vmdk")
    assert_bytes_match(qemu_img, path, "vmdk", mapping, reader)
    runs = list(mapping.runs(0, 6 * 512))  # the four unwritten grains between are one run
    assert runs == [
        Run(0, 512, Kind.DATA, 40 * 512, entry=8 * 512),
        Run(512, 4 * 512, Kind.UNALLOCATED, entry=8 * 512 + 4),
        Run(5 * 512, 512, Kind.DATA, 41 * 512, entry=8 * 512 + 20),
    ]
    it.close()
