"""QED: cross-checked with qemu-img, then hostile headers built by hand."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.builders import qcow2 as build
from tests.helpers import assert_no_parser_error, checks_of, finding_ids, inspect_file, write
from tests.test_qcow import assert_matches_qemu


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("options", "backing_format"),
    [
        ((), None),
        (("-o", "cluster_size=4k,table_size=16"), None),
        (("-u", "-b", "/srv/images/base.raw", "-F", "raw"), "raw"),  # stored as the "no probing" bit
        (("-u", "-b", "base.qcow2", "-F", "qcow2"), None),  # qed cannot record other formats
        (("-u", "-b", "nbd://192.0.2.7/base", "-F", "raw"), "raw"),
    ],
)
def test_qed_matches_qemu(
    qemu_create: Callable[..., Path], qemu_info: Callable, options: tuple[str, ...], backing_format: str | None
) -> None:
    path = qemu_create("img.qed", "qed", "1G", *options)
    rep = inspect_file(path, "qed")
    assert_matches_qemu(rep, qemu_info(path, "qed"))
    if rep["backing"]:
        assert rep["backing"]["format"] == backing_format
        assert ("backing-format-unspecified" in finding_ids(rep)) == (backing_format is None)


@pytest.mark.qemu
@pytest.mark.parametrize(
    "image",
    [
        build.qed(64 << 20),
        build.qed(64 << 20, features=build.QED_NEED_CHECK),
        build.qed(64 << 20, backing="/etc/passwd", backing_raw=True),
        build.qed(1 << 40, cluster_size=1 << 20, table_size=2),  # qemu 7.2 cannot open table_size=1
    ],
    ids=["clean", "needs check", "host backing", "1 TiB"],
)
def test_builder_qed_matches_qemu(tmp_path: Path, qemu_info: Callable, image: bytes) -> None:
    path = write(tmp_path, image, "built.qed")
    rep, qemu = inspect_file(path, "qed"), qemu_info(path, "qed")
    if image[16] & build.QED_NEED_CHECK:  # qemu-img 7.2 shows dirty-flag false here; the header says dirty
        qemu["dirty-flag"] = True
    assert_matches_qemu(rep, qemu)


def test_needs_check_is_dirty(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, build.qed(64 << 20, features=build.QED_NEED_CHECK), "img.qed"), "qed")
    assert rep["dirty"] and "dirty" in finding_ids(rep)
    assert rep["details"]["features"] == ["needs check"]


def test_truncated_header_at_every_length(tmp_path: Path) -> None:
    image = build.qed(64 << 20, backing="base.raw")
    path = tmp_path / "cut"
    for length in range(100):
        path.write_bytes(image[:length])
        rep = inspect_file(path)
        assert_no_parser_error(rep)
        if 4 <= length < 64:
            assert rep["format"] == "qed"
            assert "qed.header-truncated" in checks_of(rep), length


def test_unknown_feature_bits(tmp_path: Path) -> None:
    data = build.qed(64 << 20, features=1 << 3 | 1 << 63, compat_features=1, autoclear_features=4)
    rep = inspect_file(write(tmp_path, data, "img.qed"), "qed")
    unknown = [f for f in rep["findings"] if f["id"] == "unknown-features"]
    assert [f["severity"] for f in unknown] == ["critical", "info", "info"]
    assert "0x8000000000000008" in unknown[0]["detail"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"cluster_size": 2048}, "qed.cluster-size"),
        ({"cluster_size": 65536 + 512}, "qed.cluster-size"),
        ({"table_size": 3}, "qed.table-size"),
        ({"table_size": 32}, "qed.table-size"),
        ({"header_size": 0}, "qed.header-size-zero"),
        ({"l1_offset": 1 << 40}, "qed.l1-outside-file"),
        ({"l1_offset": 65536 + 4096}, "qed.l1-unaligned"),
        ({"header_size": 2, "l1_offset": 65536}, "qed.l1-inside-header"),
        ({"backing": "x" * 5000}, "qed.backing-name-too-long"),
        ({"backing": "base.raw", "backing_offset": 65530}, "qed.backing-name-past-header-area"),
    ],
)
def test_header_values_qemu_refuses(tmp_path: Path, overrides: dict[str, Any], expected: str) -> None:
    rep = inspect_file(write(tmp_path, build.qed(64 << 20, **overrides), "img.qed"), "qed")
    assert_no_parser_error(rep)
    assert expected in checks_of(rep), rep["findings"]


@pytest.mark.parametrize(
    ("size", "expected"), [(1000, "qed.image-size-unaligned"), (2**63, "qed.image-size-too-large")]
)
def test_image_size_qemu_refuses(tmp_path: Path, size: int, expected: str) -> None:
    rep = inspect_file(write(tmp_path, build.qed(size, table_size=1), "img.qed"), "qed")
    assert rep["virtual_size"] == size
    assert expected in checks_of(rep), rep["findings"]


def test_backing_name_cut_by_end_of_file(tmp_path: Path) -> None:
    data = bytearray(build.qed(64 << 20, backing="/etc/passwd"))
    data[60:64] = struct.pack("<I", 1 << 20)  # backing_filename_size
    rep = inspect_file(write(tmp_path, bytes(data[:80]), "img.qed"), "qed")
    checks = checks_of(rep)
    assert "qed.backing-name-past-eof" in checks
    assert rep["backing"]["filename"] == "/etc/passwd"


def test_backing_fields_ignored_without_the_feature_bit(tmp_path: Path) -> None:
    data = build.qed(64 << 20, backing_offset=64, backing_size=8)
    rep = inspect_file(write(tmp_path, data, "img.qed"), "qed")
    assert rep["backing"] is None and "backing-file" not in finding_ids(rep)
