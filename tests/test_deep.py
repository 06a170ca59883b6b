"""Deep inspection (``inspect --deep``): the walk's map against ``qemu-img map``, every generic check on
hand-made hostile tables with its finding and offsets, the budget, progress lines, validation and output."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import workbench.engine.deep as deep_module
from tests.builders import vmdk as vmdk_samples
from tests.builders.qcow2 import qcow2
from workbench.engine import report
from workbench.engine.child import worker
from workbench.engine.deep import walk as walk_module
from workbench.engine.mapping import FACTORIES, Kind, Run, Table
from workbench.engine.reader import BudgetExceeded, Reader
from workbench.host.runner import ChildOutcome, EngineOptions, _read_stdout, decode_reply, progress_of
from workbench.host.validate import validate
from workbench.render.export import to_html, to_markdown
from workbench.render.text import summary
from workbench.schema import DEFAULT_DEEP_BUDGET, MAX_MAP_RUNS

QEMU_KEYS = ("start", "length", "present", "zero", "data", "offset")


def deep_report(path: Path, fmt: str, budget: int = DEFAULT_DEEP_BUDGET, **kw: Any) -> dict[str, Any]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return report.build(fd, str(path), fmt, deep_budget=budget, **kw)
    finally:
        os.close(fd)


def findings(rep: dict[str, Any], finding_id: str) -> list[dict[str, Any]]:
    return [f for f in rep["findings"] if f["id"] == finding_id]


def qemu_map(qemu_img: str, path: Path, fmt: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [qemu_img, "map", "--output=json", "-U", "-f", fmt, str(path)], check=True, capture_output=True, text=True
    )
    return [{key: run[key] for key in QEMU_KEYS if key in run} for run in json.loads(out.stdout)]


def ours(rep: dict[str, Any]) -> list[dict[str, Any]]:
    return [{key: run[key] for key in QEMU_KEYS if key in run} for run in rep["deep"]["map"]]


def qemu_io(path: Path, fmt: str, *commands: str) -> None:
    args = [arg for command in commands for arg in ("-c", command)]
    subprocess.run(["qemu-io", "-f", fmt, *args, str(path)], check=True, capture_output=True)


WRITES = ("write -P 1 0 3M", "write -P 2 10M 1M", "write -z 20M 2M", "write -P 3 63M 1M")


@pytest.mark.qemu
@pytest.mark.parametrize("fmt", ["vdi", "vpc"])  # raw: qemu reports the host's holes, the format has none
def test_map_equals_qemu_img_map(fmt: str, qemu_create: Any, qemu_img: str) -> None:
    path = qemu_create(f"image.{fmt}", fmt, "64M")
    qemu_io(path, fmt, *WRITES)
    rep = deep_report(path, fmt)
    assert ours(rep) == qemu_map(qemu_img, path, fmt)
    deep = rep["deep"]
    assert deep["complete"] is True
    data = sum(run["length"] for run in deep["map"] if run["data"])
    assert deep["allocated_virtual"] == data > 0
    assert not {"deep-overlap", "deep-outside-file", "deep-invalid-entry", "deep-budget"} & {
        f["id"] for f in rep["findings"]
    }
    assert sum(run["length"] for run in deep["file_map"]) == rep["file_size"]


@pytest.mark.qemu
def test_vhd_file_map_names_tables_and_data(qemu_create: Any) -> None:
    path = qemu_create("image.vhd", "vpc", "64M")
    qemu_io(path, "vpc", "write -P 1 0 1M")
    file_map = deep_report(path, "vpc")["deep"]["file_map"]
    names = [run.get("name") for run in file_map if run["kind"] == "table"]
    assert names[:3] == ["footer copy", "dynamic header", "BAT"]
    assert names[-1] == "footer"
    assert [run["kind"] for run in file_map].count("data") == 1


def vdi_with_map(qemu_create: Any, entries: list[int]) -> Path:
    """A 64 MiB VDI with three blocks written and its block map replaced by ``entries``."""
    path = qemu_create("image.vdi", "vdi", "64M")
    qemu_io(path, "vdi", "write -P 1 0 3M")
    data = bytearray(path.read_bytes())
    offset_bmap = struct.unpack_from("<I", data, 340)[0]
    struct.pack_into(f"<{len(entries)}I", data, offset_bmap, *entries)
    path.write_bytes(data)
    return path


@pytest.mark.qemu
def test_two_guest_blocks_on_one_file_block_is_an_overlap(qemu_create: Any) -> None:
    path = vdi_with_map(qemu_create, [0, 1, 1])
    rep = deep_report(path, "vdi")
    (overlap,) = findings(rep, "deep-overlap")
    assert overlap["severity"] == "critical"
    assert overlap["offset"] == 1024 + (1 << 20)  # offset_data + block 1
    assert "data for guest 2097152" in overlap["detail"]
    assert any(run["kind"] == "overlap" for run in rep["deep"]["file_map"])


@pytest.mark.qemu
def test_block_past_the_end_is_an_invalid_entry(qemu_create: Any) -> None:
    path = vdi_with_map(qemu_create, [0, 1, 5000])
    rep = deep_report(path, "vdi")
    (invalid,) = findings(rep, "deep-invalid-entry")
    assert invalid["offset"] == 512 + 2 * 4  # the block map entry of guest block 2
    assert any(run.get("invalid") for run in rep["deep"]["map"])


# Hand-made mappings: every generic check on exactly the structures that break it.
class FakeMapping:
    backing = False
    cluster = 4096

    def __init__(self, runs: list[Run], tables: list[Table], size: int = 1 << 20, fail_at: int | None = None) -> None:
        self._runs, self._tables, self.size, self.fail_at = runs, tables, size, fail_at

    def runs(self, start: int, length: int) -> Iterator[Run]:
        for run in self._runs:
            if self.fail_at is not None and run.start >= self.fail_at:
                raise BudgetExceeded(run.entry or 0, 4096, 8192)
            yield run

    def tables(self) -> Iterator[Table]:
        yield from self._tables

    def decompress(self, run: Run) -> bytes:
        return b""


FILE = 64 * 4096
HEADER = Table("header", 0, 4096)
L1 = Table("L1 table", 4096, 4096)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``fake(runs, tables, **kw)``: the deep report of a FILE-byte raw file read through that mapping."""
    path = tmp_path / "image.raw"
    path.write_bytes(bytes(FILE))

    def run(runs: list[Run], tables: list[Table], **kw: Any) -> dict[str, Any]:
        mapping = FakeMapping(runs, tables, **{k: v for k, v in kw.items() if k in ("size", "fail_at")})
        monkeypatch.setitem(FACTORIES, "raw", lambda reader, info: mapping)
        return deep_report(path, "raw", **{k: v for k, v in kw.items() if k not in ("size", "fail_at")})

    return run


def data(start: int, offset: int, length: int = 4096, entry: int = 4096) -> Run:
    return Run(start, length, Kind.DATA, offset, entry=entry)


def test_clean_fake_mapping_has_no_findings(fake: Any) -> None:
    rep = fake([data(0, 8192), Run(4096, (1 << 20) - 4096, Kind.UNALLOCATED)], [HEADER, L1])
    assert not [f for f in rep["findings"] if f["id"].startswith("deep-")]
    kinds = [(run["offset"], run["kind"], run.get("name")) for run in rep["deep"]["file_map"]]
    assert kinds[:4] == [
        (0, "header", "header"),
        (4096, "table", "L1 table"),
        (8192, "data", None),
        (12288, "free", None),
    ]
    assert rep["deep"]["allocated_virtual"] == 4096


@pytest.mark.parametrize(
    ("table", "offset"),
    [(Table("L2 table 0", FILE - 4096, 8192), FILE - 4096), (Table("refcount table", FILE + 4096, 512), FILE + 4096)],
)
def test_table_past_the_end_of_the_file(fake: Any, table: Table, offset: int) -> None:
    (finding,) = findings(fake([], [HEADER, table]), "deep-outside-file")
    assert finding["offset"] == offset and table.name in finding["detail"]


def test_data_cluster_past_the_end_of_the_file(fake: Any) -> None:
    (finding,) = findings(fake([data(0, FILE - 2048)], [HEADER]), "deep-outside-file")
    assert finding["offset"] == FILE - 2048 and "data for guest 0" in finding["detail"]


def test_table_inside_the_header(fake: Any) -> None:
    (finding,) = findings(fake([], [HEADER, Table("L1 table", 512, 512)]), "deep-overlap")
    assert finding["offset"] == 512 and "overlaps header" in finding["detail"]


def test_table_inside_another_table(fake: Any) -> None:
    tables = [HEADER, Table("L2 table 0", 8192, 8192), Table("refcount block 0", 12288, 4096)]
    (finding,) = findings(fake([], tables), "deep-overlap")
    assert finding["offset"] == 12288 and "refcount block 0" in finding["detail"] and "L2 table 0" in finding["detail"]


def test_table_listed_twice_at_one_place_is_one_structure(fake: Any) -> None:
    rep = fake([], [HEADER, Table("L2 table 0", 8192, 4096), Table("snapshot 1 L2 table 0", 8192, 4096)])
    assert not findings(rep, "deep-overlap")


@pytest.mark.parametrize(("offset", "owner"), [(0, "header"), (4096, "L1 table")])
def test_data_cluster_on_metadata(fake: Any, offset: int, owner: str) -> None:
    (finding,) = findings(fake([data(0, offset, entry=4104)], [HEADER, L1]), "deep-overlap")
    assert finding["offset"] == offset and f"overlaps {owner}" in finding["detail"]


def test_two_owners_for_one_data_cluster(fake: Any) -> None:
    rep = fake([data(0, 16384), data(4096, 16384)], [HEADER])
    (finding,) = findings(rep, "deep-overlap")
    assert finding["offset"] == 16384 and "data for guest 4096" in finding["detail"]
    assert {"offset": 16384, "length": 4096, "kind": "overlap"} in rep["deep"]["file_map"]


def test_compressed_units_share_a_cluster_but_not_with_data(fake: Any) -> None:
    units = [
        Run(0, 4096, Kind.COMPRESSED, 16384, stored_length=700, unit=0),
        Run(4096, 4096, Kind.COMPRESSED, 16384 + 700, stored_length=900, unit=4096),
    ]
    assert not findings(fake(units, [HEADER]), "deep-overlap")
    (finding,) = findings(fake([*units, data(8192, 16384)], [HEADER]), "deep-overlap")
    assert finding["offset"] == 16384


def test_compressed_unit_overrunning_the_file(fake: Any) -> None:
    unit = Run(0, 4096, Kind.COMPRESSED, FILE - 100, stored_length=600, unit=0)
    (finding,) = findings(fake([unit], [HEADER]), "deep-outside-file")
    assert finding["offset"] == FILE - 100 and "compressed unit" in finding["detail"]


def test_invalid_entries_are_named_by_their_table_offset(fake: Any) -> None:
    runs = [Run(0, 4096, Kind.INVALID, 12345, entry=4096), Run(4096, 4096, Kind.INVALID, entry=4104)]
    rep = fake(runs, [HEADER, L1])
    (finding,) = findings(rep, "deep-invalid-entry")
    assert finding["offset"] == 4096 and finding["severity"] == "critical"
    assert "2 found" in finding["detail"] and "4104" in finding["detail"]
    assert rep["deep"]["map"][0]["invalid"] is True


def test_budget_stops_the_walk_and_says_how_much_was_not_checked(fake: Any) -> None:
    runs = [data(0, 8192), data(4096, 12288, entry=4104), Run(8192, (1 << 20) - 8192, Kind.ZERO)]
    rep = fake(runs, [HEADER], fail_at=4096)
    (finding,) = findings(rep, "deep-budget")
    assert f"guest bytes 4096..{1 << 20}" in finding["detail"] and finding["severity"] == "warning"
    assert rep["deep"]["complete"] is False
    assert rep["deep"]["map"] == [
        {"start": 0, "length": 4096, "present": True, "zero": False, "data": True, "compressed": False, "offset": 8192}
    ]


def test_map_is_capped_with_a_finding(fake: Any) -> None:
    runs = [Run(i * 4096, 4096, Kind.ZERO if i % 2 else Kind.UNALLOCATED) for i in range(MAX_MAP_RUNS + 10)]
    rep = fake(runs, [HEADER], size=(MAX_MAP_RUNS + 10) * 4096)
    assert len(rep["deep"]["map"]) == MAX_MAP_RUNS
    (cut,) = [f for f in findings(rep, "report-capped") if "deep.map" in f["detail"]]
    assert "10 runs" in cut["detail"]


def test_dmg_and_formats_without_a_mapping_are_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "x.luks"
    path.write_bytes(b"LUKS\xba\xbe\0\1" + bytes(4096))
    assert "unavailable" in deep_report(path, "luks")["deep"]


def test_progress_lines_are_dispatched_and_the_rest_is_the_reply() -> None:
    lines = [
        b'{"sandbox": {"rlimits": "on"}}',
        b'{"progress": {"done": 5, "total": 10, "what": "guest mapping"}}',
        b'{"progress": {"done": "x"}}',
        b'{"ok": true, "report": {}}',
    ]
    seen: list[dict[str, Any]] = []

    async def read() -> bytes:
        stream = asyncio.StreamReader()
        stream.feed_data(b"\n".join(lines) + b"\n")
        stream.feed_eof()
        return await _read_stdout(stream, EngineOptions(on_progress=seen.append), None)

    reply = decode_reply(ChildOutcome(0, asyncio.run(read()), b""))
    assert reply["ok"] is True and reply["sandbox"] == {"rlimits": "on"}
    assert seen == [{"done": 5, "total": 10, "what": "guest mapping"}]
    assert progress_of({"done": -1, "total": 1, "what": ""}) is None


def test_worker_writes_progress_lines(capfd: pytest.CaptureFixture[str]) -> None:
    worker.progress_line(3, 7, "guest mapping")
    line = json.loads(capfd.readouterr().out)
    assert progress_of(line["progress"]) == {"done": 3, "total": 7, "what": "guest mapping"}


def test_worker_deep_budget_is_validated_like_the_guest_budget() -> None:
    assert worker.budget_for({}, "deep", 5, 10) is None
    assert worker.budget_for({"deep": True, "deep_budget": 7}, "deep", 5, 10) == 7
    for bad in (0, 11, True, "7"):
        assert worker.budget_for({"deep": True, "deep_budget": bad}, "deep", 5, 10) == 5


def test_validator_keeps_a_good_deep_value_and_drops_a_bad_one(fake: Any) -> None:
    rep = fake([data(0, 8192)], [HEADER])
    rep["sandbox"] = {}
    kept = validate(json.loads(json.dumps(rep)))
    assert kept["deep"]["map"] == rep["deep"]["map"] and kept["deep"]["file_map"] == rep["deep"]["file_map"]
    for bad in (
        {"map": "x"},
        {**rep["deep"], "allocated_virtual": 1 << 70},
        {**rep["deep"], "file_map": [{"kind": "evil"}]},
    ):
        out = validate({**json.loads(json.dumps(rep)), "deep": bad})
        assert "unavailable" in out["deep"]
        assert any(f["id"] == "report-capped" and "deep" in f["detail"] for f in out["findings"])


def test_text_and_exports_carry_the_deep_result(fake: Any) -> None:
    rep = fake([data(0, 8192), Run(4096, (1 << 20) - 4096, Kind.ZERO)], [HEADER])
    rep.update(verdict="accept", sandbox={})
    line = [ln for ln in summary(rep).splitlines() if ln.startswith("  deep")]
    assert line and "4.0 KiB (4096 bytes) of guest data allocated" in line[0] and "2 map runs" in line[0]
    assert "### Deep inspection" in to_markdown([rep]) and "| 0 | 4096 | data | 8192 |" in to_markdown([rep])
    assert "<h3>Deep inspection</h3>" in to_html([rep])


# qcow2: deep.map against qemu-img map, deep.check against qemu-img check, on images qemu-io wrote.
CHECK_KEYS = ("total-clusters", "allocated-clusters", "fragmented-clusters", "compressed-clusters")
CHECK_KEYS += ("image-end-offset", "leaks", "corruptions", "check-errors")


def qemu_check(qemu_img: str, path: Path) -> dict[str, int]:
    out = subprocess.run([qemu_img, "check", "--output=json", "-U", str(path)], capture_output=True, text=True)
    found = json.loads(out.stdout)
    return {key: found.get(key, 0) for key in CHECK_KEYS}


QCOW2_CASES = {
    "patterns": ((), ("write -P 1 0 3M", "write -P 2 10M 64k", "write -P 3 63M 1M")),
    "zero-writes": ((), ("write -P 1 0 1M", "write -z 512k 256k", "write -z 20M 2M")),
    "compressed": ((), ("write -c -P 5 0 64k", "write -c -P 6 128k 64k", "write -P 1 1M 64k")),
    "discard": ((), ("write -P 1 0 2M", "discard 512k 512k")),
    "extended-l2": (
        ("-o", "extended_l2=on,cluster_size=128k"),
        ("write -P 1 0 8k", "write -z 64k 4k", "write -P 2 1M 300k"),
    ),
    "small-clusters": (("-o", "cluster_size=512"), ("write -P 1 0 64k", "write -P 2 1M 5k")),
    "refcount-bits-1": (("-o", "refcount_bits=1"), ("write -P 1 0 1M",)),
    "refcount-bits-64": (("-o", "refcount_bits=64"), ("write -P 1 0 1M",)),
    "v2": (("-o", "compat=0.10"), ("write -P 1 0 1M", "write -z 4M 1M")),
}


def qcow2_image(qemu_create: Any, case: str) -> Path:
    options, writes = QCOW2_CASES[case]
    path = qemu_create(f"{case}.qcow2", "qcow2", "64M", *options)
    qemu_io(path, "qcow2", *writes)
    return path


@pytest.mark.qemu
@pytest.mark.parametrize("case", sorted(QCOW2_CASES))
def test_qcow2_map_and_check_equal_qemu(case: str, qemu_create: Any, qemu_img: str) -> None:
    path = qcow2_image(qemu_create, case)
    rep = deep_report(path, "qcow2")
    assert ours(rep) == qemu_map(qemu_img, path, "qcow2")
    assert {key: rep["deep"]["check"][key] for key in CHECK_KEYS} == qemu_check(qemu_img, path)
    assert not [f for f in rep["findings"] if f["id"].startswith("deep-")]


@pytest.mark.qemu
def test_qcow2_snapshots_are_counted_like_qemu(qemu_create: Any, qemu_img: str) -> None:
    path = qcow2_image(qemu_create, "patterns")
    subprocess.run([qemu_img, "snapshot", "-c", "one", str(path)], check=True)
    qemu_io(path, "qcow2", "write -P 7 0 128k", "discard 10M 64k")
    subprocess.run([qemu_img, "snapshot", "-c", "two", str(path)], check=True)
    qemu_io(path, "qcow2", "write -c -P 8 5M 64k")
    rep = deep_report(path, "qcow2")
    assert ours(rep) == qemu_map(qemu_img, path, "qcow2")
    assert {key: rep["deep"]["check"][key] for key in CHECK_KEYS} == qemu_check(qemu_img, path)
    assert not [f for f in rep["findings"] if f["id"].startswith("deep-")]


def refcount_entry(path: Path, cluster: int) -> int:
    """File offset of ``cluster``'s 16-bit refcount (the default refcount width) in a small qcow2."""
    data = path.read_bytes()
    reftable = struct.unpack_from(">Q", data, 48)[0]
    block = struct.unpack_from(">Q", data, reftable)[0]
    return block + 2 * cluster


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("stored", "finding_id", "counter"), [(2, "deep-refcount-leak", "leaks"), (0, "deep-refcount", "corruptions")]
)
def test_qcow2_refcount_disagreements(
    qemu_create: Any, qemu_img: str, stored: int, finding_id: str, counter: str
) -> None:
    path = qcow2_image(qemu_create, "patterns")
    host = qemu_map(qemu_img, path, "qcow2")[0]["offset"]
    data = bytearray(path.read_bytes())
    struct.pack_into(">H", data, refcount_entry(path, host >> 16), stored)
    path.write_bytes(data)
    rep = deep_report(path, "qcow2")
    (finding,) = findings(rep, finding_id)
    assert finding["offset"] == host
    assert rep["deep"]["check"][counter] >= 1
    assert {key: rep["deep"]["check"][key] for key in CHECK_KEYS} == qemu_check(qemu_img, path)
    assert finding["severity"] == ("info" if counter == "leaks" else "critical")


@pytest.mark.qemu
def test_qcow2_copied_flag_against_refcount(qemu_create: Any, qemu_img: str) -> None:
    path = qcow2_image(qemu_create, "patterns")
    data = bytearray(path.read_bytes())
    l1 = struct.unpack_from(">Q", data, 40)[0]
    l2 = struct.unpack_from(">Q", data, l1)[0] & 0x00FF_FFFF_FFFF_FE00
    entry = struct.unpack_from(">Q", data, l2)[0]
    struct.pack_into(">Q", data, l2, entry & ~(1 << 63))
    path.write_bytes(data)
    rep = deep_report(path, "qcow2")
    (finding,) = findings(rep, "deep-copied-flag")
    assert finding["offset"] == l2 and finding["severity"] == "critical"
    assert {key: rep["deep"]["check"][key] for key in CHECK_KEYS} == qemu_check(qemu_img, path)


@pytest.mark.qemu
def test_qcow2_l2_entry_into_the_refcount_table(qemu_create: Any) -> None:
    path = qcow2_image(qemu_create, "patterns")
    data = bytearray(path.read_bytes())
    l1 = struct.unpack_from(">Q", data, 40)[0]
    reftable = struct.unpack_from(">Q", data, 48)[0]
    l2 = struct.unpack_from(">Q", data, l1)[0] & 0x00FF_FFFF_FFFF_FE00
    struct.pack_into(">Q", data, l2 + 8, reftable | 1 << 63)
    path.write_bytes(data)
    rep = deep_report(path, "qcow2")
    (finding,) = findings(rep, "deep-invalid-entry")
    assert finding["offset"] == l2 + 8
    assert findings(rep, "deep-refcount")  # the refcount table's cluster now has two references


@pytest.mark.qemu
def test_qcow2_compressed_descriptor_overrunning_the_file(qemu_create: Any) -> None:
    path = qcow2_image(qemu_create, "compressed")
    data = bytearray(path.read_bytes())
    l1 = struct.unpack_from(">Q", data, 40)[0]
    l2 = struct.unpack_from(">Q", data, l1)[0] & 0x00FF_FFFF_FFFF_FE00
    shift = 62 - (16 - 8)  # 64 KiB clusters: 8 bits of sector count above the host offset
    struct.pack_into(">Q", data, l2, 1 << 62 | 0xFF << shift | len(data) - 512)  # 256 sectors from the last one
    path.write_bytes(data)
    rep = deep_report(path, "qcow2")
    (finding,) = findings(rep, "deep-invalid-entry")
    assert finding["offset"] == l2


@pytest.mark.qemu
def test_qcow2_bitmaps_are_counted_like_qemu(qemu_create: Any, qemu_img: str) -> None:
    path = qcow2_image(qemu_create, "patterns")
    subprocess.run([qemu_img, "bitmap", "--add", str(path), "b0"], check=True)
    qemu_io(path, "qcow2", "write -P 9 20M 1M")
    subprocess.run([qemu_img, "bitmap", "--add", str(path), "b1"], check=True)
    rep = deep_report(path, "qcow2")
    assert {key: rep["deep"]["check"][key] for key in CHECK_KEYS} == qemu_check(qemu_img, path)
    names = {run.get("name") for run in rep["deep"]["file_map"]}
    assert {"bitmap directory", "bitmap 0 table", "bitmap 1 table"} <= names
    assert not [f for f in rep["findings"] if f["id"].startswith("deep-")]


# Through the real sandboxed command line, once per format family: deep.map equals qemu-img map.
CLI_FORMATS = {
    "qcow2": ("qcow2", ()),
    "qcow": ("qcow", ()),
    "qed": ("qed", ()),
    "vmdk": ("vmdk", ()),
    "vmdk-stream": ("vmdk", ("-o", "subformat=streamOptimized")),
    "vhdx": ("vhdx", ()),
    "vpc": ("vpc", ()),
    "vdi": ("vdi", ()),
}


def inspect_deep_cli(path: Path, fmt: str, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(path.parent / "config")}
    command = [sys.executable, "-m", "workbench", "inspect", "--deep", "--json", "-f", fmt, *extra, str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    return json.loads(result.stdout)


@pytest.mark.qemu
@pytest.mark.parametrize("case", sorted(CLI_FORMATS))
def test_cli_deep_json_per_format_family(case: str, qemu_create: Any, qemu_img: str) -> None:
    fmt, options = CLI_FORMATS[case]
    path = qemu_create(f"image.{case}", fmt, "64M", *options)
    if case != "vmdk-stream":  # qemu writes a streamOptimized image only by converting
        qemu_io(path, fmt, "write -P 1 0 1M", "write -P 2 5M 64k")
    rep = inspect_deep_cli(path, fmt)
    assert rep["sandbox"] and rep["verdict"] != "failed"
    if fmt == "vhdx":  # qemu 7.2 has no block status for vhdx: its map is one data run without offsets
        assert rep["deep"]["allocated_virtual"] == 8 << 20  # both writes fall in the first 8 MiB block
    else:
        assert ours(rep) == qemu_map(qemu_img, path, fmt)
    assert rep["deep"]["complete"] is True
    assert not [f for f in rep["findings"] if f["id"].startswith("deep-")]


@pytest.mark.qemu
def test_cli_deep_4_tib_sparse_qcow2_and_a_small_budget(qemu_create: Any, qemu_img: str) -> None:
    path = qemu_create("big.qcow2", "qcow2", "4T")
    qemu_io(path, "qcow2", "write -P 1 0 1M", "write -P 2 3T 1M")
    rep = inspect_deep_cli(path, "qcow2", "--max-virtual-size", "8T")
    assert rep["verdict"] == "accept" and rep["deep"]["complete"] is True
    assert ours(rep) == qemu_map(qemu_img, path, "qcow2")
    assert {key: rep["deep"]["check"][key] for key in CHECK_KEYS} == qemu_check(qemu_img, path)
    short = inspect_deep_cli(path, "qcow2", "--max-virtual-size", "8T", "--deep-budget", "64K")
    assert short["verdict"] == "review" and short["deep"]["complete"] is False
    assert short["deep"]["bytes_read"] <= 64 << 10
    assert any("were not checked" in f["detail"] for f in short["findings"] if f["id"] == "deep-budget")


def test_cli_rejects_a_deep_budget_past_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "x.raw"
    path.write_bytes(bytes(512))
    command = [sys.executable, "-m", "workbench", "inspect", "--deep", "--deep-budget", "2G", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "deep budget" in result.stderr


def test_deep_requests_get_the_deep_cpu_limit_and_may_still_lower_it() -> None:
    from workbench.schema import CPU_SECONDS, DEEP_CPU_SECONDS

    assert worker.plan_for({"fd": 3}, {3}).cpu_seconds == CPU_SECONDS
    assert worker.plan_for({"fd": 3, "deep": True}, {3}).cpu_seconds == DEEP_CPU_SECONDS
    assert worker.plan_for({"fd": 3, "deep": True, "cpu_seconds": 30}, {3}).cpu_seconds == 30
    assert worker.plan_for({"fd": 3, "cpu_seconds": 30}, {3}).cpu_seconds == CPU_SECONDS


@pytest.mark.qemu
def test_a_sandboxed_child_sends_progress_lines_before_its_reply(qemu_create: Any) -> None:
    import asyncio

    from workbench.host.runner import EngineOptions, inspect_path

    path = qcow2_image(qemu_create, "patterns")
    seen: list[dict[str, Any]] = []
    options = EngineOptions(timeout=60, deep=True, on_progress=seen.append)
    rep = asyncio.run(inspect_path(str(path), "qcow2", options))
    assert rep["deep"]["complete"] is True
    assert seen and seen[-1] == {"done": 64 << 20, "total": 64 << 20, "what": "done"}
    assert all(0 <= line["done"] <= line["total"] == 64 << 20 for line in seen)


def test_an_internal_error_is_a_finding_not_a_dead_child(fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.engine.deep import walk

    def broken(self: Any) -> None:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(walk.Walk, "walk", broken)
    rep = fake([data(0, 8192)], [HEADER])
    assert "unavailable" in rep["deep"]
    (finding,) = [f for f in rep["findings"] if f["check"] == "engine.parser-error"]
    assert "ZeroDivisionError" in finding["detail"]


# Hostile tables that send a walk back to one table again and again: the budget bounds the entries looked at.
CLUSTER = 1 << 16
TIB = 1 << 40


def one_table_for_every_entry_qcow2(tmp_path: Path) -> tuple[Path, int, int]:
    """A 4 TiB qcow2 (64 KiB clusters) whose 8192 L1 entries all name the L2 table in cluster 4, which maps
    its first cluster to the data cluster 5: (path, L2 offset, data offset)."""
    image = bytearray(qcow2(4 * TIB))
    l1_at, l2_at, data_at = struct.unpack_from(">Q", image, 40)[0], len(image), len(image) + CLUSTER
    entries = 8192
    assert struct.unpack_from(">I", image, 36)[0] == entries and l1_at + 8 * entries == l2_at
    image[l1_at:l2_at] = struct.pack(">Q", 1 << 63 | l2_at) * entries
    image += struct.pack(">Q", 1 << 63 | data_at).ljust(CLUSTER, b"\0") + b"\x5a" * CLUSTER
    path = tmp_path / "one-l2.qcow2"
    path.write_bytes(image)
    return path, l2_at, data_at


def test_qcow2_l1_naming_one_l2_table_everywhere_stops_at_the_budget(tmp_path: Path) -> None:
    path, l2_at, data_at = one_table_for_every_entry_qcow2(tmp_path)
    rep = deep_report(path, "qcow2")
    deep = rep["deep"]
    assert deep["complete"] is False and deep["check"] == {}
    (stop,) = findings(rep, "deep-budget")
    assert "were not checked" in stop["detail"]
    assert deep["bytes_read"] <= 2 * CLUSTER * 8  # the table is read once; looking at it again costs budget
    walked = deep["allocated_virtual"] // CLUSTER  # L1 entries walked: each maps one data cluster
    assert 1000 <= walked <= DEFAULT_DEEP_BUDGET // CLUSTER  # each look at the L2 table costs its 64 KiB
    (overlap,) = findings(rep, "deep-overlap")
    assert overlap["offset"] == l2_at and f"L2 table 1 at {l2_at}+{CLUSTER} is also L2 table 0" in overlap["detail"]
    assert overlap["detail"].startswith(f"{8191 + walked - 1} found")  # the table named 8191 more times, the data
    assert deep["map"][0] == {
        "start": 0,
        "length": CLUSTER,
        "present": True,
        "zero": False,
        "data": True,
        "compressed": False,
        "offset": data_at,
    }


def one_table_for_every_entry_vmdk(tmp_path: Path) -> tuple[Path, int, int]:
    """A 2 TiB monolithicSparse VMDK (64 KiB grains, 512 entries per grain table) whose 65536 grain
    directory entries all name one grain table, which maps its first grain: (path, GT offset, grain offset)."""
    gd_entries, gd_sector = 65536, 32
    gt_sector = gd_sector + gd_entries * 4 // 512
    grain_sector = gt_sector + 4
    head = vmdk_samples.sparse(
        2 * TIB // 512, flags=0x1, rgd_offset=0, gd_offset=gd_sector, overhead=grain_sector, desc_size=20
    )
    image = bytearray(head[: gd_sector * 512])
    image += struct.pack("<I", gt_sector) * gd_entries
    image += struct.pack("<I", grain_sector).ljust(2048, b"\0") + b"\x5a" * CLUSTER
    path = tmp_path / "one-gt.vmdk"
    path.write_bytes(image)
    return path, gt_sector * 512, grain_sector * 512


def test_vmdk_grain_directory_naming_one_grain_table_everywhere_stops_at_the_budget(tmp_path: Path) -> None:
    path, gt_at, grain_at = one_table_for_every_entry_vmdk(tmp_path)
    rep = deep_report(path, "vmdk")
    deep = rep["deep"]
    assert deep["complete"] is False
    (stop,) = findings(rep, "deep-budget")
    assert "were not checked" in stop["detail"]
    walked = deep["allocated_virtual"] // CLUSTER  # grain directory entries walked: each maps one grain
    assert 16000 <= walked <= DEFAULT_DEEP_BUDGET // (8 * 512)  # 8 budget bytes an entry of the kept table
    (overlap,) = findings(rep, "deep-overlap")
    assert overlap["offset"] == gt_at and f"grain table 1 at {gt_at}+2048 is also grain table 0" in overlap["detail"]
    assert overlap["detail"].startswith(f"{65535 + walked - 1} found")  # the table named 65535 more times, the grain


def test_a_walk_out_of_cpu_time_stops_with_the_budget_finding(
    fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's CPU limit would kill a walk that hostile tables make slow: it stops first, with a finding."""
    monkeypatch.setattr(walk_module, "CPU_SECONDS", -1)
    rep = fake([data(0, 8192), Run(4096, (1 << 20) - 4096, Kind.UNALLOCATED)], [HEADER, L1])
    assert rep["deep"]["complete"] is False
    (stop,) = findings(rep, "deep-budget")
    assert "CPU time" in stop["detail"] and "guest bytes 0..1048576" in stop["detail"]


def test_the_qcow2_check_stops_on_the_budget_and_on_cpu_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, l2_at, _ = one_table_for_every_entry_qcow2(tmp_path)
    rep = deep_report(path, "qcow2", budget=1 << 30)  # the walk looks at the table 8192 times, so does the check
    (stop,) = findings(rep, "deep-budget")
    assert rep["deep"]["complete"] is False and stop["detail"].startswith(f"qcow2 checks stopped at {l2_at}")
    original = walk_module.Walk.walk

    def then_out_of_time(self: Any) -> None:
        original(self)
        self.deadline = -1.0

    monkeypatch.setattr(walk_module.Walk, "walk", then_out_of_time)
    image = bytearray(qcow2(1 << 20))  # L1 entry 0 names an L2 table (the check looks at the clock per table)
    l1_at, l2_at = struct.unpack_from(">Q", image, 40)[0], len(image)
    image[l1_at : l1_at + 8] = struct.pack(">Q", 1 << 63 | l2_at)
    small = tmp_path / "small.qcow2"
    small.write_bytes(image + struct.pack(">Q", 1 << 63 | l2_at + CLUSTER).ljust(CLUSTER, b"\0") + bytes(CLUSTER))
    rep = deep_report(small, "qcow2")
    (stop,) = findings(rep, "deep-budget")
    assert stop["detail"].startswith("qcow2 checks stopped: the deep walk used its") and rep["deep"]["check"] == {}


@pytest.mark.qemu
def test_a_deep_reader_that_keeps_little_reads_again_and_finds_the_same(
    qemu_create: Any, qemu_img: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deep reader lets go of table bytes past ``KEEP`` (its budget may reach the child's memory limit):
    what it needs again is read again, and the map and counters stay qemu's."""
    path = qcow2_image(qemu_create, "patterns")
    qemu_io(path, "qcow2", "write -P 5 32M 1M", "write -P 6 60M 1M")  # more L2 tables than one
    kept = deep_report(path, "qcow2")
    monkeypatch.setattr(deep_module, "KEEP", 4096)
    small = deep_report(path, "qcow2")
    assert ours(small) == ours(kept) == qemu_map(qemu_img, path, "qcow2")
    assert {key: small["deep"]["check"][key] for key in CHECK_KEYS} == qemu_check(qemu_img, path)
    assert small["deep"]["bytes_read"] > kept["deep"]["bytes_read"]  # the same tables, read more than once


def test_reader_keep_lets_go_of_what_it_kept_and_charges_looks_again(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(bytes(range(256)) * 64)  # 16 KiB
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = Reader(fd, 16384, budget=12288, keep=4096)
        assert reader.read(0, 4096)[:2] == b"\0\1" and reader.bytes_read == 4096
        assert reader.read_charged(0, 4096)[:2] == b"\0\1" and (reader.bytes_read, reader.examined) == (4096, 4096)
        assert reader.read(4096, 16)[:1] == b"\0" and reader.regions() == [(4096, bytes(range(16)))]
        with pytest.raises(BudgetExceeded):
            reader.read(8192, 4096)  # 4096 read and 4096 looked at again leave 4096 - 16 bytes
    finally:
        os.close(fd)
