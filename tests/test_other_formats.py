"""Parallels, ISO 9660, DMG, Bochs and cloop parsers: qemu-img as oracle, hand-built hostile images."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import misc
from tests.builders.partitions import mbr_sector
from tests.helpers import checks_of, details_of, finding_ids, inspect_bytes, inspect_file

MIB = misc.MIB
KIB = misc.KIB


@pytest.fixture
def qemu_refuses(qemu_img: str) -> Callable[[Path, str], str]:
    """``qemu_refuses(path, fmt)``: qemu-img info fails on the image; returns its error text."""

    def run(path: Path, fmt: str) -> str:
        result = subprocess.run([qemu_img, "info", "-U", "-f", fmt, str(path)], capture_output=True, text=True)
        assert result.returncode != 0, result.stdout
        return result.stderr

    return run


# --- oracle: what qemu opens, the workbench sizes the same way ----------------------------------------

HAND_BUILT = [
    ("parallels", misc.parallels()),
    ("parallels", misc.parallels(ext=False, disk_size=3 * MIB + 512, cluster=63 * 512)),
    ("bochs", misc.bochs()),
    ("bochs", misc.bochs(version=0x00010000, disk_size=5 * MIB)),
    ("cloop", misc.cloop()),
    ("dmg", misc.dmg(sectors=12345)),
]


@pytest.mark.qemu
@pytest.mark.parametrize(("fmt", "data"), HAND_BUILT, ids=[f"{fmt}-{n}" for n, (fmt, _) in enumerate(HAND_BUILT)])
def test_hand_built_matches_qemu_img(tmp_path: Path, qemu_info, fmt: str, data: bytes) -> None:
    rep = inspect_bytes(tmp_path, data, fmt, f"image.{fmt}")
    oracle = qemu_info(tmp_path / f"image.{fmt}", fmt)
    assert (rep["format"], rep["virtual_size"]) == (oracle["format"], oracle["virtual-size"])
    assert finding_ids(rep) == {"unencrypted"}


@pytest.mark.qemu
def test_parallels_from_qemu_img(qemu_create, qemu_info) -> None:
    path = qemu_create("disk.hds", "parallels", "64M")
    rep = inspect_file(path, "parallels")
    assert (rep["format"], rep["virtual_size"]) == ("parallels", qemu_info(path, "parallels")["virtual-size"])
    assert rep["cluster_size"] == MIB  # qemu's default; qemu-img info does not print it for parallels
    assert rep["details"]["extended"] is True
    assert finding_ids(rep) == {"unencrypted"}


@pytest.mark.qemu
def test_iso_is_raw_to_qemu(tmp_path: Path, qemu_info) -> None:
    rep = inspect_bytes(tmp_path, misc.iso(el_torito=True, joliet=True, udf=True), "raw")
    assert rep["format"] == "iso"
    assert rep["virtual_size"] == rep["file_size"] == qemu_info(tmp_path / "image", "raw")["virtual-size"]
    assert finding_ids(rep) == {"unencrypted"}  # declaring raw for an ISO is no mismatch
    details = rep["details"]
    assert details["el_torito"] == {"catalog_sector": 24, "platform_id": 0, "bootable": True, "load_rba": 25}
    assert (details["joliet_level"], details["udf"], details["volume_id"]) == (
        3,
        ["BEA01", "NSR02", "TEA01"],
        "WORKBENCH",
    )


# --- ISO polyglots and oddities -------------------------------------------------------------------


def qcow2_header() -> bytes:
    """The start of a qcow2 v2 image whose backing file is a host path: what a guest can write at offset 0."""
    name = b"/etc/shadow"
    return struct.pack(">4sIQIIQIIQQIIQ", b"QFI\xfb", 2, 72, len(name), 16, 1 << 30, 0, 0, 0, 0, 0, 0, 0) + name


def test_iso_with_qcow2_in_system_area_is_ambiguous(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, misc.iso(system_area=qcow2_header()), "iso")
    assert rep["format"] == "iso"
    assert {"iso", "qcow2"} <= set(rep["format_matches"])
    ambiguous = [f for f in rep["findings"] if f["id"] == "format-ambiguous"]
    assert [f["severity"] for f in ambiguous] == ["critical"]
    assert "iso" in ambiguous[0]["detail"] and "qcow2" in ambiguous[0]["detail"]


def test_hybrid_iso_with_mbr_is_only_a_warning(tmp_path: Path) -> None:
    image = misc.iso(el_torito=True, system_area=mbr_sector([(0x80, 0x17, 64, 26 * 4 - 64)]))
    rep = inspect_bytes(tmp_path, image, "iso")
    assert rep["format"] == "iso"
    assert "mbr" in rep["format_matches"]
    assert [f["severity"] for f in rep["findings"] if f["id"] == "format-ambiguous"] == ["warning"]


def test_pure_udf_is_noted(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, misc.pure_udf(), "iso")
    assert rep["format"] == "iso"
    assert rep["details"]["udf"] == ["BEA01", "NSR02", "TEA01"]
    assert rep["details"]["udf_only"] is True
    assert "malformed" not in finding_ids(rep)


def test_iso_volume_larger_than_file(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, misc.iso(blocks=1000)[: 30 * 2048], "iso")
    assert "iso.volume-past-eof" in checks_of(rep)


def test_iso_both_endian_mismatch_and_bad_boot_catalog(tmp_path: Path) -> None:
    image = bytearray(misc.iso(el_torito=True))
    struct.pack_into(">I", image, 32768 + 84, 7)  # big-endian copy of the volume size disagrees
    image[24 * 2048 + 30] = 0  # validation entry key broken
    rep = inspect_bytes(tmp_path, bytes(image), "iso")
    checks = checks_of(rep)
    assert "iso.both-endian-differ" in checks
    assert "iso.boot-validation-entry" in checks


def test_iso_boot_catalog_past_end(tmp_path: Path) -> None:
    image = bytearray(misc.iso(el_torito=True))
    struct.pack_into("<I", image, 17 * 2048 + 71, 0xFFFFFFFF)
    rep = inspect_bytes(tmp_path, bytes(image), "iso")
    assert "iso.boot-catalog-past-eof" in checks_of(rep)


# --- Parallels ------------------------------------------------------------------------------------


def test_parallels_dirty_marker(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, misc.parallels(inuse=0x746F6E59), "parallels")
    assert rep["dirty"] is True
    assert any("0x746F6E59" in d for d in details_of(rep, "dirty"))


def test_parallels_hostile_header(tmp_path: Path) -> None:
    image = bytearray(misc.parallels(ext=False, inuse=0x12345678, ext_off=1 << 40))
    struct.pack_into("<Q", image, 36, (1 << 40) | 2048)  # high bits set in a WithoutFreeSpace image
    rep = inspect_bytes(tmp_path, bytes(image), "parallels")
    checks = checks_of(rep)
    assert "parallels.sectors-high-bits" in checks
    assert "parallels.in-use-marker" in checks
    assert "parallels.extension-magic" in checks
    # qemu uses the low half only; a reader of the whole 64-bit field sees more: judged at the larger
    assert rep["details"]["candidate_sizes"]["nb_sectors, low 32 bits (qemu)"] == 2048 * 512
    assert rep["virtual_size"] == ((1 << 40) | 2048) * 512
    assert "size-disagreement" in finding_ids(rep)


def test_parallels_zero_cluster_and_short_bat(tmp_path: Path) -> None:
    image = bytearray(misc.parallels())
    struct.pack_into("<I", image, 32, 1)  # one BAT entry for a 16 MiB disk
    rep = inspect_bytes(tmp_path, bytes(image), "parallels")
    assert "parallels.bat-too-small" in checks_of(rep)
    struct.pack_into("<I", image, 28, 0)
    rep = inspect_bytes(tmp_path, bytes(image), "parallels")
    assert "parallels.cluster-size" in checks_of(rep)
    assert rep["cluster_size"] is None


# --- DMG ------------------------------------------------------------------------------------------


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("trailer", "expected"),
    [
        ({"xml_offset": 1 << 40}, "dmg.fork-placement"),
        ({"xml_length": 0}, "dmg.no-block-map"),
        ({"rsrc": (1 << 62, 1)}, "dmg.fork-placement"),
    ],
)
def test_dmg_refused_by_qemu_too(tmp_path: Path, qemu_refuses, trailer: dict, expected: str) -> None:
    rep = inspect_bytes(tmp_path, misc.dmg(**trailer), "dmg", "image.dmg")
    assert expected in checks_of(rep), rep["findings"]
    qemu_refuses(tmp_path / "image.dmg", "dmg")


def test_dmg_negative_sector_count_and_bad_header(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, misc.dmg(sectors=1 << 63, header_size=4096, plist=b"MZ" * 20), "dmg")
    checks = checks_of(rep)
    assert "dmg.sector-count-negative" in checks
    assert "dmg.trailer-size" in checks
    assert "dmg.plist-not-xml" in checks
    assert rep["virtual_size"] is None


def test_encrypted_dmg(tmp_path: Path) -> None:
    rep = inspect_bytes(tmp_path, misc.encrypted_dmg(), "dmg")
    assert rep["encrypted"] is True
    assert rep["encryption"]["method"].startswith("Apple encrypted disk image")
    assert "encrypted" in finding_ids(rep)


# --- Bochs ----------------------------------------------------------------------------------------


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (misc.bochs(catalog=3), "bochs.catalog-too-small"),
        (misc.bochs(extent=3000), "bochs.extent-size"),
        (misc.bochs(extent=16 * MIB, catalog=1), "bochs.extent-size"),
    ],
)
def test_bochs_refused_by_qemu_too(tmp_path: Path, qemu_refuses, image: bytes, expected: str) -> None:
    rep = inspect_bytes(tmp_path, image, "bochs")
    assert expected in checks_of(rep), rep["findings"]
    qemu_refuses(tmp_path / "image", "bochs")


def test_bochs_huge_catalog_and_other_subtype(tmp_path: Path) -> None:
    image = bytearray(misc.bochs(subtype=b"Undoable"))
    struct.pack_into("<I", image, 72, 0xFFFFFFFF)
    rep = inspect_bytes(tmp_path, bytes(image), "bochs")
    checks = checks_of(rep)
    assert "bochs.catalog-too-large" in checks
    assert "bochs.catalog-past-eof" in checks
    assert any("subtype 'Undoable'" in d for d in details_of(rep, "unknown-features"))


# --- cloop ----------------------------------------------------------------------------------------


@pytest.mark.qemu
def test_cloop_offsets_going_backwards(tmp_path: Path, qemu_refuses) -> None:
    rep = inspect_bytes(tmp_path, misc.cloop(n_blocks=2, offsets=[160, 100, 200]), "cloop")
    assert "cloop.offsets-decreasing" in checks_of(rep)
    qemu_refuses(tmp_path / "image", "cloop")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ((0, 4), "cloop.block-size"),
        ((1000, 4), "cloop.block-size"),
        ((64 * KIB, 0xFFFFFFFF), "cloop.offsets-too-large"),
        ((64 * KIB, 1 << 20), "cloop.offsets-past-eof"),
    ],
)
def test_cloop_hostile_header(tmp_path: Path, fields: tuple[int, int], expected: str) -> None:
    image = bytearray(misc.cloop())
    struct.pack_into(">II", image, 128, *fields)
    rep = inspect_bytes(tmp_path, bytes(image), "cloop")
    assert expected in checks_of(rep), rep["findings"]


# --- every format: truncation and mutation never break a parser, and the budget holds -------------

FORMATS = {
    "parallels": (misc.parallels(ext_off=64), [(0, 80)]),
    "iso": (misc.iso(el_torito=True, joliet=True, udf=True), [(0, 512), (32768, 900), (34816, 80), (36864, 900),
                                                               (24 * 2048, 64)]),
    "dmg": (misc.dmg(), [(4096 + 223, 512), (4096, 64)]),
    "bochs": (misc.bochs(), [(0, 96)]),
    "cloop": (misc.cloop(), [(0, 176)]),
}  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("keep", [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_truncated_images(tmp_path: Path, fmt: str, keep: float) -> None:
    data, _ = FORMATS[fmt]
    rep = inspect_bytes(tmp_path, data[: int(len(data) * keep)], fmt)
    assert rep["format"] in (fmt, "raw")
    ids = finding_ids(rep)
    assert ("malformed" in ids) if rep["format"] == fmt else ("format-mismatch" in ids)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_mutated_images_never_break_the_parser(scratch: Path, fmt: str, data: st.DataObject) -> None:
    image, ranges = FORMATS[fmt]
    offsets = st.sampled_from(ranges).flatmap(lambda r: st.integers(r[0], r[0] + r[1] - 1))
    edits = data.draw(st.lists(st.tuples(offsets, st.binary(min_size=1, max_size=8)), min_size=1, max_size=6))
    rep = inspect_bytes(scratch, bytes(misc.mutated(image, edits)), fmt)
    assert rep["format"] in rep["format_matches"] or rep["format"] == "raw"
