"""Issue 13 for qcow, qcow2, QED, VHD, VHDX and VDI: parse like the consumer and fail closed on every cap.

The oracle tests run qemu-img under ``strace -f`` (tests/qemu_oracle.py): every path it tries to open
other than the image must be among the report's references, and such an image must be rejected.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from tests.builders import misc, vdi, vhdx, vpc
from tests.builders import qcow2 as build
from tests.helpers import finding_ids, inspect_bytes
from tests.qemu_oracle import assert_consumer_parity
from workbench.engine.formats.vhdx import PARENT_LOCATOR
from workbench.engine.inspection import path_has_protocol, reference_kind


def _with_data_file_bit(data: bytes) -> bytes:
    image = bytearray(data)
    image[72:80] = struct.pack(">Q", build.INCOMPAT_DATA_FILE)
    return bytes(image)


def _details(rep: dict[str, Any], finding_id: str) -> list[str]:
    return [f["detail"] for f in rep["findings"] if f["id"] == finding_id]


# --- protocol prefixes: qemu's path_has_protocol, not a list of schemes -----------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("fat:rw:/srv/dir", "pseudo-protocol"),
        ("blkdebug:conf:image.raw", "pseudo-protocol"),
        ("anything:at-all", "pseudo-protocol"),
        ("null-co:", "pseudo-protocol"),
        ('json:{"file.driver":"nbd"}', "pseudo-protocol"),
        ("nbd:host:10809", "network"),
        ("gluster+tcp://h/v/i", "network"),
        ("weird://host/x", "network"),
        ("file:///srv/base.qcow2", "path"),
        ("dir/with:colon", "path"),  # the slash comes first: a relative file name
        ("/abs/with:colon", "path"),
        ("C:\\images\\base.vhd", "path"),  # a drive letter: Hyper-V's and qemu-for-Windows' reading
        ("base.qcow2", "path"),
    ],
)
def test_reference_kind_follows_path_has_protocol(name: str, kind: str) -> None:
    assert reference_kind(name) == kind


def test_path_has_protocol_is_qemus_posix_rule() -> None:
    assert path_has_protocol("fat:rw:/x") and path_has_protocol("a:") and path_has_protocol("C:\\x")
    assert not path_has_protocol("./a:b") and not path_has_protocol("/a:b") and not path_has_protocol("ab")


@pytest.mark.parametrize("name", ["fat:rw:{folder}/dir", "blkdebug:conf:base.raw", "nosuch:thing", "null-co://"])
def test_protocol_backing_names_are_rejected_like_qemu_reads_them(qemu_img: str, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "case"
    (folder / "dir").mkdir(parents=True)
    name = name.format(folder=folder)
    _, report = assert_consumer_parity(qemu_img, build.qcow2(1 << 20, backing=name), "qcow2", folder)
    assert report["backing"]["kind"] in ("pseudo-protocol", "network")
    network = [f for f in report["findings"] if f["id"] == "backing-network"]
    assert network and network[0]["severity"] == "critical"


# --- qcow2 header extensions: walked to the end of the cluster, like qcow2_read_extensions -------------------


def test_data_file_after_1100_empty_extensions_matches_qemu(qemu_img: str, tmp_path: Path) -> None:
    empties = [(0x10000 + index, b"") for index in range(1100)]
    data = build.qcow2(64 << 20, extensions=[*empties, (build.EXT_DATA_FILE, b"data.raw")], feature_names=False)
    _, report = assert_consumer_parity(qemu_img, _with_data_file_bit(data), "qcow2", tmp_path / "case")
    assert report["data_file"]["filename"] == "data.raw" and report["verdict"] == "reject"


def test_every_data_file_extension_is_reported(tmp_path: Path) -> None:
    extensions = [(build.EXT_DATA_FILE, b"first.raw"), (build.EXT_DATA_FILE, b"last.raw")]
    rep = inspect_bytes(tmp_path, _with_data_file_bit(build.qcow2(1 << 20, extensions=extensions)), "qcow2")
    assert rep["data_file"]["filename"] == "last.raw"  # qemu keeps the last one
    assert {"first.raw", "last.raw"} <= {ref["name"] for ref in rep["references"]}


def test_data_file_name_without_the_feature_bit_is_still_a_reference(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, build.qcow2(1 << 20, extensions=[(build.EXT_DATA_FILE, b"/dev/sdb")]), "qcow2")
    assert rep["data_file"] is None
    assert "/dev/sdb" in {ref["name"] for ref in rep["references"]}
    assert "malformed" in finding_ids(rep)


def test_extension_cut_by_the_end_of_the_file_is_read_as_qemu_reads_it(tmp_path: Path) -> None:
    """qemu reads the bytes past the end of the file as zeros: the name stops there."""
    area = struct.pack(">II", build.EXT_DATA_FILE, 64) + b"/etc/shadow"
    head = _with_data_file_bit(build.qcow2(1 << 20, extension_area=area))[: 112 + len(area)]
    rep = inspect_bytes(tmp_path, head, "qcow2")
    assert rep["data_file"]["filename"] == "/etc/shadow"


# --- qcow2 / qcow backing names that qemu reads as empty -------------------------------------------------


@pytest.mark.parametrize(
    ("options", "after_nul"),
    [
        ({"backing": "", "backing_offset": 112 + 8, "backing_size": 0}, None),  # offset set, size 0
        ({"backing": "\0/etc/passwd"}, "/etc/passwd"),  # the name starts with a NUL
        ({"backing": "\0\0\0\0"}, None),
    ],
)
def test_backing_offset_pointing_at_an_empty_name(
    qemu_img: str, tmp_path: Path, options: dict[str, Any], after_nul: str | None
) -> None:
    data = build.qcow2(1 << 20, feature_names=False, **options)
    attempts, report = assert_consumer_parity(qemu_img, data, "qcow2", tmp_path / "case")
    assert not attempts and report["backing"] is None  # qemu opens no backing file for an empty name
    assert any("the name qemu reads is empty" in d for d in _details(report, "malformed"))
    assert report["verdict"] == "reject"
    names = {ref["name"] for ref in report["references"]}
    assert (after_nul in names) if after_nul else not names


def test_qcow1_backing_offset_pointing_at_an_empty_name(tmp_path: Path) -> None:
    data = bytearray(build.qcow1(1 << 20, backing="x"))
    data[48] = 0
    rep = inspect_bytes(tmp_path, bytes(data), "qcow")
    assert rep["backing"] is None
    assert any("the name qemu reads is empty" in d for d in _details(rep, "malformed"))


@pytest.mark.parametrize("fmt", ["qcow", "qcow2"])
def test_backing_size_without_offset(tmp_path: Path, fmt: str) -> None:
    data = build.qcow1(1 << 20, backing_size=9) if fmt == "qcow" else build.qcow2(1 << 20, backing_size=9)
    rep = inspect_bytes(tmp_path, data, fmt)
    assert any("backing file name length 9 with offset 0" in d for d in _details(rep, "malformed"))


def test_backing_format_without_backing_file(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, build.qcow2(1 << 20, backing_format="raw"), "qcow2")
    assert any("no backing file name" in d for d in _details(rep, "malformed"))


# --- caps fail closed ---------------------------------------------------------------------------------------


def test_snapshot_table_past_the_read_budget_is_critical(tmp_path: Path) -> None:
    entry = build.snapshot_entry("1", "s")  # 64 bytes: 20000 of them are more than the 1 MiB budget
    rep = inspect_bytes(tmp_path, build.qcow2(64 << 20, snapshots=[entry] * 20000), "qcow2")
    capped = [f for f in rep["findings"] if f["id"] == "read-budget" and f["detail"].startswith("snapshot table")]
    assert capped and capped[0]["severity"] == "critical" and "were not examined" in capped[0]["detail"]


# --- flags that disagree with the fields they govern -----------------------------------------------------


def test_vhdx_parent_locator_without_the_has_parent_flag(tmp_path: Path) -> None:
    items = vhdx.standard_items(virtual_size=16 << 20, block_size=1 << 20, fixed=False, has_parent=False)
    data = vhdx.vhdx(items=[*items, (PARENT_LOCATOR, vhdx.parent_locator(vhdx.HOST_PATHS), 4)])
    rep = inspect_bytes(tmp_path, data, "vhdx")
    assert rep["backing"] is None
    assert "C:\\ProgramData\\Secrets\\parent.vhdx" in {ref["name"] for ref in rep["references"]}
    flagged = [d for d in _details(rep, "malformed") if "has-parent flag is clear" in d]
    assert flagged and "relative_path" in flagged[0]


def test_vhdx_parent_locator_pairs_are_all_walked(tmp_path: Path) -> None:
    filler = [(f"k{index}", "v") for index in range(1100)]  # the parent paths come after the 1100th pair
    locator = vhdx.parent_locator([*filler, *vhdx.HOST_PATHS])
    items = vhdx.standard_items(virtual_size=16 << 20, block_size=1 << 20, fixed=False, has_parent=True)
    rep = inspect_bytes(tmp_path, vhdx.vhdx(items=[*items, (PARENT_LOCATOR, locator, 4)]), "vhdx")
    assert rep["backing"]["filename"] == "..\\..\\..\\..\\etc\\shadow"
    assert "read-budget" not in finding_ids(rep)


def test_vdi_parent_uuid_in_a_dynamic_image(tmp_path: Path) -> None:
    link = "0a1b2c3d-0000-4000-8000-000000000001"
    rep = inspect_bytes(tmp_path, vdi.vdi(image_type=1, link=link), "vdi")
    assert rep["backing"]["filename"] == link
    assert any("dynamic image with a parent UUID" in d for d in _details(rep, "malformed"))


def test_qed_backing_name_without_the_feature_bit(tmp_path: Path) -> None:
    data = bytearray(build.qed(1 << 20, backing="/etc/passwd"))
    data[16:24] = struct.pack("<Q", build.QED_BACKING_RAW)  # bit 0 cleared, bit 2 left
    rep = inspect_bytes(tmp_path, bytes(data), "qed")
    assert rep["backing"] is None
    assert "/etc/passwd" in {ref["name"] for ref in rep["references"]}
    malformed = _details(rep, "malformed")
    assert any("without feature bit 0" in d for d in malformed)
    assert any("feature bit 2 (raw backing file) without feature bit 0" in d for d in malformed)


def test_qed_backing_bit_with_an_empty_name(qemu_img: str, tmp_path: Path) -> None:
    data = build.qed(1 << 20, features=build.QED_BACKING_FILE, backing_offset=64, backing_size=0)
    attempts, report = assert_consumer_parity(qemu_img, data, "qed", tmp_path / "case")
    assert not attempts and report["backing"] is None
    assert any("the name qemu reads is empty" in d for d in _details(report, "malformed"))
    assert report["verdict"] == "reject"


def test_vhd_locator_over_the_cap_is_critical(tmp_path: Path) -> None:
    locator = vpc.Locator(b"W2ku", "C:\\" + "a" * 40000)  # 80006 bytes of UTF-16: over the 64 KiB cap
    rep = inspect_bytes(tmp_path, vpc.differencing([locator]), "vpc")
    capped = [f for f in rep["findings"] if f["id"] == "read-budget" and "parent locator 1" in f["detail"]]
    assert capped and capped[0]["severity"] == "critical"


def test_parallels_size_fields_readers_disagree_on(tmp_path: Path) -> None:
    image = bytearray(misc.parallels(ext=False))
    struct.pack_into("<Q", image, 36, (1 << 33) | 2048)
    rep = inspect_bytes(tmp_path, bytes(image), "parallels")
    assert rep["virtual_size"] == ((1 << 33) | 2048) * 512
    assert 2048 * 512 in rep["details"]["candidate_sizes"].values()


def test_extensions_tuned_to_the_budget_do_not_hide_the_backing_name(tmp_path: Path) -> None:
    """Whatever budget the extension walk leaves, the backing name was read before it."""
    name = "/srv/" + "n" * 1000
    for count in (250, 251, 252, 253):
        extensions = [(0x10000 + index, bytes(4088)) for index in range(count)]
        data = build.qcow2(64 << 20, cluster_bits=21, extensions=extensions, backing=name, feature_names=False)
        rep = inspect_bytes(tmp_path, data, "qcow2")
        assert rep["backing"]["filename"] == name
