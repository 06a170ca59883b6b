"""VMDK: sparse extents, descriptors and every file a descriptor names, checked against qemu-img."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.builders import vmdk
from tests.helpers import assert_no_parser_error, checks_of, details_of, finding_ids, inspect_file, write
from workbench.engine.fields import MAX_TEXT
from workbench.engine.formats import vmdk as parser
from workbench.engine.inspection import MAX_LIST

SPARSE_SUBFORMATS = ("monolithicSparse", "streamOptimized")
DESCRIPTOR_SUBFORMATS = ("monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat")


@pytest.mark.qemu
@pytest.mark.parametrize("subformat", SPARSE_SUBFORMATS + DESCRIPTOR_SUBFORMATS)
def test_matches_qemu_img(
    subformat: str, qemu_create: Callable[..., Path], qemu_info: Callable[[Path, str], dict[str, Any]]
) -> None:
    path = qemu_create(f"{subformat}.vmdk", "vmdk", "64M", "-o", f"subformat={subformat}")
    rep = inspect_file(path, "vmdk")
    ref = qemu_info(path, "vmdk")
    spec = ref["format-specific"]["data"]
    assert rep["format"] == ref["format"] == "vmdk"
    assert rep["format_matches"] == ["vmdk"]
    assert rep["virtual_size"] == ref["virtual-size"] == 64 << 20
    assert rep["details"]["create_type"] == spec["create-type"] == subformat
    assert rep["details"]["cid"] == spec["cid"]
    assert rep["details"]["parent_cid"] == spec["parent-cid"] == 0xFFFFFFFF
    assert [e["filename"] for e in rep["extents"]] == [Path(e["filename"]).name for e in spec["extents"]]
    assert rep["backing"] is None and "backing-filename" not in ref
    assert_no_parser_error(rep)


@pytest.mark.qemu
@pytest.mark.parametrize("subformat", SPARSE_SUBFORMATS)
def test_sparse_extent_is_the_image_itself(subformat: str, qemu_create: Callable[..., Path], qemu_info: Any) -> None:
    """The embedded descriptor names the file itself: not an external extent; the grain is the cluster."""
    path = qemu_create(f"{subformat}.vmdk", "vmdk", "64M", "-o", f"subformat={subformat}")
    rep = inspect_file(path, "vmdk")
    assert rep["cluster_size"] == qemu_info(path, "vmdk")["cluster-size"] == 65536
    assert [(e["kind"], e["external"]) for e in rep["extents"]] == [("self", False)]
    assert "external-extent" not in finding_ids(rep)
    assert rep["details"]["compression"] == ("deflate" if subformat == "streamOptimized" else "none")


@pytest.mark.qemu
@pytest.mark.parametrize("subformat", DESCRIPTOR_SUBFORMATS)
def test_descriptor_only_extents_are_external(subformat: str, qemu_create: Callable[..., Path]) -> None:
    """Every extent of a descriptor-only file is another host file, even qemu's own beside the image.

    qemu-img reports the extent files' cluster size (twoGbMaxExtentSparse: 64 KiB) because it opens them;
    the workbench never opens a named file, so it has no cluster size to report.
    """
    path = qemu_create(f"{subformat}.vmdk", "vmdk", "64M", "-o", f"subformat={subformat}")
    rep = inspect_file(path, "vmdk")
    assert rep["cluster_size"] is None
    assert [(e["kind"], e["external"]) for e in rep["extents"]] == [("sibling", True)]
    (detail,) = details_of(rep, "external-extent")
    assert rep["extents"][0]["filename"] in detail and "file beside the image" in detail
    assert [r["name"] for r in rep["references"] if r["role"] == "extent"] == [rep["extents"][0]["filename"]]
    assert rep["bytes_read"] < 4096


@pytest.mark.qemu
def test_backing_file_matches_qemu_img(qemu_create: Callable[..., Path], qemu_info: Any) -> None:
    qemu_create("base.vmdk", "vmdk", "64M")
    child = qemu_create("child.vmdk", "vmdk", "64M", "-b", "base.vmdk", "-F", "vmdk")
    rep = inspect_file(child, "vmdk")
    ref = qemu_info(child, "vmdk")
    assert rep["backing"] == {
        "filename": ref["backing-filename"],
        "format": ref["backing-filename-format"],
        "kind": "path",
    }
    assert rep["details"]["parent_cid"] == ref["format-specific"]["data"]["parent-cid"] != 0xFFFFFFFF
    assert any("'base.vmdk'" in d for d in details_of(rep, "backing-file"))
    assert "malformed" not in finding_ids(rep)


@pytest.mark.qemu
def test_stream_footer_takes_precedence(tmp_path: Path, qemu_info: Any) -> None:
    """A grain directory 'at the end' sends both readers to the footer, whose capacity wins."""
    path = write(tmp_path, vmdk.stream_optimized(2048, footer_capacity=4096), "disk.vmdk")
    rep = inspect_file(path, "vmdk")
    assert rep["virtual_size"] == qemu_info(path, "vmdk")["virtual-size"] == 4096 * 512
    assert any(f["name"] == "stream footer" for f in rep["fields"])
    assert "malformed" not in finding_ids(rep)


def test_broken_stream_footer_is_malformed(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vmdk.stream_optimized(valid_footer=False), "disk.vmdk"), "vmdk")
    assert "vmdk.footer-invalid" in checks_of(rep)
    assert rep["virtual_size"] == 2048 * 512  # the header at offset 0 is all there is


@pytest.mark.parametrize(
    ("head", "matches"),
    [
        (b"# Disk DescriptorFile\nversion=1\n", True),
        (b"  \n# Disk DescriptorFile\n", True),
        (b"# written by hand\n   \r\n#\nversion=2\r\nCID=1\n", True),
        (b"# a comment\nhello=1\n", False),
        (b"plain guest data\n" * 100, False),
        (b"#" * 4000, False),  # a comment longer than the probe window
    ],
)
def test_probe_descriptor(tmp_path: Path, head: bytes, matches: bool) -> None:
    rep = inspect_file(write(tmp_path, head, "disk.vmdk"))
    assert ("vmdk" in rep["format_matches"]) is matches


def test_descriptor_paths_are_classified(tmp_path: Path) -> None:
    names = {
        "/etc/passwd": "absolute",
        "../x": "parent",
        "C:\\x": "drive",
        "\\\\server\\share\\x": "unc",
        "sub/x.vmdk": "subfolder",
        "x-flat.vmdk": "sibling",
    }
    extents = [("RW", 8, "FLAT", name, 0) for name in names]
    rep = inspect_file(write(tmp_path, vmdk.descriptor_file(extents), "disk.vmdk"), "vmdk")
    assert {e["filename"]: e["kind"] for e in rep["extents"]} == names
    assert all(e["external"] for e in rep["extents"])
    assert {r["name"] for r in rep["references"] if r["role"] == "extent"} == set(names)
    found = details_of(rep, "external-extent")
    assert len(found) == len(names)
    assert any("'/etc/passwd' (absolute host path)" in d for d in found)
    assert any("UNC" in d and "server" in d for d in found)
    assert rep["virtual_size"] == 8 * 512 * len(names)
    assert all(f["severity"] == "critical" for f in rep["findings"] if f["id"] == "external-extent")


def test_demo_names_a_host_file(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vmdk.demo_host_file(), "disk.vmdk"))
    assert rep["format"] == "vmdk"
    assert rep["extents"][0]["filename"] == "/etc/shadow" and rep["extents"][0]["external"]


def test_embedded_extent_with_a_path_is_external(tmp_path: Path) -> None:
    desc = vmdk.descriptor(extents=[("RW", 2048, "SPARSE", "/etc/passwd", None)])
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048, desc), "disk.vmdk"), "vmdk")
    assert [(e["kind"], e["external"]) for e in rep["extents"]] == [("absolute", True)]
    assert any("/etc/passwd" in d for d in details_of(rep, "external-extent"))


def test_several_embedded_extents_are_all_external(tmp_path: Path) -> None:
    desc = vmdk.descriptor(extents=[("RW", 1024, "SPARSE", "disk.vmdk", None), ("RW", 1024, "FLAT", "other", 0)])
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048, desc), "disk.vmdk"), "vmdk")
    assert [e["external"] for e in rep["extents"]] == [True, True]


def test_capacity_zero_opens_through_the_descriptor(tmp_path: Path) -> None:
    """qemu reads a capacity-0 sparse file as a descriptor: its extent file is then another file."""
    desc = vmdk.descriptor(extents=[("RW", 4096, "SPARSE", "disk.vmdk", None)])
    rep = inspect_file(write(tmp_path, vmdk.sparse(0, desc), "disk.vmdk"), "vmdk")
    assert rep["extents"][0]["external"] and rep["virtual_size"] == 4096 * 512


def test_network_extent(tmp_path: Path) -> None:
    rep = inspect_file(
        write(tmp_path, vmdk.descriptor_file([("RW", 8, "FLAT", "nbd://evil:10809/x", 0)]), "disk.vmdk"), "vmdk"
    )
    assert rep["extents"][0]["kind"] == "network"
    assert {"external-extent", "backing-network"} <= finding_ids(rep)


def test_oversized_descriptor_size_is_not_a_cap(tmp_path: Path) -> None:
    """A declared size of 2**40 sectors changes nothing: the text ends at its NUL, as qemu reads it, and
    was read whole, so no cap was reached (the 64 KiB cap and its warning are gone)."""
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048, desc_size=2**40), "disk.vmdk"), "vmdk")
    assert "vmdk.descriptor-size-past-eof" in checks_of(rep)
    assert "read-budget" not in finding_ids(rep)
    assert rep["extents"][0]["kind"] == "self"
    assert rep["bytes_read"] < 64 * 1024
    assert_no_parser_error(rep)


def test_descriptor_offset_past_eof(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048, desc_offset=10**9), "disk.vmdk"), "vmdk")
    assert checks_of(rep) == ["vmdk.descriptor-past-eof"]
    assert not any(f["name"] == "descriptor" for f in rep["fields"])
    assert rep["extents"][0]["kind"] == "self"


def test_unparsable_and_repeated_lines(tmp_path: Path) -> None:
    extra = 'this is not a descriptor line\nRW many SPARSE "x"\ncreateType="vmfs"\nRW 8 WEIRD "y"\nRW 8 FLAT "z"\n'
    rep = inspect_file(write(tmp_path, vmdk.descriptor_file([], extra=extra), "disk.vmdk"), "vmdk")
    assert sorted(checks_of(rep)) == [
        "vmdk.descriptor-key-duplicate",
        "vmdk.descriptor-line",  # one finding lists both lines
        "vmdk.extent-type",
        "vmdk.flat-extent-offset",
    ]
    assert rep["details"]["create_type"] == "monolithicFlat"  # the first one, as qemu reads it


def test_many_extent_lines_are_capped(tmp_path: Path) -> None:
    """2.2 MB of extent lines: the list keeps 1024, every line read is examined, the budget cap is critical."""
    lines = "".join(f'RW 1 FLAT "f{i}"  0\n' for i in range(100_000))
    rep = inspect_file(write(tmp_path, vmdk.descriptor_file([], extra=lines), "disk.vmdk"), "vmdk")
    assert len(rep["extents"]) == MAX_LIST
    assert len(details_of(rep, "external-extent")) == parser.MAX_EXTENT_FINDINGS + 1
    budget = [f for f in rep["findings"] if f["id"] == "read-budget"]
    assert {f["severity"] for f in budget} == {"critical"}
    text = " ".join(f["detail"] for f in budget)
    assert "the read budget ran out" in text and "not examined" in text
    listed = "every line read was examined, only the first 1024 are listed and 1024 more distinct names referenced"
    assert listed in text and "more extents name files that are not in the report" in text
    assert len(rep["references"]) == MAX_LIST
    assert rep["bytes_read"] <= rep["read_budget"]
    assert_no_parser_error(rep)


def test_parent_hint_with_control_characters(tmp_path: Path) -> None:
    hint = "\x1b[2J\x1b]0;owned\x07" + "\x01\x7f" + "A" * 9000
    desc = vmdk.descriptor(parent_hint=hint, extents=[("RW", 2048, "SPARSE", "disk.vmdk", None)])
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048, desc, desc_size=40, overhead=64), "disk.vmdk"), "vmdk")
    name = rep["backing"]["filename"]
    assert name.startswith("\x1b[2J\x1b]0;owned\x07\x01\x7f") and len(name) == MAX_TEXT
    assert "backing-file" in finding_ids(rep)


def test_parent_hint_in_a_comment_is_what_qemu_reads(tmp_path: Path) -> None:
    """qemu takes the first 'parentFileNameHint' anywhere in the text, comments included."""
    desc = vmdk.descriptor(extra='# parentFileNameHint="/etc/shadow"\n')
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048, desc), "disk.vmdk"), "vmdk")
    assert rep["backing"]["filename"] == "/etc/shadow"
    assert "vmdk.parent-hint-differs" in checks_of(rep)


def test_parent_hint_disagreement(tmp_path: Path) -> None:
    desc = vmdk.descriptor(parent_hint="ok.vmdk").replace('parentFileNameHint="', 'parentFileNameHint = "')
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048, desc), "disk.vmdk"), "vmdk")
    assert rep["backing"]["filename"] == "ok.vmdk"
    assert {r["role"] for r in rep["references"]} == {"backing file", "backing file (as qemu reads it)"}
    assert "malformed" in finding_ids(rep)


@pytest.mark.parametrize("length", range(81))
def test_truncated_kdmv_header(tmp_path: Path, length: int) -> None:
    rep = inspect_file(write(tmp_path, vmdk.sparse(2048)[:length], "disk.vmdk"), "vmdk")
    assert_no_parser_error(rep)
    if 4 <= length < parser.KDMV_HEADER_LEN:
        assert "vmdk.header-truncated" in checks_of(rep)


def test_sparse_header_checks(tmp_path: Path) -> None:
    data = vmdk.sparse(2048, version=4, gtes=4096, grain=0x400000, newline=b"\n \n\n", compression=9, unclean=1)
    rep = inspect_file(write(tmp_path, data, "disk.vmdk"), "vmdk")
    assert sorted(checks_of(rep)) == ["vmdk.grain-size", "vmdk.gtes-per-gt", "vmdk.newline-check"]
    unknown = [f["offset"] for f in rep["findings"] if f["id"] == "unknown-features"]
    assert unknown == [parser.KDMV_LAYOUT.offset_of("version"), parser.KDMV_LAYOUT.offset_of("compression")]
    assert rep["dirty"] and "dirty" in finding_ids(rep)


def test_cowd_child_names_its_parent(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vmdk.cowd(4096, parent="/vmfs/volumes/x/base.vmdk", unclean=1), "disk.vmdk"))
    assert rep["format"] == "vmdk" and rep["virtual_size"] == 4096 * 512
    assert rep["backing"] == {"filename": "/vmfs/volumes/x/base.vmdk", "format": "vmdk", "kind": "path"}
    assert rep["dirty"] and rep["details"]["subformat"] == "cowd"


def test_cowd_root_has_no_parent(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vmdk.cowd(4096), "disk.vmdk"))
    assert rep["backing"] is None and rep["cluster_size"] == 512
    assert "malformed" not in finding_ids(rep)
