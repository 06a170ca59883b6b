"""VHDX parser: qemu-img as oracle for what qemu creates, hand-built images for what it cannot or refuses."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import vhdx as samples
from tests.builders.misc import mutated
from tests.helpers import checks_of, details_of, finding_ids, inspect_bytes, inspect_file
from workbench.engine.formats.vhdx import BAT, METADATA, PARENT_LOCATOR, crc32c

MIB = samples.MIB
MO = samples.METADATA_OFFSET
UNKNOWN = "11111111-2222-4333-8444-555555555555"


def inspect_vhdx_bytes(tmp_path: Path, data: bytes, name: str = "image.vhdx") -> dict:
    return inspect_bytes(tmp_path, data, "vhdx", name)


def bitwise_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_crc32c_known_vector() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the Castagnoli check value


@given(st.lists(st.tuples(st.integers(0, 299), st.integers(1, 255)), max_size=4), st.integers(0, 300))
def test_crc32c_zero_run_shortcut_matches_bitwise(marks: list[tuple[int, int]], size: int) -> None:
    data = bytearray(size)
    for offset, value in marks:
        if offset < size:
            data[offset] = value
    assert crc32c(bytes(data)) == bitwise_crc32c(bytes(data))


@pytest.mark.qemu
@pytest.mark.parametrize(("options", "subformat"), [((), "dynamic"), (("-o", "subformat=fixed"), "fixed")])
def test_matches_qemu_img(qemu_create, qemu_info, options: tuple[str, ...], subformat: str) -> None:
    path = qemu_create(f"{subformat}.vhdx", "vhdx", "64M" if subformat == "dynamic" else "8M", *options)
    oracle = qemu_info(path, "vhdx")
    rep = inspect_file(path, "vhdx")
    assert (rep["format"], rep["virtual_size"], rep["cluster_size"]) == (
        oracle["format"],
        oracle["virtual-size"],
        oracle["cluster-size"],
    )
    assert rep["details"]["subformat"] == subformat
    assert rep["dirty"] is oracle["dirty-flag"] is False
    assert finding_ids(rep) == {"unencrypted"}
    assert rep["bytes_read"] < 200_000


@pytest.mark.qemu
@pytest.mark.parametrize("fixed", [False, True])
def test_hand_built_images_open_in_qemu(tmp_path: Path, qemu_info, fixed: bool) -> None:
    """qemu checks every CRC-32C the builder (and so the parser) computes."""
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(fixed=fixed, virtual_size=32 * MIB, block_size=2 * MIB))
    oracle = qemu_info(tmp_path / "image.vhdx", "vhdx")
    assert (rep["virtual_size"], rep["cluster_size"]) == (oracle["virtual-size"], oracle["cluster-size"])
    assert finding_ids(rep) == {"unencrypted"}


@pytest.mark.qemu
def test_differencing_reports_every_parent_path(tmp_path: Path, qemu_img: str) -> None:
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(parent=samples.HOST_PATHS))
    assert rep["backing"] == {"filename": "..\\..\\..\\..\\etc\\shadow", "format": "vhdx", "kind": "path"}
    assert "backing-file" in finding_ids(rep)
    locators = {ref["key"]: ref["name"] for ref in rep["references"] if ref["role"] == "parent locator"}
    assert locators == {key: value for key, value in samples.HOST_PATHS if key != "parent_linkage"}
    assert rep["details"]["parent_linkage"] == samples.PARENT_LINKAGE
    assert rep["details"]["subformat"] == "differencing"
    # qemu cannot open differencing VHDX at all, so it never reports these parents: the workbench must.
    refused = subprocess.run([qemu_img, "info", "-f", "vhdx", str(tmp_path / "image.vhdx")], capture_output=True)
    assert refused.returncode != 0


def test_backing_prefers_relative_then_absolute(tmp_path: Path) -> None:
    pairs = [("parent_linkage", samples.PARENT_LINKAGE), ("volume_path", "\\\\?\\Volume{x}\\p.vhdx"),
             ("absolute_win32_path", "D:\\p.vhdx")]  # fmt: skip
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(parent=pairs))
    assert rep["backing"]["filename"] == "D:\\p.vhdx"


def test_network_parent_path_is_flagged(tmp_path: Path) -> None:
    pairs = [("parent_linkage", samples.PARENT_LINKAGE), ("relative_path", "http://evil.example/p.vhdx")]
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(parent=pairs))
    assert {"backing-file", "backing-network"} <= finding_ids(rep)


def test_has_parent_without_locator_is_malformed(tmp_path: Path) -> None:
    items = samples.standard_items(virtual_size=16 * MIB, block_size=MIB, fixed=False, has_parent=True)
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(items=items))
    assert "vhdx.parent-without-locator" in checks_of(rep)
    assert rep["backing"] is None


def test_locator_with_hostile_counts_and_offsets(tmp_path: Path) -> None:
    locator = bytearray(samples.parent_locator(samples.HOST_PATHS))
    struct.pack_into("<H", locator, 18, 0xFFFF)  # key/value count far beyond the item
    struct.pack_into("<I", locator, 20 + 12 + 4, 0xFFFFFFF0)  # relative_path value offset outside the item
    items = samples.standard_items(virtual_size=16 * MIB, block_size=MIB, fixed=False, has_parent=True)
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(items=[*items, (PARENT_LOCATOR, bytes(locator), 4)]))
    checks = checks_of(rep)
    assert "vhdx.locator-count" in checks
    assert "vhdx.locator-entry-range" in checks
    # the broken relative_path is skipped: the next preference names the parent
    assert rep["backing"]["filename"] == "C:\\ProgramData\\Secrets\\parent.vhdx"


def test_unknown_locator_type(tmp_path: Path) -> None:
    items = samples.standard_items(virtual_size=16 * MIB, block_size=MIB, fixed=False, has_parent=True)
    locator = samples.parent_locator(samples.HOST_PATHS, locator_type=UNKNOWN)
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(items=[*items, (PARENT_LOCATOR, locator, 4)]))
    assert any(UNKNOWN in d for d in details_of(rep, "unknown-features"))
    assert rep["backing"] is not None


def test_region_entry_count_max_u32(tmp_path: Path) -> None:
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(region_count=2**32 - 1))
    checks = checks_of(rep)
    assert "vhdx.region-count" in checks
    assert "vhdx.no-valid-region-table" in checks
    assert rep["virtual_size"] is None


def test_metadata_entry_count_huge(tmp_path: Path) -> None:
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(metadata_count=0xFFFF))
    assert "vhdx.metadata-count" in checks_of(rep)
    assert rep["virtual_size"] == 16 * MIB  # the real entries are still read, within the cap


def test_items_with_huge_lengths_and_offsets(tmp_path: Path) -> None:
    items = samples.standard_items(virtual_size=16 * MIB, block_size=MIB, fixed=False, has_parent=False)
    image = bytearray(samples.vhdx(items=items))
    struct.pack_into("<II", image, MO + 32 * 2 + 16, 0x7FFFFFFF, 0xFFFFFFFF)  # virtual disk size item
    rep = inspect_vhdx_bytes(tmp_path, bytes(image))
    checks = checks_of(rep)
    assert "vhdx.metadata-item-placement" in checks  # one finding names both problems of the item
    assert "vhdx.metadata-item-missing" in checks
    assert rep["virtual_size"] is None


def test_region_past_end_of_file_and_overlap(tmp_path: Path) -> None:
    regions = [(BAT, 1 << 40, MIB, 1), (METADATA, MO, samples.METADATA_LENGTH, 1), (UNKNOWN, MO, MIB, 0)]
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(regions=regions))
    checks = checks_of(rep)
    assert "vhdx.region-past-eof" in checks
    assert "vhdx.overlap" in checks


def test_unknown_required_region_and_item(tmp_path: Path) -> None:
    regions = [(BAT, samples.BAT_OFFSET, samples.BAT_LENGTH, 1), (METADATA, MO, samples.METADATA_LENGTH, 1),
               (UNKNOWN, 4 * MIB, MIB, 1)]  # fmt: skip
    items = samples.standard_items(virtual_size=16 * MIB, block_size=MIB, fixed=False, has_parent=False)
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(regions=regions, items=[*items, (UNKNOWN, b"x" * 8, 4)]))
    unknown = details_of(rep, "unknown-features")
    assert any(f"required region {UNKNOWN}" in d for d in unknown)
    assert any(f"required metadata item {UNKNOWN}" in d for d in unknown)


def test_bat_too_small_for_the_disk(tmp_path: Path) -> None:
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(virtual_size=1 << 40))
    assert "vhdx.bat-too-small" in checks_of(rep)


def test_bad_block_and_sector_sizes(tmp_path: Path) -> None:
    items = samples.standard_items(virtual_size=16 * MIB + 1, block_size=3 * MIB, fixed=False, has_parent=False,
                                   sector=1000)  # fmt: skip
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(items=items))
    checks = checks_of(rep)
    assert "vhdx.block-size" in checks
    assert "vhdx.sector-size" in checks
    assert rep["cluster_size"] is None


def test_broken_crc_in_current_header_uses_the_other(tmp_path: Path) -> None:
    image = bytearray(samples.vhdx())
    image[samples.HEADER_OFFSETS[1] + 8] ^= 0xFF  # header 2 (sequence 2) no longer matches its CRC
    rep = inspect_vhdx_bytes(tmp_path, bytes(image))
    assert details_of(rep, "checksum-mismatch")[0].startswith("header 2 at 131072")
    assert "malformed" not in finding_ids(rep)
    assert rep["details"]["current_header"] == 1
    status = {node["name"]: node["value"] for node in rep["fields"] if node["name"].startswith("header")}
    assert status == {"header 1": "current", "header 2": "invalid"}
    assert rep["virtual_size"] == 16 * MIB


def test_both_headers_broken(tmp_path: Path) -> None:
    image = bytearray(samples.vhdx())
    for offset in samples.HEADER_OFFSETS:
        image[offset + 4] ^= 0x01
    rep = inspect_vhdx_bytes(tmp_path, bytes(image))
    assert len(details_of(rep, "checksum-mismatch")) == 2
    assert "vhdx.no-valid-header" in checks_of(rep)
    assert rep["virtual_size"] is None


def test_equal_sequence_numbers_that_differ(tmp_path: Path) -> None:
    image = bytearray(samples.vhdx())
    image[samples.HEADER_OFFSETS[1] : samples.HEADER_OFFSETS[1] + 4096] = samples.header(1, log_length=2 * MIB)
    rep = inspect_vhdx_bytes(tmp_path, bytes(image))
    assert "vhdx.headers-same-sequence" in checks_of(rep)


def test_first_region_table_broken(tmp_path: Path) -> None:
    image = bytearray(samples.vhdx())
    image[samples.REGION_OFFSETS[0] + 100] = 0x42
    rep = inspect_vhdx_bytes(tmp_path, bytes(image))
    assert details_of(rep, "checksum-mismatch")[0].startswith("region table 1")
    assert "vhdx.region-table-1-invalid" in checks_of(rep)
    assert rep["details"]["region_table"] == 2
    assert rep["virtual_size"] == 16 * MIB


def test_log_guid_means_dirty(tmp_path: Path) -> None:
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(log_guid="9a7c5e3f-1b2d-4e6f-8a0b-c1d2e3f4a5b6"))
    assert rep["dirty"] is True
    assert "9a7c5e3f-1b2d-4e6f-8a0b-c1d2e3f4a5b6" in details_of(rep, "dirty")[0]


TRUNCATIONS = [0, 8, 300, 64 * 1024 + 40, 128 * 1024 + 4000, 200 * 1024, 256 * 1024 + 8, MIB, 2 * MIB + 100,
               MO + 16, MO + 64 * 1024 + 4, MO + 64 * 1024 + 30]  # fmt: skip


@pytest.mark.parametrize("size", TRUNCATIONS)
def test_truncated_image(tmp_path: Path, size: int) -> None:
    rep = inspect_vhdx_bytes(tmp_path, samples.vhdx(parent=samples.HOST_PATHS)[:size])
    assert rep["format"] == ("vhdx" if size >= 8 else "raw")
    if size >= 8:
        assert "malformed" in finding_ids(rep)


# Byte ranges worth mutating: file identifier, both headers, both region tables, metadata table and items.
FUZZ_RANGES = [(0, 520), (64 * 1024, 80), (128 * 1024, 80), (192 * 1024, 80), (256 * 1024, 80), (MO, 32 * 7),
               (MO + 64 * 1024, 600)]  # fmt: skip
BASE = samples.vhdx(parent=samples.HOST_PATHS)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vhdx-fuzz")


edits = st.lists(
    st.tuples(
        st.sampled_from(FUZZ_RANGES).flatmap(lambda r: st.integers(r[0], r[0] + r[1] - 1)),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=100, deadline=None)
@given(changes=edits, fix=st.booleans())
def test_mutated_headers_never_break_the_parser(scratch: Path, changes: list[tuple[int, bytes]], fix: bool) -> None:
    image = mutated(BASE, changes)
    if fix:  # keep the checksums valid so the mutation reaches the region table and metadata
        samples.fix_checksums(image)
    rep = inspect_vhdx_bytes(scratch, bytes(image))
    assert rep["format"] == "vhdx" or not image.startswith(b"vhdxfile")
