"""qcow and qcow2: cross-checked with qemu-img, then hostile images built by hand."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import qcow2 as build
from tests.helpers import assert_no_parser_error, checks_of, details_of, finding_ids, inspect_file, write
from workbench.engine.inspection import MAX_LIST
from workbench.engine.reader import DEFAULT_BUDGET

SECRET = ["--object", "secret,id=sec0,data=abc"]


def assert_clean(rep: dict[str, Any]) -> None:
    assert_no_parser_error(rep)
    assert "malformed" not in finding_ids(rep), details_of(rep, "malformed")


def assert_matches_qemu(rep: dict[str, Any], qemu: dict[str, Any]) -> None:
    """The fields qemu-img info and the engine both report, compared one by one."""
    assert_clean(rep)
    assert rep["format"] == qemu["format"]
    assert rep["virtual_size"] == qemu["virtual-size"]
    assert rep["cluster_size"] == qemu.get("cluster-size")
    assert rep["encrypted"] == qemu.get("encrypted", False)
    assert rep["dirty"] == qemu.get("dirty-flag", False)
    backing = rep["backing"] or {}
    assert backing.get("filename") == qemu.get("backing-filename")
    assert backing.get("format") == qemu.get("backing-filename-format")
    specific = qemu.get("format-specific", {}).get("data")
    if qemu["format"] != "qcow2" or specific is None:
        return
    details = rep["details"]
    assert details["compat"] == specific["compat"]
    assert details["refcount_bits"] == specific["refcount-bits"]
    assert details["compression_type"] == specific["compression-type"]
    assert details["lazy_refcounts"] == specific.get("lazy-refcounts", False)
    assert details["extended_l2"] == specific.get("extended-l2", False)
    assert rep["corrupt"] == specific.get("corrupt", False)
    assert details["data_file_raw"] == specific.get("data-file-raw", False)
    assert details["bitmaps"] == len(specific.get("bitmaps", []))
    assert (rep["data_file"] or {}).get("filename") == specific.get("data-file")
    assert (rep["encryption"] or {}).get("method") == specific.get("encrypt", {}).get("format")


# --- oracle: images made by qemu-img -------------------------------------------------------------------------


@pytest.mark.qemu
@pytest.mark.parametrize(
    "options",
    [
        "compat=0.10",
        "compat=1.1",
        "lazy_refcounts=on",
        "extended_l2=on,compression_type=zstd",
        "cluster_size=512",
        "cluster_size=2M",
        "refcount_bits=1",
        "refcount_bits=64",
        "preallocation=metadata",
    ],
)
def test_qcow2_options_match_qemu(qemu_create: Callable[..., Path], qemu_info: Callable, options: str) -> None:
    path = qemu_create("img.qcow2", "qcow2", "3G", "-o", options)
    assert_matches_qemu(inspect_file(path, "qcow2"), qemu_info(path, "qcow2"))


@pytest.mark.qemu
def test_qcow_v1_matches_qemu(qemu_create: Callable[..., Path], qemu_info: Callable) -> None:
    path = qemu_create("img.qcow", "qcow", "100M")
    rep = inspect_file(path, "qcow")
    assert_matches_qemu(rep, qemu_info(path, "qcow"))
    assert rep["details"]["version"] == 1


@pytest.mark.qemu
def test_qcow_v1_backing_and_aes_match_qemu(qemu_create: Callable[..., Path], qemu_info: Callable) -> None:
    backed = qemu_create("backed.qcow", "qcow", "64M", "-u", "-b", "/srv/base.raw", "-F", "raw")
    rep = inspect_file(backed, "qcow")
    assert_matches_qemu(rep, qemu_info(backed, "qcow"))
    assert {"backing-file", "backing-format-unspecified"} <= finding_ids(rep)  # qcow v1 cannot record it
    aes = qemu_create("aes.qcow", "qcow", "64M", *SECRET, "-o", "encrypt.format=aes,encrypt.key-secret=sec0")
    rep = inspect_file(aes, "qcow")
    assert_matches_qemu(rep, qemu_info(aes, "qcow"))
    assert rep["encryption"]["method"] == "aes"
    assert "weak-encryption" in finding_ids(rep)


@pytest.mark.qemu
def test_qcow2_aes_matches_qemu(qemu_create: Callable[..., Path], qemu_info: Callable) -> None:
    # qemu-img 7.2 still creates AES qcow2 images; only system emulators refuse to open them.
    path = qemu_create("aes.qcow2", "qcow2", "64M", *SECRET, "-o", "encrypt.format=aes,encrypt.key-secret=sec0")
    rep = inspect_file(path, "qcow2")
    assert_matches_qemu(rep, qemu_info(path, "qcow2"))
    assert {"encrypted", "weak-encryption"} <= finding_ids(rep)


@pytest.mark.qemu
def test_qcow2_luks_matches_qemu(qemu_create: Callable[..., Path], qemu_info: Callable) -> None:
    options = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    path = qemu_create("luks.qcow2", "qcow2", "64M", *SECRET, "-o", options)
    rep, qemu = inspect_file(path, "qcow2"), qemu_info(path, "qcow2")
    assert_matches_qemu(rep, qemu)
    encrypt, encryption = qemu["format-specific"]["data"]["encrypt"], rep["encryption"]
    assert encrypt["cipher-alg"].startswith(encryption["cipher"])  # aes-256 from cipher aes and a 64-byte key
    assert encryption["cipher_mode"] == f"{encrypt['cipher-mode']}-{encrypt['ivgen-alg']}"
    assert encryption["hash"] == encrypt["hash-alg"]
    assert encryption["header_offset"] % 65536 == 0 and encryption["header_length"] > 0
    assert "weak-encryption" not in finding_ids(rep)


@pytest.mark.qemu
def test_luks_qcow2_cut_inside_its_encryption_extension(qemu_create: Callable[..., Path], tmp_path: Path) -> None:
    """Found by the fuzzer: the extension's 16 bytes run past the end of the file; qemu reads zeros there."""
    options = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    data = qemu_create("luks.qcow2", "qcow2", "64M", *SECRET, "-o", options).read_bytes()[:120]
    rep = inspect_file(write(tmp_path, data, "cut.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    assert rep["encrypted"] is True


@pytest.mark.qemu
@pytest.mark.parametrize("raw", [False, True])
def test_qcow2_external_data_file_matches_qemu(
    qemu_create: Callable[..., Path], qemu_info: Callable, raw: bool
) -> None:
    options = "data_file=guest-data.raw" + (",data_file_raw=on" if raw else "")
    path = qemu_create("img.qcow2", "qcow2", "64M", "-o", options)
    rep = inspect_file(path, "qcow2")
    assert_matches_qemu(rep, qemu_info(path, "qcow2"))
    assert rep["data_file"] == {"filename": "guest-data.raw", "kind": "path", "raw": raw}
    assert "external-data-file" in finding_ids(rep)
    assert {"role": "data file", "name": "guest-data.raw", "kind": "path", "raw": raw} in rep["references"]


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("backing", "kind"),
    [
        ("/var/lib/images/base.raw", "path"),
        ("base.raw", "path"),
        ("/srv/imágenes/базовый.raw", "path"),
        ("nbd://192.0.2.1:10809/export", "network"),
        ('json:{"driver": "raw", "file": {"driver": "file", "filename": "/etc/passwd"}}', "pseudo-protocol"),
    ],
)
def test_qcow2_backing_matches_qemu(
    qemu_create: Callable[..., Path], qemu_info: Callable, backing: str, kind: str
) -> None:
    path = qemu_create("img.qcow2", "qcow2", "64M", "-u", "-b", backing, "-F", "raw")
    rep = inspect_file(path, "qcow2")
    assert_matches_qemu(rep, qemu_info(path, "qcow2"))
    assert rep["backing"] == {"filename": backing, "format": "raw", "kind": kind}
    assert ("backing-network" in finding_ids(rep)) == (kind != "path")
    assert "backing-file" in finding_ids(rep)


@pytest.mark.qemu
def test_qcow2_snapshots_match_qemu(qemu_create: Callable[..., Path], qemu_img: str, qemu_info: Callable) -> None:
    path = qemu_create("img.qcow2", "qcow2", "64M")
    for name in ("before upgrade", "after"):
        subprocess.run([qemu_img, "snapshot", "-c", name, str(path)], check=True)
    rep, qemu = inspect_file(path, "qcow2"), qemu_info(path, "qcow2")
    assert_matches_qemu(rep, qemu)
    keys = ("id", "name", "date_sec", "date_nsec", "vm_state_size", "icount")
    ours = [(*(s[key] for key in keys), s["vm_clock_nsec"]) for s in rep["snapshots"]]
    theirs = [
        (*(s[key.replace("_", "-")] for key in keys), s["vm-clock-sec"] * 10**9 + s["vm-clock-nsec"])
        for s in qemu["snapshots"]
    ]
    assert ours == theirs
    assert all(s["virtual_size"] == 64 << 20 for s in rep["snapshots"])
    assert "snapshots" in finding_ids(rep)


@pytest.mark.qemu
def test_qcow2_bitmaps_match_qemu(qemu_create: Callable[..., Path], qemu_img: str, qemu_info: Callable) -> None:
    path = qemu_create("img.qcow2", "qcow2", "64M")
    for name in ("b0", "b1"):
        subprocess.run([qemu_img, "bitmap", "--add", str(path), name], check=True)
    rep = inspect_file(path, "qcow2")
    assert_matches_qemu(rep, qemu_info(path, "qcow2"))
    assert rep["details"]["bitmaps"] == 2
    assert "bitmaps" in rep["details"]["autoclear_features"]


@pytest.mark.qemu
def test_qcow2_left_dirty_matches_qemu(qemu_create: Callable[..., Path], qemu_info: Callable) -> None:
    path = qemu_create("img.qcow2", "qcow2", "64M", "-o", "lazy_refcounts=on")
    # qemu-io marks a lazy-refcount image dirty on its first write; killing it leaves the bit set.
    subprocess.run(["qemu-io", "-c", "write 0 512", "-c", "sigraise 9", str(path)], capture_output=True)
    rep = inspect_file(path, "qcow2")
    assert_matches_qemu(rep, qemu_info(path, "qcow2"))
    assert rep["dirty"] and "dirty" in finding_ids(rep)


# --- oracle: the builder's images read by qemu-img -----------------------------------------------------------

BUILT = {
    "clean": lambda: build.qcow2(64 << 20),
    "version 2": lambda: build.qcow2(64 << 20, version=2),
    "host backing": lambda: build.qcow2(1 << 30, backing="/etc/passwd", backing_format="raw"),
    "claims 2 TiB": lambda: build.qcow2(2 << 40),
    "aes": lambda: build.qcow2(1 << 30, crypt_method=build.CRYPT_AES),
    "zstd, extended L2, lazy": lambda: build.qcow2(
        64 << 20,
        incompatible=build.INCOMPAT_COMPRESSION | build.INCOMPAT_EXTENDED_L2,
        compatible=build.COMPAT_LAZY_REFCOUNTS,
        compression_type=1,
    ),
    "512-byte clusters": lambda: build.qcow2(1 << 20, cluster_bits=9, feature_names=False),
    "1-bit refcounts": lambda: build.qcow2(64 << 20, refcount_order=0),
    "dirty": lambda: build.qcow2(64 << 20, incompatible=build.INCOMPAT_DIRTY),
    "corrupt": lambda: build.qcow2(64 << 20, incompatible=build.INCOMPAT_CORRUPT),
    "snapshots": lambda: build.qcow2(
        64 << 20, snapshots=[build.snapshot_entry("1", "first", date_sec=1_700_000_000, disk_size=64 << 20)]
    ),
}


@pytest.mark.qemu
@pytest.mark.parametrize("variant", sorted(BUILT))
def test_builder_images_match_qemu(tmp_path: Path, qemu_info: Callable, variant: str) -> None:
    path = write(tmp_path, BUILT[variant](), "built.qcow2")
    assert_matches_qemu(inspect_file(path, "qcow2"), qemu_info(path, "qcow2"))


@pytest.mark.qemu
def test_builder_clean_image_passes_qemu_check(tmp_path: Path, qemu_img: str) -> None:
    write(tmp_path, bytes(4096), "base.raw")  # qemu-img check opens the backing file
    path = write(tmp_path, build.qcow2(64 << 20, backing="base.raw", backing_format="raw"), "built.qcow2")
    out = subprocess.run([qemu_img, "check", "-U", "-f", "qcow2", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and "No errors were found" in out.stdout


@pytest.mark.qemu
def test_builder_qcow_v1_matches_qemu(tmp_path: Path, qemu_info: Callable) -> None:
    path = write(tmp_path, build.qcow1(64 << 20, backing="base.raw"), "built.qcow")
    assert_matches_qemu(inspect_file(path, "qcow"), qemu_info(path, "qcow"))


def test_demo_images_say_what_they_show(tmp_path: Path) -> None:
    expected = {
        "clean.qcow2": set(),
        "backing-host-file.qcow2": {"backing-file"},
        "guest-raw-disk.img": {"backing-file", "backing-format-unspecified", "format-mismatch"},
        "claims-16TiB.qcow2": set(),
        "aes-encrypted.qcow2": {"encrypted", "weak-encryption"},
    }
    for name, declared, data in build.demo_images():
        rep = inspect_file(write(tmp_path, data, name), declared)
        assert_clean(rep)
        assert expected[name] <= finding_ids(rep), name


# --- hostile images ----------------------------------------------------------------------------------------


def test_raw_disk_carrying_a_qcow2_header(tmp_path: Path) -> None:
    guest = build.qcow2(8 << 30, backing="/etc/shadow").ljust(1 << 20, b"\0")
    rep = inspect_file(write(tmp_path, guest, "guest.img"), "raw")
    assert rep["format"] == "qcow2" and rep["format_matches"] == ["qcow2"]
    assert {"format-mismatch", "backing-file", "backing-format-unspecified"} <= finding_ids(rep)
    assert rep["backing"] == {"filename": "/etc/shadow", "format": None, "kind": "path"}


def test_declared_qcow_but_bytes_say_qcow2(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, build.qcow2(1 << 20), "img"), "qcow")
    assert rep["format"] == "qcow2" and "format-mismatch" in finding_ids(rep)


@pytest.mark.parametrize("bit", range(64))
def test_each_incompatible_bit(tmp_path: Path, bit: int) -> None:
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, incompatible=1 << bit), "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    ids = finding_ids(rep)
    assert ("unknown-features" in ids) == (bit >= 5)  # extended L2 (bit 4) is a known feature
    assert rep["dirty"] == (bit == 0) and ("dirty" in ids) == (bit == 0)
    assert rep["corrupt"] == (bit == 1) and ("corrupt" in ids) == (bit == 1)
    assert ("external-data-file" in ids) == (bit == 2)
    assert ("malformed" in ids) == (bit == 3)  # compression type bit with the zlib type
    assert rep["details"]["extended_l2"] == (bit == 4)
    if bit == 2:
        assert rep["data_file"] == {"filename": None, "kind": None, "raw": False}


def test_unknown_incompatible_bit_named_from_the_feature_table(tmp_path: Path) -> None:
    names = (*build.QEMU_FEATURE_NAMES, (0, 9, "frobnicated clusters"))
    data = build.qcow2(
        64 << 20,
        incompatible=1 << 9 | 1 << 40,
        feature_names=False,
        extensions=[(build.EXT_FEATURE_TABLE, build.feature_table(names))],
    )
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    (detail,) = details_of(rep, "unknown-features")
    assert "0x10000000200" in detail and "frobnicated clusters" in detail and "bit 40" in detail
    assert {"type": "incompatible", "bit": 9, "name": "frobnicated clusters"} in rep["details"]["feature_names"]


def test_unknown_compatible_and_autoclear_bits_are_notes(tmp_path: Path) -> None:
    data = build.qcow2(64 << 20, compatible=1 << 7, autoclear=1 << 5)
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    notes = [f for f in rep["findings"] if f["id"] == "unknown-features"]
    assert len(notes) == 2 and all(f["severity"] == "info" for f in notes)
    assert_clean(rep)


def test_version_2_has_no_feature_bits(tmp_path: Path) -> None:
    data = bytearray(build.qcow2(64 << 20, version=2, feature_names=False))
    data[72:80] = struct.pack(">Q", 3)  # v3's dirty and corrupt bits; in v2 this is the extension area
    rep = inspect_file(write(tmp_path, bytes(data), "img.qcow2"), "qcow2")
    assert not rep["dirty"] and not rep["corrupt"]
    assert {"dirty", "corrupt"}.isdisjoint(finding_ids(rep))
    assert rep["details"]["compat"] == "0.10"
    assert_clean(rep)


def test_huge_virtual_size(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, build.qcow2(2**63 - 1, l1_size=1), "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    assert rep["virtual_size"] == 2**63 - 1 and rep["size_ratio"] > 10**12
    assert "qcow2.size-too-large" in checks_of(rep)


def test_huge_snapshot_count_stays_in_budget(tmp_path: Path) -> None:
    entry = build.snapshot_entry("1", "s" * 200)
    data = build.qcow2(64 << 20, snapshots=[entry] * 2000, nb_snapshots=2**31)
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    assert rep["bytes_read"] <= 1 << 20
    assert len(rep["snapshots"]) == MAX_LIST
    assert "qcow2.snapshot-count" in checks_of(rep)
    # past qemu's own limit the image is refused; below it every entry in the file is walked
    table = next(f["offset"] for f in rep["fields"] if f["name"] == "snapshot table")
    cut = [f for f in rep["findings"] if f.get("check") == "qcow2.snapshot-past-eof"]
    assert [f["offset"] for f in cut] == [table + 2000 * len(entry)]  # snapshot 2000 starts there


def test_snapshot_entries_cut_by_end_of_file(tmp_path: Path) -> None:
    entry = build.snapshot_entry("7", "nightly")
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, snapshots=[entry])[:-10], "img.qcow2"), "qcow2")
    assert rep["snapshots"] == []
    assert checks_of(rep) == ["qcow2.snapshot-past-eof"]


def test_snapshot_extra_data_over_qemu_limit(tmp_path: Path) -> None:
    entry = build.snapshot_entry("1", "x", extra=bytes(2048))
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, snapshots=[entry]), "img.qcow2"), "qcow2")
    assert "qcow2.snapshot-extra-too-large" in checks_of(rep)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_truncated_header_at_every_length(tmp_path: Path, version: int) -> None:
    image = build.qcow1(64 << 20) if version == 1 else build.qcow2(64 << 20, version=version)
    need = {1: 48, 2: 72, 3: 104}[version]
    path = tmp_path / "cut"
    for length in range(121):
        path.write_bytes(image[:length])
        rep = inspect_file(path)
        assert_no_parser_error(rep)
        if 4 <= length < need:
            # below 8 bytes the version is not there to read: qcow2 is assumed
            assert {"qcow.header-truncated", "qcow2.header-truncated"} & set(checks_of(rep)), length


def test_header_length_past_end_of_file(tmp_path: Path) -> None:
    data = build.qcow2(64 << 20, header_length=4096)[:2048]
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    assert "qcow2.header-length-past-eof" in checks_of(rep)


@pytest.mark.parametrize(
    ("length", "expected"), [(96, "qcow2.header-length-too-small"), (131072, "qcow2.header-length-past-cluster")]
)
def test_header_length_out_of_bounds(tmp_path: Path, length: int, expected: str) -> None:
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, header_length=length), "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    assert expected in checks_of(rep), rep["findings"]


def test_backing_name_too_long_is_still_reported(tmp_path: Path) -> None:
    name = "/" + "a" * 1999
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, backing=name), "img.qcow2"), "qcow2")
    assert "qcow2.backing-name-too-long" in checks_of(rep)
    assert rep["backing"]["filename"] == name


def test_backing_offset_past_end_of_file(tmp_path: Path) -> None:
    data = build.qcow2(64 << 20, backing="/etc/passwd", backing_offset=1 << 30)
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    checks = checks_of(rep)
    assert "qcow2.backing-name-past-eof" in checks
    assert "qcow2.backing-name-past-header-area" in checks
    assert rep["backing"] is None


def test_backing_name_outside_the_first_cluster(tmp_path: Path) -> None:
    data = bytearray(build.qcow2(64 << 20, backing_offset=70000, backing_size=11))
    data[70000:70011] = b"/etc/passwd"
    rep = inspect_file(write(tmp_path, bytes(data), "img.qcow2"), "qcow2")
    assert "qcow2.backing-name-past-header-area" in checks_of(rep)
    assert rep["backing"]["filename"] == "/etc/passwd"


def test_many_tiny_extensions_are_all_walked(tmp_path: Path) -> None:
    extensions = [(0x10000 + index, b"") for index in range(5000)]
    data = build.qcow2(64 << 20, extensions=extensions, feature_names=False, backing_format="raw")
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    assert "read-budget" not in finding_ids(rep)
    assert len(rep["details"]["unknown_extensions"]) == 64
    assert rep["bytes_read"] < 64 << 10
    # the end marker after the 5000 extensions was reached: the whole area is in the tree's range
    area = next(f for f in rep["fields"] if f["name"] == "header extensions")
    assert area["size"] == 8 * 5000 + 8 + 8 + 8


def test_data_file_after_1100_empty_extensions(tmp_path: Path) -> None:
    """qemu walks extensions to the end of the first cluster, whatever their number."""
    empties = [(0x10000 + index, b"") for index in range(1100)]
    data = build.qcow2(64 << 20, extensions=[*empties, (build.EXT_DATA_FILE, b"/etc/shadow")], feature_names=False)
    data = bytearray(data)
    data[72:80] = struct.pack(">Q", build.INCOMPAT_DATA_FILE)
    rep = inspect_file(write(tmp_path, bytes(data), "img.qcow2"), "qcow2")
    assert rep["data_file"]["filename"] == "/etc/shadow"
    assert "external-data-file" in finding_ids(rep)


def test_extensions_exhausting_the_read_budget_do_not_hide_the_backing_file(tmp_path: Path) -> None:
    extensions = [(build.EXT_DATA_FILE, bytes([65 + index % 26]) * 4096) for index in range(480)]
    data = build.qcow2(64 << 20, cluster_bits=21, extensions=extensions, backing="/etc/passwd")
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    budget = [f for f in rep["findings"] if f["id"] == "read-budget" and f["detail"].startswith("header extensions")]
    assert budget and budget[0]["severity"] == "critical"
    assert "were not examined" in budget[0]["detail"]
    assert rep["backing"]["filename"] == "/etc/passwd"
    assert rep["bytes_read"] <= DEFAULT_BUDGET


def test_extension_running_past_the_extension_area(tmp_path: Path) -> None:
    area = struct.pack(">II", 0x12345678, 100_000)
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, extension_area=area), "img.qcow2"), "qcow2")
    assert checks_of(rep) == ["qcow2.extension-past-area"]


def test_duplicate_and_unknown_extensions(tmp_path: Path) -> None:
    extensions = [(0xCAFE0001, b"first"), (0xCAFE0001, b"again"), (build.EXT_BACKING_FORMAT, b"raw")]
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, extensions=extensions), "img.qcow2"), "qcow2")
    assert "qcow2.extension-duplicate" in checks_of(rep)
    assert rep["details"]["unknown_extensions"] == ["0xcafe0001", "0xcafe0001"]
    assert "backing format" in rep["details"]["header_extensions"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"l1_offset": 1 << 40}, "qcow2.l1-outside-file"),
        ({"l1_offset": 3 * 65536 + 8}, "qcow2.l1-unaligned"),
        ({"l1_size": 0, "l1_offset": 0}, "qcow2.l1-too-small"),
        ({"refcount_offset": 12345}, "qcow2.refcount-table-unaligned"),
        ({"refcount_offset": 0}, "qcow2.refcount-table-overlaps-header"),
        ({"refcount_clusters": 0}, "qcow2.refcount-table-empty"),
        ({"snapshots_offset": 100}, "qcow2.snapshot-table-unaligned"),
        ({"refcount_order": 7}, "qcow2.refcount-order-range"),
        ({"compression_type": 1}, "qcow2.compression-type-without-bit"),
        ({"compression_type": 2, "incompatible": 8}, "qcow2.compression-type-unknown"),
        ({"incompatible": 16, "cluster_bits": 12}, "qcow2.extended-l2-small-cluster"),
        ({"crypt_method": 2}, "qcow2.luks-without-crypto-extension"),
        ({"crypt_method": 9}, "qcow2.crypt-method-unknown"),
        ({"autoclear": 2}, "qcow2.raw-data-without-data-file"),
        ({"extensions": [(build.EXT_DATA_FILE, b"/dev/sda")]}, "qcow2.data-file-without-bit"),
        ({"extensions": [(build.EXT_CRYPTO, bytes(16))]}, "qcow2.crypto-extension-without-luks"),
        ({"extensions": [(build.EXT_BACKING_FORMAT, b"a-very-long-format-name")]}, "qcow2.backing-format-too-long"),
        (
            {"extensions": [(build.EXT_BITMAPS, bytes(24))], "autoclear": build.AUTOCLEAR_BITMAPS},
            "qcow2.bitmaps-extension-field",
        ),
        ({"extensions": [(build.EXT_BITMAPS, bytes(8))]}, "qcow2.bitmaps-extension-size"),
        ({"version": 4}, "qcow2.version"),
    ],
)
def test_header_values_qemu_refuses(tmp_path: Path, overrides: dict[str, Any], expected: str) -> None:
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, **overrides), "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    assert expected in checks_of(rep), rep["findings"]


@pytest.mark.parametrize("bits", [0, 8, 22, 0xFFFFFFFF])
def test_cluster_bits_out_of_range(tmp_path: Path, bits: int) -> None:
    data = bytearray(build.qcow2(64 << 20))
    data[20:24] = struct.pack(">I", bits)
    rep = inspect_file(write(tmp_path, bytes(data), "img.qcow2"), "qcow2")
    assert_no_parser_error(rep)
    assert "qcow2.cluster-bits-range" in checks_of(rep)
    assert rep["cluster_size"] is None and rep["virtual_size"] == 64 << 20


def test_l1_table_over_qemu_limit(tmp_path: Path) -> None:
    data = bytearray(build.qcow2(64 << 20))
    data[36:40] = struct.pack(">I", 1 << 23)  # l1_size: 64 MiB of L1 entries, never read
    rep = inspect_file(write(tmp_path, bytes(data), "img.qcow2"), "qcow2")
    assert "qcow2.l1-too-large" in checks_of(rep)
    assert rep["bytes_read"] < 64 << 10


def test_unknown_crypt_method_still_counts_as_encrypted(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, crypt_method=9), "img.qcow2"), "qcow2")
    assert rep["encrypted"] and rep["encryption"] == {"method": "unknown (9)"}


def test_network_data_file(tmp_path: Path) -> None:
    data = build.qcow2(64 << 20, data_file="nbd://192.0.2.1/disk", autoclear=build.AUTOCLEAR_DATA_FILE_RAW)
    rep = inspect_file(write(tmp_path, data, "img.qcow2"), "qcow2")
    assert rep["data_file"] == {"filename": "nbd://192.0.2.1/disk", "kind": "network", "raw": True}
    assert {"external-data-file", "backing-network"} <= finding_ids(rep)
    assert_clean(rep)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"cluster_bits": 17}, "qcow.cluster-bits-range"),
        ({"l2_bits": 14}, "qcow.l2-bits-range"),
        ({"crypt_method": 2}, "qcow.crypt-method-unknown"),
        ({"l1_offset": 1 << 33}, "qcow.l1-outside-file"),
        ({"backing": "b" * 1500}, "qcow.backing-name-too-long"),
        ({"backing": "base", "backing_size": 5000}, "qcow.backing-name-past-eof"),
    ],
)
def test_qcow_v1_values_qemu_refuses(tmp_path: Path, overrides: dict[str, Any], expected: str) -> None:
    rep = inspect_file(write(tmp_path, build.qcow1(64 << 20, **overrides), "img.qcow"), "qcow")
    assert_no_parser_error(rep)
    assert expected in checks_of(rep), rep["findings"]


def test_qcow_v1_tiny_size(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, build.qcow1(1), "img.qcow"), "qcow")
    assert "qcow.size-too-small" in checks_of(rep)


# --- property: any mutation of a valid header gives a report ---------------------------------------------

HEADER_FIELDS = [(4, 4), (8, 8), (16, 4), (20, 4), (24, 8), (32, 4), (36, 4), (40, 8), (48, 8), (56, 4), (60, 4)]
HEADER_FIELDS += [(64, 8), (72, 8), (80, 8), (88, 8), (96, 4), (100, 4), (104, 1), (112, 4), (116, 4)]
SEED = build.qcow2(
    64 << 20,
    backing="base.qcow2",
    backing_format="qcow2",
    extensions=[(0xABCD, b"unknown")],
    snapshots=[build.snapshot_entry("1", "snap", disk_size=64 << 20)],
)


def boundary(size: int) -> st.SearchStrategy[int]:
    top = (1 << 8 * size) - 1
    return st.sampled_from([0, 1, 2, 7, 8, 9, 21, 22, 104, 112, 65536, top >> 1, top - 1, top]).filter(
        lambda v: v <= top
    ) | st.integers(0, top)


mutation = st.one_of(
    st.sampled_from(HEADER_FIELDS).flatmap(lambda f: st.tuples(st.just(f[0]), st.just(f[1]), boundary(f[1]))),
    st.tuples(st.integers(0, 1023), st.just(1), st.integers(0, 255)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(mutation, min_size=1, max_size=6), cut=st.none() | st.integers(0, len(SEED)))
def test_mutated_headers_always_give_a_report(
    tmp_path: Path, mutations: list[tuple[int, int, int]], cut: int | None
) -> None:
    data = bytearray(SEED)
    for offset, size, value in mutations:
        data[offset : offset + size] = value.to_bytes(size, "big")
    path = write(tmp_path, bytes(data[:cut]), "mutant")
    rep = inspect_file(path)
    assert_no_parser_error(rep)
    assert rep["bytes_read"] <= DEFAULT_BUDGET
    assert rep["format"] in ("qcow", "qcow2", "raw")


def test_backing_name_that_is_not_utf8_carries_its_exact_bytes(tmp_path: Path) -> None:
    """qemu opens the stored bytes; ``name`` shows them decoded, ``name_bytes`` keeps them for comparison."""
    stored = b"/srv/FI\xfb\xff.img"
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, backing=stored), "img.qcow2"), "qcow2")
    (ref,) = rep["references"]
    assert bytes.fromhex(ref["name_bytes"]) == stored
    assert ref["name"] == stored.decode("utf-8", errors="replace")
    assert any(f["id"] == "backing-file" and f["severity"] == "critical" for f in rep["findings"])


def test_utf8_backing_name_has_no_name_bytes(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, build.qcow2(64 << 20, backing="/srv/disque-été.img"), "img.qcow2"), "qcow2")
    (ref,) = rep["references"]
    assert ref["name"] == "/srv/disque-été.img" and "name_bytes" not in ref
