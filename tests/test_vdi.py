"""VDI parser: qemu-img as oracle for dynamic and static images, hand-built differencing and hostile ones."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import vdi as samples
from tests.builders.misc import mutated
from tests.helpers import checks_of, details_of, finding_ids, inspect_bytes, inspect_file

MIB = samples.MIB


def inspect_vdi_bytes(tmp_path: Path, data: bytes) -> dict:
    return inspect_bytes(tmp_path, data, "vdi", "image.vdi")


@pytest.mark.qemu
@pytest.mark.parametrize(("options", "image_type"), [((), "dynamic"), (("-o", "static=on"), "static")])
def test_matches_qemu_img(qemu_create, qemu_info, options: tuple[str, ...], image_type: str) -> None:
    path = qemu_create(f"{image_type}.vdi", "vdi", "64M" if image_type == "dynamic" else "4M", *options)
    oracle = qemu_info(path, "vdi")
    rep = inspect_file(path, "vdi")
    assert (rep["format"], rep["virtual_size"], rep["cluster_size"]) == (
        oracle["format"],
        oracle["virtual-size"],
        oracle["cluster-size"],
    )
    assert rep["details"]["image_type"] == image_type
    assert finding_ids(rep) == {"unencrypted"}
    assert rep["bytes_read"] < 4096


@pytest.mark.qemu
@pytest.mark.parametrize("image_type", [1, 2])
def test_hand_built_images_open_in_qemu(tmp_path: Path, qemu_info, image_type: int) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi(image_type=image_type, disk_size=3 * MIB + 512))
    oracle = qemu_info(tmp_path / "image.vdi", "vdi")
    assert (rep["virtual_size"], rep["cluster_size"]) == (oracle["virtual-size"], oracle["cluster-size"])
    assert finding_ids(rep) == {"unencrypted"}


@pytest.mark.qemu
def test_differencing_names_its_parent_by_uuid(tmp_path: Path, qemu_img: str) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.differencing())
    assert rep["backing"] == {"filename": samples.PARENT_UUID, "format": "vdi", "kind": "uuid"}
    assert "backing-file" in finding_ids(rep)
    roles = {ref["role"]: (ref["name"], ref["kind"]) for ref in rep["references"]}
    assert roles["parent modification uuid"] == (samples.PARENT_MODIFY_UUID, "uuid")
    assert rep["details"]["image_type"] == "differencing"
    # qemu refuses any non-null link UUID, so qemu-img never shows this parent
    refused = subprocess.run([qemu_img, "info", "-f", "vdi", str(tmp_path / "image.vdi")], capture_output=True)
    assert b"non-NULL link UUID" in refused.stderr


def test_uuids_are_little_endian_guids(tmp_path: Path) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi())
    assert rep["details"]["uuid"] == samples.IMAGE_UUID


def test_parent_modify_uuid_alone_still_names_a_parent(tmp_path: Path) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi(parent=samples.PARENT_MODIFY_UUID))
    assert rep["backing"]["filename"] == samples.PARENT_MODIFY_UUID


def test_undo_image_without_parent_uuid(tmp_path: Path) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi(image_type=3))
    assert "vdi.parent-uuid-missing" in checks_of(rep)
    assert rep["backing"] is None


def test_unknown_image_type(tmp_path: Path) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi(image_type=9))
    assert "vdi.image-type" in checks_of(rep)


def test_block_size_qemu_does_not_support(tmp_path: Path) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi(block_size=2 * MIB))
    assert any("block size 2097152: qemu opens only 1 MiB blocks" in d for d in details_of(rep, "unknown-features"))
    assert rep["virtual_size"] == 16 * MIB


def test_disk_larger_than_block_map(tmp_path: Path) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi(disk_size=1 << 40, blocks=4))
    assert "vdi.block-map-too-small" in checks_of(rep)
    assert rep["virtual_size"] == 1 << 40


def test_huge_block_count(tmp_path: Path) -> None:
    image = bytearray(samples.vdi())
    struct.pack_into("<Q", image, 368, 1 << 62)
    struct.pack_into("<II", image, 384, 0xFFFFFFFF, 0xFFFFFFFF)
    rep = inspect_vdi_bytes(tmp_path, bytes(image))
    checks = checks_of(rep)
    assert {"vdi.blocks-too-many", "vdi.block-map-past-eof", "vdi.data-past-eof"} <= set(checks)


def test_unaligned_offsets_and_bad_sector_size(tmp_path: Path) -> None:
    image = bytearray(samples.vdi())
    struct.pack_into("<II", image, 340, 100, 513)
    struct.pack_into("<I", image, 360, 4096)
    rep = inspect_vdi_bytes(tmp_path, bytes(image))
    checks = checks_of(rep)
    assert checks.count("vdi.offset-unaligned") >= 2
    assert "vdi.sector-size" in checks
    assert "vdi.block-map-in-header" in checks


def test_version_other_than_1_1(tmp_path: Path) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.vdi(version=(0, 0)))
    assert any("VDI version 0.0" in d for d in details_of(rep, "unknown-features"))
    assert rep["virtual_size"] is None


@pytest.mark.parametrize("size", [0, 64, 68, 100, 400, 455, 456, 511, 512, 700])
def test_truncated_image(tmp_path: Path, size: int) -> None:
    rep = inspect_vdi_bytes(tmp_path, samples.differencing()[:size])
    assert rep["format"] == ("vdi" if size >= 68 else "raw")
    if size >= 68:
        assert "malformed" in finding_ids(rep)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vdi-fuzz")


BASE = samples.differencing()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(64, 511), st.binary(min_size=1, max_size=8)), min_size=1, max_size=8))
def test_mutated_header_never_breaks_the_parser(scratch: Path, edits: list[tuple[int, bytes]]) -> None:
    image = mutated(BASE, edits)
    rep = inspect_vdi_bytes(scratch, bytes(image))
    assert rep["format"] == "vdi" or image[64:68] != b"\x7f\x10\xda\xbe"
