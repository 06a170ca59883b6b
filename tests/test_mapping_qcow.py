"""The qcow family's guest-to-file mappings (engine/mapping/qcow2.py, qcow1.py, qed.py).

Oracles: ``qemu-img map --output=json`` on images written by ``qemu-io`` (the runs, merged by
``mapping.qemu_map``, must be qemu's), and the raw disk a qcow2/qcow/qed image was converted from (the
guest view must be the same). Hostile tables are built byte by byte from the qcow2 sample builder.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.builders.guest_disks import gpt_guest_disk, run
from tests.builders.qcow2 import qcow2, qed
from tests.conftest import required_tool
from workbench.engine import report
from workbench.engine.formats import BY_NAME
from workbench.engine.formats.qcow import HEADER_READ, V2_LAYOUT
from workbench.engine.inspection import Inspection
from workbench.engine.mapping import Kind, MappedGuestDisk, Mapping, Run, Unmappable, mapping_for, qemu_map
from workbench.engine.reader import Reader

MIB = 1 << 20
DEEP_BUDGET = 64 * MIB
FLAGS = ("present", "zero", "data")


@contextmanager
def opened(path: Path, fmt: str, budget: int = DEEP_BUDGET) -> Iterator[tuple[Mapping, Reader]]:
    """The mapping of ``path`` (its header parsed as the report does) and the reader it reads through."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        info = Inspection(format=fmt)
        BY_NAME[fmt].parse(Reader(fd, size), info)
        reader = Reader(fd, size, budget)
        yield mapping_for(fmt, reader, info), reader
    finally:
        os.close(fd)


def our_map(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Our runs merged as qemu-img map merges them, without ``compressed`` (qemu 7.2 has no such key)."""
    with opened(path, fmt) as (mapping, _):
        merged = list(qemu_map(mapping.runs(0, mapping.size), mapping.backing))
    return [{key: value for key, value in entry.items() if key != "compressed"} for entry in merged]


def qemu_map_json(qemu_img: str, path: Path, fmt: str) -> list[dict[str, Any]]:
    """qemu-img's map in the mapping's terms, merged again as qemu merges:

    - what lies behind the image (depth > 0) is one kind, "not in this file": the mapping says UNALLOCATED
      there and leaves the backing file unopened;
    - ``zero`` on stored data (``data`` and ``offset`` too) is the host file's hole, which qemu asks the host
      filesystem for (SEEK_HOLE); the mapping reads the image's tables only, so that is data to it.
    """
    out = subprocess.run(
        [qemu_img, "map", "--output=json", "-f", fmt, str(path)], check=True, capture_output=True, text=True
    )
    merged: list[dict[str, Any]] = []
    for entry in json.loads(out.stdout):
        own = entry["depth"] == 0
        item = {"start": entry["start"], "length": entry["length"]}
        item |= {key: entry[key] if own else False for key in FLAGS}
        if own and "offset" in entry:
            item["offset"] = entry["offset"]
            item["zero"] = item["zero"] and not item["data"]
        last = merged[-1] if merged else None
        if last and all(last[key] == item[key] for key in FLAGS) and _contiguous(last, item):
            last["length"] += item["length"]
        else:
            merged.append(item)
    return merged


def _contiguous(last: dict[str, Any], item: dict[str, Any]) -> bool:
    if "offset" in last or "offset" in item:
        return "offset" in last and "offset" in item and last["offset"] + last["length"] == item["offset"]
    return True


def qemu_io(path: Path, fmt: str, *commands: str) -> None:
    required_tool("qemu-io", "qemu-utils")
    args = [arg for command in commands for arg in ("-c", command)]
    out = run("qemu-io", "-f", fmt, *args, path).stdout
    assert "failed" not in out, out


WRITES = (
    "write -P 0xab 0 64k",
    "write -z 1M 128k",
    "write -c 2M 2M",
    "write -P 1 3M 64k",
    "discard 3M 64k",
    "write -P 2 4M 4k",
    "write -P 3 5M 1k",
    "write -z 5M 512",
)


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("options", "writes"),
    [
        ((), WRITES),
        (("-o", "compat=0.10"), WRITES[:4]),
        (
            ("-o", "extended_l2=on"),
            ("write -P 0xab 0 8k", "write -z 64k 4k", "write -P 1 200k 4k", "write -z 210k 2k", *WRITES[2:]),
        ),
        (("-o", "cluster_size=512"), WRITES),
        (("-o", "cluster_size=2M"), WRITES),
        (("-o", "compression_type=zstd"), WRITES),
    ],
    ids=["v3", "v2", "extended-l2", "cluster-512", "cluster-2M", "zstd"],
)
def test_qcow2_runs_are_qemus(
    qemu_img: str, qemu_create: Any, options: tuple[str, ...], writes: tuple[str, ...]
) -> None:
    image = qemu_create("a.qcow2", "qcow2", "8M", *options)
    qemu_io(image, "qcow2", *writes)
    assert our_map(image, "qcow2") == qemu_map_json(qemu_img, image, "qcow2")


@pytest.mark.qemu
def test_overlay_runs_are_qemus_with_the_backing_file_unopened(qemu_img: str, qemu_create: Any) -> None:
    base = qemu_create("base.qcow2", "qcow2", "8M")
    qemu_io(base, "qcow2", "write -P 1 0 4M")
    overlay = qemu_create("overlay.qcow2", "qcow2", "8M", "-b", str(base), "-F", "qcow2")
    qemu_io(overlay, "qcow2", "write -P 2 64k 64k", "write -z 1M 64k", "write -c 2M 64k")
    ours = our_map(overlay, "qcow2")
    assert ours == qemu_map_json(qemu_img, overlay, "qcow2")
    assert ours[0] == {"start": 0, "length": 65536, "present": False, "zero": False, "data": False}
    with opened(overlay, "qcow2") as (mapping, reader):
        assert mapping.backing
        assert MappedGuestDisk(mapping, reader).read(0, 4096) is None  # the backing file's: not in this file
        assert MappedGuestDisk(mapping, reader).read(65536, 4096) == b"\2" * 4096


@pytest.mark.qemu
@pytest.mark.parametrize("raw", [False, True], ids=["data-file", "data-file-raw"])
def test_external_data_file_runs_are_qemus(qemu_img: str, qemu_create: Any, tmp_path: Path, raw: bool) -> None:
    options = f"data_file={tmp_path / 'data.raw'},data_file_raw={'on' if raw else 'off'}"
    image = qemu_create("ext.qcow2", "qcow2", "8M", "-o", options)
    qemu_io(image, "qcow2", "write -P 1 1M 64k", "write -z 3M 64k")
    ours = our_map(image, "qcow2")
    assert ours == qemu_map_json(qemu_img, image, "qcow2")
    with opened(image, "qcow2") as (mapping, reader):
        kinds = {run.kind for run in mapping.runs(0, mapping.size)}
        assert Kind.EXTERNAL in kinds and Kind.DATA not in kinds
        assert MappedGuestDisk(mapping, reader).read(1 << 20, 512) is None  # never opens the data file


@pytest.mark.qemu
def test_qcow1_runs_are_qemus(qemu_img: str, qemu_create: Any) -> None:
    image = qemu_create("a.qcow", "qcow", "8M")
    qemu_io(image, "qcow", "write -P 1 0 8k", "write -c -P 7 1M 4k", "write -P 2 3M 64k")
    assert our_map(image, "qcow") == qemu_map_json(qemu_img, image, "qcow")
    with opened(image, "qcow") as (mapping, reader):
        assert [run.kind for run in mapping.runs(1 << 20, 4096)] == [Kind.COMPRESSED]
        assert MappedGuestDisk(mapping, reader).read(1 << 20, 4096) == b"\7" * 4096


@pytest.mark.qemu
def test_qed_runs_are_qemus(qemu_img: str, qemu_create: Any) -> None:
    image = qemu_create("a.qed", "qed", "8M")
    qemu_io(image, "qed", "write -P 1 0 8k", "write -z 1M 128k", "write -P 2 5M 64k")
    assert our_map(image, "qed") == qemu_map_json(qemu_img, image, "qed")
    with opened(image, "qed") as (mapping, reader):
        assert MappedGuestDisk(mapping, reader).read(5 * MIB, 8) == b"\2" * 8


# --- the guest view through the mapping ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guest_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("sfdisk", "mkfs.ext4", "mkfs.vfat"):
        required_tool(tool, "util-linux e2fsprogs dosfstools")
    return gpt_guest_disk(tmp_path_factory.mktemp("qmap"))[0]


def guest_report(path: Path, fmt: str = "qcow2", budget: int = 4 * MIB) -> dict[str, Any]:
    """The engine's report with the guest view, built in this process."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return report.build(fd, str(path), fmt, guest_budget=budget)
    finally:
        os.close(fd)


def guest_of(path: Path, fmt: str) -> dict[str, Any]:
    rep = guest_report(path, fmt)
    assert not [f for f in rep["findings"] if f["id"].startswith("guest-")], rep["findings"]
    guest: dict[str, Any] = rep["guest"]
    return guest


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("qcow2", ()),
        ("qcow2", ("-c",)),
        ("qcow2", ("-o", "extended_l2=on")),
        ("qcow2", ("-o", "compat=0.10,cluster_size=4k")),
        ("qcow", ()),
        ("qed", ()),
    ],
    ids=["qcow2", "qcow2-compressed", "qcow2-extended-l2", "qcow2-v2-4k", "qcow", "qed"],
)
def test_guest_view_is_the_raw_disks(qemu_img: str, guest_disk: Path, fmt: str, options: tuple[str, ...]) -> None:
    image = guest_disk.with_name(f"disk-{fmt}-{'-'.join(options)}.img")
    run(qemu_img, "convert", "-f", "raw", "-O", fmt, *options, guest_disk, image)
    raw, converted = guest_of(guest_disk, "raw"), guest_of(image, fmt)
    assert converted["volumes"] and converted["volumes"] == raw["volumes"]
    assert converted["partition_table"] == raw["partition_table"]
    assert converted["volumes"][0]["os"]["name"] == "Testix GNU/Linux 13 (trixie)"


@pytest.mark.qemu
def test_zstd_clusters_are_not_in_this_file(qemu_create: Any) -> None:
    image = qemu_create("z.qcow2", "qcow2", "1M", "-o", "compression_type=zstd")
    qemu_io(image, "qcow2", "write -c 0 64k")
    with opened(image, "qcow2") as (mapping, reader):
        assert [run.kind for run in mapping.runs(0, 65536)] == [Kind.COMPRESSED]
        assert MappedGuestDisk(mapping, reader).read(0, 512) is None


# --- hostile tables --------------------------------------------------------------------------------------------

CLUSTER = 1 << 16
L1_AT, L2_AT, DATA_AT = 3 * CLUSTER, 4 * CLUSTER, 5 * CLUSTER  # the builder's L1 table is cluster 3
COMPRESSED, SHIFT = 1 << 62, 62 - (16 - 8)


def hostile(
    tmp_path: Path, l1: int, l2: list[int], *, size: int = MIB, data: bytes = b"\x5a" * CLUSTER, **header: Any
) -> Path:
    """A qcow2 image of 64 KiB clusters: L1[0] = ``l1``, an L2 table in cluster 4 holding ``l2``, and
    ``data`` from cluster 5 (one cluster of 0x5a bytes)."""
    image = bytearray(qcow2(size, **header)).ljust(L2_AT, b"\0")
    image[L1_AT : L1_AT + 8] = struct.pack(">Q", l1)
    image += b"".join(struct.pack(">Q", entry) for entry in l2).ljust(CLUSTER, b"\0") + data
    path = tmp_path / "hostile.qcow2"
    path.write_bytes(image)
    return path


def runs_of(path: Path, length: int = 4 * CLUSTER) -> list[Run]:
    with opened(path, "qcow2") as (mapping, reader):
        found = list(mapping.runs(0, length))
        assert reader.bytes_read <= 2 * 4096 + 8 * 4  # an L1 chunk and the L2 entries asked for, nothing more
        return found


def test_valid_entries_map_data_and_zeros(tmp_path: Path) -> None:
    path = hostile(tmp_path, L2_AT, [DATA_AT, 1, 0])
    assert runs_of(path) == [
        Run(0, CLUSTER, Kind.DATA, DATA_AT, entry=L2_AT),
        Run(CLUSTER, CLUSTER, Kind.ZERO, entry=L2_AT + 8),
        Run(2 * CLUSTER, 2 * CLUSTER, Kind.UNALLOCATED, entry=L2_AT + 16),  # empty entries in a row: one run
    ]
    with opened(path, "qcow2") as (mapping, reader):
        assert MappedGuestDisk(mapping, reader).read(CLUSTER - 2, 4) == b"\x5a\x5a\0\0"


def test_contiguous_data_entries_are_one_run_and_a_bad_one_stays_alone(tmp_path: Path) -> None:
    copied = 1 << 63
    path = hostile(tmp_path, L2_AT, [DATA_AT | copied, DATA_AT + CLUSTER | copied], data=b"\x5a" * 2 * CLUSTER)
    assert runs_of(path) == [
        Run(0, 2 * CLUSTER, Kind.DATA, DATA_AT, entry=L2_AT),  # the first entry names the run
        Run(2 * CLUSTER, 2 * CLUSTER, Kind.UNALLOCATED, entry=L2_AT + 16),
    ]
    path = hostile(tmp_path, L2_AT, [DATA_AT | copied, DATA_AT + CLUSTER], data=b"\x5a" * 2 * CLUSTER)
    assert runs_of(path)[:2] == [  # another copied flag: another stretch (deep inspection joins them again)
        Run(0, CLUSTER, Kind.DATA, DATA_AT, entry=L2_AT),
        Run(CLUSTER, CLUSTER, Kind.DATA, DATA_AT + CLUSTER, entry=L2_AT + 8),
    ]
    path = hostile(tmp_path, L2_AT, [DATA_AT, DATA_AT + CLUSTER])  # the second cluster is past the file
    assert runs_of(path) == [
        Run(0, CLUSTER, Kind.DATA, DATA_AT, entry=L2_AT),
        Run(CLUSTER, CLUSTER, Kind.INVALID, entry=L2_AT + 8),
        Run(2 * CLUSTER, 2 * CLUSTER, Kind.UNALLOCATED, entry=L2_AT + 16),
    ]


@pytest.mark.parametrize(
    ("l1", "l2", "entry"),
    [
        (L2_AT, [100 * CLUSTER], L2_AT),  # a data cluster past the end of the file
        (L2_AT, [DATA_AT | 0x2], L2_AT),  # reserved bit 1
        (L2_AT, [DATA_AT | 1 << 56], L2_AT),  # reserved bit 56
        (L2_AT, [DATA_AT + 512], L2_AT),  # unaligned
        (L2_AT, [L1_AT], L2_AT),  # a data cluster on the L1 table
        (L2_AT, [COMPRESSED | 255 << SHIFT | (DATA_AT + CLUSTER - 512)], L2_AT),  # 128 KiB from the last sector
        (L2_AT, [COMPRESSED | 100 * CLUSTER], L2_AT),  # compressed data past the end of the file
        (L2_AT | 1 << 60, [DATA_AT], L1_AT),  # L1 reserved bit
        (0x200, [DATA_AT], L1_AT),  # an L2 table inside the header, unaligned
        (CLUSTER, [DATA_AT], L1_AT),  # an L2 table on the refcount table
        (L1_AT, [DATA_AT], L1_AT),  # an L2 table on the L1 table
        (100 * CLUSTER, [DATA_AT], L1_AT),  # an L2 table past the end of the file
    ],
    ids=[
        "l2-past-eof",
        "l2-reserved-bit-1",
        "l2-reserved-bit-56",
        "l2-unaligned",
        "l2-on-l1",
        "compressed-overruns",
        "compressed-past-eof",
        "l1-reserved",
        "l1-in-header",
        "l1-on-refcount-table",
        "l1-on-itself",
        "l1-past-eof",
    ],
)
def test_hostile_entries_are_invalid_runs(tmp_path: Path, l1: int, l2: list[int], entry: int) -> None:
    path = hostile(tmp_path, l1, l2)
    first = runs_of(path)[0]
    assert (first.start, first.kind, first.entry) == (0, Kind.INVALID, entry)
    assert first.length == (CLUSTER if entry == L2_AT else 4 * CLUSTER)
    rep = guest_report(path)
    assert rep["guest"]["volumes"] is not None
    holes = [f["detail"] for f in rep["findings"] if f["id"] == "guest-not-in-file"]
    assert holes and not [f for f in rep["findings"] if f["id"] == "guest-malformed"]


def test_l1_larger_than_qemus_limit_is_unmappable(tmp_path: Path) -> None:
    path = tmp_path / "huge-l1.qcow2"
    image = bytearray(qcow2(MIB))
    image[V2_LAYOUT.offset_of("l1_size") : V2_LAYOUT.offset_of("l1_size") + 4] = struct.pack(">I", 1 << 30)
    path.write_bytes(image)
    with pytest.raises(Unmappable, match="L1 table of 1073741824 entries"), opened(path, "qcow2"):
        pass
    rep = guest_report(path)
    assert "qemu refuses this qcow2 image" in rep["guest"]["unavailable"]
    assert any(f["check"].startswith("qcow2.l1") for f in rep["findings"] if f["id"] == "malformed")


def test_l1_past_the_end_of_the_file_reads_as_unallocated(tmp_path: Path) -> None:
    size = 1 << 40  # 2048 L1 entries at 512 MiB each
    path = tmp_path / "far-l1.qcow2"
    path.write_bytes(qcow2(size, l1_offset=1 << 30))
    with opened(path, "qcow2", budget=64 * 1024) as (mapping, reader):
        runs = list(mapping.runs(0, size))
        assert {run.kind for run in runs} == {Kind.UNALLOCATED} and len(runs) == 2048
        assert reader.bytes_read == HEADER_READ  # the header; nothing to read past the end of the file


def test_encrypted_image_is_unmappable(tmp_path: Path) -> None:
    path = tmp_path / "aes.qcow2"
    path.write_bytes(qcow2(MIB, crypt_method=1))
    assert guest_report(path)["guest"]["unavailable"].startswith("encrypted qcow2 image (aes)")


def test_tables_list_every_structure(tmp_path: Path) -> None:
    path = hostile(tmp_path, L2_AT, [DATA_AT])
    with opened(path, "qcow2") as (mapping, _):
        tables = {table.name: (table.offset, table.length) for table in mapping.tables()}
    assert tables["header"] == (0, 112)
    assert tables["L1 table"] == (L1_AT, 8)
    assert tables["L2 table 0"] == (L2_AT, CLUSTER)
    assert tables["refcount table"] == (CLUSTER, CLUSTER)
    assert tables["refcount block 0"] == (2 * CLUSTER, CLUSTER)
    assert tables["header extensions"][0] == 112


def test_qed_hostile_entries(tmp_path: Path) -> None:
    cluster = 4096
    image = bytearray(qed(MIB, cluster_size=cluster, table_size=1))  # header cluster, L1 in cluster 1
    image[cluster : cluster + 8] = struct.pack("<Q", 2 * cluster)
    image += b"".join(struct.pack("<Q", e) for e in (3 * cluster, 1, 3 * cluster + 8, 99 * cluster)).ljust(
        cluster, b"\0"
    )
    image += b"\x11" * cluster
    path = tmp_path / "hostile.qed"
    path.write_bytes(image)
    with opened(path, "qed") as (mapping, _):
        kinds = [run.kind for run in mapping.runs(0, 5 * cluster)]
    assert kinds == [Kind.DATA, Kind.ZERO, Kind.INVALID, Kind.INVALID, Kind.UNALLOCATED]


@pytest.mark.qemu
def test_tables_of_a_qemu_image_with_snapshot_and_bitmap(qemu_img: str, qemu_create: Any) -> None:
    image = qemu_create("snap.qcow2", "qcow2", "8M")
    qemu_io(image, "qcow2", "write -P 1 0 1M")
    run(qemu_img, "snapshot", "-c", "s1", image)
    qemu_io(image, "qcow2", "write -P 2 0 64k", "write -P 3 6M 64k")
    run(qemu_img, "bitmap", "--add", image, "b0")
    assert our_map(image, "qcow2") == qemu_map_json(qemu_img, image, "qcow2")
    with opened(image, "qcow2") as (mapping, reader):
        tables = sorted(mapping.tables(), key=lambda table: table.offset)
        names = [table.name for table in tables]
        info = Inspection(format="qcow2")
        BY_NAME["qcow2"].parse(reader, info)
    assert {
        "snapshot table",
        "snapshot 0 L1 table",
        "bitmap directory",
        "bitmap 0 table",
        "L2 table 0",
        "refcount block 0",
    } <= set(names)
    snapshot_l1 = next(table for table in tables if table.name == "snapshot 0 L1 table")
    assert snapshot_l1.offset == info.snapshots[0]["l1_table_offset"]
    for before, after in zip(tables, tables[1:], strict=False):  # inside the file, none over another
        assert before.offset + before.length <= after.offset, (before, after)
    assert tables[-1].offset + tables[-1].length <= image.stat().st_size


def test_compressed_units_past_the_guest_budget_are_a_budget_finding(tmp_path: Path) -> None:
    """Every cluster a compressed unit of 128 KiB: the guest view's file reads pass a 64 KiB budget."""
    unit = COMPRESSED | 255 << SHIFT | DATA_AT
    path = hostile(tmp_path, L2_AT, [unit] * 16, data=os.urandom(2 * CLUSTER))
    rep = guest_report(path, budget=CLUSTER)
    ids = {f["id"] for f in rep["findings"]}
    assert "guest-budget" in ids and "guest-malformed" not in ids
    assert rep["bytes_read"] <= rep["read_budget"] + CLUSTER
