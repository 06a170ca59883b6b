"""The engine's building blocks: the bounded reader, the field tree, detection and the report builder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import finding_ids, inspect_file
from workbench.engine import checks, detect
from workbench.engine.fields import Field, Layout, Spec, bit_flags, clean_text
from workbench.engine.findings import make
from workbench.engine.fit import field_tree
from workbench.engine.limits import MAX_DEPTH
from workbench.engine.reader import BudgetExceeded, Reader


def _reader(tmp_path: Path, data: bytes, budget: int = 1 << 20) -> Reader:
    path = tmp_path / "img"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    return Reader(fd, len(data), budget)


def test_reader_counts_bytes_and_serves_repeats_from_cache(tmp_path: Path) -> None:
    reader = _reader(tmp_path, bytes(range(256)) * 16)
    assert reader.read(0, 512)[:4] == b"\x00\x01\x02\x03"
    assert reader.read(16, 4) == b"\x10\x11\x12\x13"
    assert reader.bytes_read == 512


def test_reader_stops_at_the_budget(tmp_path: Path) -> None:
    reader = _reader(tmp_path, b"x" * 10_000, budget=4096)
    reader.read(0, 4000)
    with pytest.raises(BudgetExceeded) as caught:
        reader.read(5000, 200)
    assert caught.value.offset == 5000
    assert reader.bytes_read == 4000


def test_reader_is_short_at_end_of_file_and_empty_past_it(tmp_path: Path) -> None:
    reader = _reader(tmp_path, b"abcdef")
    assert reader.read(4, 100) == b"ef"
    assert reader.read(100, 10) == b""
    assert reader.read_tail(3) == (3, b"def")


def test_reader_regions_merge_overlaps(tmp_path: Path) -> None:
    reader = _reader(tmp_path, bytes(range(200)))
    reader.read(0, 10)
    reader.read(5, 10)
    reader.read(100, 4)
    assert reader.regions() == [(0, bytes(range(15))), (100, bytes(range(100, 104)))]


def test_layout_gives_typed_values_shown_values_and_fields_with_offsets() -> None:
    data = b"QFI\xfb" + (3).to_bytes(4, "big") + b"name\0pad" + bytes(16)
    specs = [
        Spec("magic", 0, "4s", "signature", "bytes"),
        Spec("version", 4, "I", "version"),
        Spec("label", 8, "8s", "label", "text"),
        Spec("missing", 40, "Q", "past the data"),
    ]
    layout = Layout("header", specs)
    values, group = layout.read(data, 1000)
    assert values == {"magic": b"QFI\xfb", "version": 3, "label": b"name\0pad"}  # typed: for the parser's logic
    shown = {name: layout.shown(values, name) for name in layout.names}
    assert shown == {"magic": "514649fb", "version": 3, "label": "name", "missing": None}  # as the tree shows them
    assert layout.shown(values, "missing", "") == ""
    assert [(f.name, f.offset, f.size) for f in group.children] == [
        ("magic", 1000, 4),
        ("version", 1004, 4),
        ("label", 1008, 8),
    ]


def test_unpack_from_reads_a_structure_inside_bytes_and_truncated_rows_as_zero() -> None:
    layout = Layout("entry", [Spec("inode", 0, "I"), Spec("rec_len", 4, "H"), Spec("name", 6, "4s")], "<")
    data = b"xx" + layout.pack(inode=7, rec_len=12, name=b"etc\0")
    assert layout.unpack_from(data, 2) == {"inode": 7, "rec_len": 12, "name": b"etc\0"}
    assert layout.unpack_from(data[:7], 2) == {"inode": 7, "rec_len": 0, "name": bytes(4)}  # cut inside rec_len
    assert layout.unpack_from(b"", 0) == {"inode": 0, "rec_len": 0, "name": bytes(4)}


def test_clean_text_caps_and_stops_at_nul() -> None:
    assert clean_text(b"abc\0def") == "abc"
    assert len(clean_text(b"a" * 10_000)) == 4096
    assert clean_text("hé".encode("utf-16-le") + b"\0\0zz", "utf-16-le") == "hé"


def test_bit_flags_names_known_and_unknown_bits() -> None:
    flags = bit_flags(0b10011, {0: "dirty", 1: "corrupt"}, 72, 8)
    assert [f.name for f in flags] == ["dirty", "corrupt", "unknown bit 4"]


def test_field_tree_is_capped_without_recursion() -> None:
    root = Field("root", 0, 1)
    node = root
    for depth in range(5000):  # deeper than Python's recursion limit
        node = node.add(Field(f"n{depth}", depth, 1))
    tree, left, _ = field_tree([root], limit=100)
    assert left == 1  # the first node past the depth cap; its subtree is never walked
    depth = 0
    node_json = tree[0]
    while node_json.get("children"):
        node_json = node_json["children"][0]
        depth += 1
    assert depth == MAX_DEPTH - 1  # the parent refuses a deeper tree, so the engine never sends one


def test_ambiguity_rules() -> None:
    assert detect.ambiguity([], "raw") is None
    assert detect.ambiguity(["gpt", "mbr"], "raw") is None
    assert detect.ambiguity(["qcow2"], "qcow2") is None


def test_raw_report_has_every_contract_key(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(1 << 16))
    report = inspect_file(path, "raw")
    contract = {
        "path", "declared_format", "format", "format_matches", "virtual_size", "file_size", "allocated_size",
        "cluster_size", "encrypted", "encryption", "backing", "data_file", "extents", "dirty", "corrupt",
        "snapshots", "fields", "findings", "bytes_read",
    }  # fmt: skip
    assert contract <= report.keys()
    assert report["format"] == "raw"
    assert report["virtual_size"] == report["file_size"] == 1 << 16
    assert finding_ids(report) == {"unencrypted"}


def test_empty_and_one_byte_files_give_reports(tmp_path: Path) -> None:
    for size in (0, 1):
        path = tmp_path / f"f{size}"
        path.write_bytes(b"Q" * size)
        report = inspect_file(path)
        assert report["file_size"] == size
        assert report["format"] == "raw"


def test_reader_reads_each_byte_once_across_overlapping_reads(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    reader = _reader(tmp_path, data)
    assert reader.read(0, 8) == data[:8]
    assert reader.read(4, 16) == data[4:20]
    assert reader.read(100, 50) == data[100:150]
    assert reader.read(0, 512) == data[:512]
    assert reader.bytes_read == 512
    assert reader.regions() == [(0, data[:512])]


def test_reader_sees_a_file_that_shrank(tmp_path: Path) -> None:
    path = tmp_path / "shrinking"
    path.write_bytes(b"y" * 4096)
    fd = os.open(path, os.O_RDONLY)
    reader = Reader(fd, 4096)
    os.truncate(path, 100)
    assert reader.read(50, 200) == b"y" * 50
    assert reader.read(3000, 10) == b""


def test_reader_works_without_pread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(range(256)) * 4
    reader = _reader(tmp_path, data)
    monkeypatch.delattr(os, "pread")
    assert reader.read(300, 20) == data[300:320]
    assert reader.read(0, 10) == data[:10]


# --- named checks, layouts, shared checks ----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
CHECK_IN_SOURCE = re.compile(
    r'(?:malformed\(\s*|problems\.append\(\s*\(\s*)"([a-z0-9]+\.[a-z0-9-]+)"|"([a-z0-9]+\.[a-z0-9-]+-truncated)"'
)


def test_every_check_id_in_the_parsers_is_listed_in_docs_formats() -> None:
    documented = set(re.findall(r"^\| `([a-z0-9]+\.[a-z0-9-]+)` \|", (ROOT / "docs/formats.md").read_text(), re.M))
    used = {
        check
        for path in (ROOT / "workbench/engine/formats").glob("*.py")
        for found in CHECK_IN_SOURCE.findall(path.read_text())
        for check in found
        if check
    }
    assert len(used) > 200
    assert used <= documented, sorted(used - documented)


def test_a_malformed_finding_needs_a_check_id_and_other_findings_take_none() -> None:
    finding = make("malformed", "bad", 4, check="qcow2.version")
    assert finding.to_json()["check"] == "qcow2.version"
    assert make("dirty", "d").to_json()["check"] is None
    for finding_id, check in (("malformed", None), ("dirty", "qcow2.dirty"), ("malformed", "Not An Id")):
        with pytest.raises(ValueError):
            make(finding_id, "x", check=check)


def test_a_layout_is_declared_once_for_offsets_values_fields_and_bytes() -> None:
    layout = Layout("demo", [Spec("magic", 0, "4s", "m", "text"), Spec("size", 4, "Q", "s", "hex")], ">", "d")
    assert (layout.size, layout.offset_of("size"), layout.offset_of("size", base=100)) == (12, 4, 104)
    data = layout.pack(magic=b"AB\0\0", size=0x10)
    assert data == b"AB\0\0" + (16).to_bytes(8, "big")
    values, group = layout.read(data, 512)
    assert values == {"magic": b"AB\0\0", "size": 16}  # typed: bytes and ints, never display text
    assert [(f.name, f.offset, f.size, f.value) for f in group.children] == [
        ("magic", 512, 4, "AB"),
        ("size", 516, 8, "0x10"),
    ]
    assert layout.unpack(data[:6]) == {"magic": b"AB\0\0"}  # a row cut by the end of the data is left out
    with pytest.raises(KeyError):
        layout.pack(other=1)


def test_power_of_two_alignment_and_bounds() -> None:
    assert [v for v in (-4, 0, 1, 2, 3, 4, 6, 1 << 40) if checks.is_power_of_two(v)] == [1, 2, 4, 1 << 40]
    assert checks.aligned(4096, 512) and not checks.aligned(4097, 512) and checks.aligned(7, 0)
    assert checks.align_up(9, 8) == 16 and checks.align_up(16, 8) == 16
    assert checks.ends_past(10, 6, 15) and not checks.ends_past(10, 5, 15)


def test_the_overlap_sweep_pairs_a_long_range_with_every_range_it_covers() -> None:
    # neighbours only would see a-b and miss a-c: a covers both
    assert checks.overlaps([(0, 100, "a"), (10, 20, "b"), (30, 40, "c"), (100, 110, "d"), (5, 5, "empty")]) == [
        ("a", "b"),
        ("a", "c"),
    ]
    assert len(checks.overlaps([(0, 10, n) for n in range(100)], limit=7)) == 7
