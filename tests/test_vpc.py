"""VHD (qemu: vpc): footer, dynamic header and parent locators, checked against qemu-img."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.builders import vpc
from tests.builders.vpc import Locator
from tests.helpers import assert_no_parser_error, checks_of, details_of, finding_ids, inspect_file, write
from workbench.engine.formats import vpc as parser
from workbench.engine.formats.vpc import FOOTER


def refooter(data: bytes, **fields: bytes) -> bytes:
    """Rewrite footer fields (creator_app, current_size) in both copies and fix their checksums."""
    footer = bytearray(data[-512:])
    for name, value in fields.items():
        at = FOOTER.offset_of(name)
        footer[at : at + len(value)] = value
    at = FOOTER.offset_of("checksum")
    footer[at : at + 4] = parser.checksum(bytes(footer), at).to_bytes(4, "big")
    return bytes(footer) + data[512:-512] + bytes(footer)


@pytest.mark.qemu
@pytest.mark.parametrize("options", [(), ("-o", "force_size=on")], ids=["chs", "force_size"])
def test_dynamic_matches_qemu_img(
    options: tuple[str, ...], qemu_create: Callable[..., Path], qemu_info: Callable[[Path, str], dict[str, Any]]
) -> None:
    """qemu-img writes creator "qemu" with a CHS-rounded size, or "qem2" with the exact size (force_size)."""
    path = qemu_create("dyn.vhd", "vpc", "64M", *options)
    rep = inspect_file(path, "vpc")
    ref = qemu_info(path, "vpc")
    assert rep["format"] == ref["format"] == "vpc"
    assert rep["virtual_size"] == ref["virtual-size"]
    assert rep["cluster_size"] == ref["cluster-size"] == 2 << 20
    assert rep["details"]["disk_type"] == "dynamic"
    assert rep["details"]["size_rule"] == ("current_size" if options else "geometry")
    assert rep["backing"] is None and "backing-filename" not in ref
    assert finding_ids(rep) == {"unencrypted"}
    assert rep["bytes_read"] < 8192


@pytest.mark.qemu
def test_fixed_matches_qemu_img(qemu_img: str, qemu_create: Callable[..., Path], qemu_info: Any) -> None:
    """A fixed VHD has its only footer at the end. Read as vpc, qemu-img agrees on the size; left to
    probe, qemu-img calls it raw (its vpc probe looks at offset 0 only). The workbench finds the footer
    and names the format vpc even without a declared format."""
    path = qemu_create("fixed.vhd", "vpc", "64M", "-o", "subformat=fixed")
    rep = inspect_file(path, "vpc")
    assert rep["format"] == qemu_info(path, "vpc")["format"] == "vpc"
    assert rep["virtual_size"] == qemu_info(path, "vpc")["virtual-size"]
    assert rep["cluster_size"] is None and rep["details"]["disk_type"] == "fixed"
    assert finding_ids(rep) == {"unencrypted"}
    probed = subprocess.run([qemu_img, "info", "--output=json", str(path)], capture_output=True, text=True, check=True)
    assert json.loads(probed.stdout)["format"] == "raw"
    assert inspect_file(path)["format"] == "vpc"


@pytest.mark.qemu
@pytest.mark.parametrize(("creator", "rule"), [(b"win ", "current_size"), (b"vpc ", "geometry")])
def test_size_rule_by_creator(
    creator: bytes, rule: str, tmp_path: Path, qemu_create: Callable[..., Path], qemu_info: Any
) -> None:
    """Hyper-V sizes come from current_size, Virtual PC sizes from the geometry; qemu-img agrees on the rule,
    and the workbench judges the limit against the larger of the two."""
    made = qemu_create("made.vhd", "vpc", "64M").read_bytes()
    path = write(tmp_path, refooter(made, creator_app=creator, current_size=struct.pack(">Q", 64 << 20)), "disk.vhd")
    rep = inspect_file(path, "vpc")
    candidates = rep["details"]["candidate_sizes"]
    assert candidates[rule] == qemu_info(path, "vpc")["virtual-size"]
    assert rep["virtual_size"] == max(candidates.values()) == max(64 << 20, rep["details"]["geometry_size"])
    assert rep["details"]["size_rule"] == rule
    assert rep["details"]["current_size"] != rep["details"]["geometry_size"]
    assert "size-disagreement" in finding_ids(rep)


def test_differencing_names_every_locator(tmp_path: Path) -> None:
    locators = [
        Locator(b"W2ru", ".\\parent.vhd"),
        Locator(b"W2ku", "C:\\VMs\\parent.vhd"),
        Locator(b"MacX", "file://localhost/Users/x/parent.vhd"),
    ]
    rep = inspect_file(write(tmp_path, vpc.differencing(locators), "disk.vhd"))
    assert rep["format"] == "vpc"
    assert rep["backing"] == {"filename": "C:\\VMs\\parent.vhd", "format": "vpc", "kind": "path"}
    refs = {(r["role"], r.get("platform"), r["name"]) for r in rep["references"]}
    assert {
        ("parent locator", "W2ru", ".\\parent.vhd"),
        ("parent locator", "W2ku", "C:\\VMs\\parent.vhd"),
        ("parent locator", "MacX", "file://localhost/Users/x/parent.vhd"),
        ("parent name", None, "parent.vhd"),
    } <= refs
    assert all(r["kind"] == "path" for r in rep["references"])  # a file:// URL is a local path
    # the builder writes the exact size and a geometry rounded down, as Hyper-V does: an info finding
    assert finding_ids(rep) == {"backing-file", "unencrypted", "size-disagreement"}
    assert rep["details"]["disk_type"] == "differencing"


def test_file_url_on_another_host_is_network(tmp_path: Path) -> None:
    rep = inspect_file(
        write(tmp_path, vpc.differencing([Locator(b"MacX", "file://evil.example/share/p.vhd")]), "disk.vhd")
    )
    assert rep["backing"]["kind"] == "network"
    assert "backing-network" in finding_ids(rep)


def test_demo_differencing(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.demo_differencing(), "disk.vhd"))
    assert "file://localhost/etc/shadow" in {r["name"] for r in rep["references"]}
    assert "backing-file" in finding_ids(rep)


def test_differencing_without_locators_uses_the_parent_name(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.differencing([], parent_name="base.vhd"), "disk.vhd"))
    assert rep["backing"]["filename"] == "base.vhd"


def test_huge_locator_is_not_read(tmp_path: Path) -> None:
    locators = [Locator(b"W2ku", "C:\\x.vhd", length=2**31), Locator(b"W2ru", "x.vhd", offset=2**40)]
    rep = inspect_file(write(tmp_path, vpc.differencing(locators), "disk.vhd"))
    assert checks_of(rep) == ["vpc.locator-past-eof", "vpc.locator-past-eof"]  # the W2ku and the W2ru locator
    assert rep["backing"]["filename"] == "parent.vhd"  # the parent name is all that is left
    assert rep["bytes_read"] < 8192
    assert_no_parser_error(rep)


def test_locator_over_the_cap_is_reported_unread(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.differencing([Locator(b"MacX", "file:///" + "a" * 5000)]), "disk.vhd"))
    assert rep["backing"]["filename"].startswith("file:///aaaa")  # 5008 bytes: under the 64 KiB cap
    rep = inspect_file(write(tmp_path, vpc.differencing([Locator(b"MacX", "file:///" + "a" * 70000)]), "disk.vhd"))
    assert any("its 70008 bytes of data were not examined" in d for d in details_of(rep, "read-budget"))
    assert {f["severity"] for f in rep["findings"] if f["id"] == "read-budget"} == {"critical"}


def test_unknown_platform_code(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.differencing([Locator(b"EvIl", "x")]), "disk.vhd"))
    assert checks_of(rep) == ["vpc.locator-platform"]


def test_broken_footer_checksum(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.dynamic(bad_footer_checksum=True), "disk.vhd"))
    (detail,) = details_of(rep, "checksum-mismatch")
    assert detail.startswith("footer checksum")


def test_broken_dynamic_header_checksum(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.dynamic(bad_header_checksum=True), "disk.vhd"))
    (detail,) = details_of(rep, "checksum-mismatch")
    assert detail.startswith("dynamic header checksum")


def test_huge_table_entry_count(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.dynamic(entries=2**32 - 1), "disk.vhd"))
    checks = checks_of(rep)
    assert "vpc.bat-too-large" in checks
    assert "vpc.bat-past-eof" in checks
    assert rep["bytes_read"] < 8192
    assert_no_parser_error(rep)


def test_bad_block_size(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.dynamic(block_size=3000), "disk.vhd"))
    assert "vpc.block-size" in checks_of(rep)
    assert rep["cluster_size"] is None


def test_table_too_small_for_the_size(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.dynamic(8 << 20, entries=1), "disk.vhd"))
    assert "vpc.bat-too-small" in checks_of(rep)


def test_fixed_disk_with_a_footer_in_its_guest_data(tmp_path: Path) -> None:
    """A guest can write a dynamic footer into its first sector; qemu would read that one."""
    data = bytearray(vpc.fixed())
    data[:512] = vpc.footer(vpc.DYNAMIC, 1 << 40)
    rep = inspect_file(write(tmp_path, bytes(data), "disk.vhd"))
    assert rep["details"]["disk_type"] == "fixed" and rep["virtual_size"] == 1 << 20  # the larger candidate
    assert rep["details"]["candidate_sizes"]["geometry"] == vpc.geometry(1 << 20)[0] * 4 * 17 * 512
    assert "vpc.fixed-data-starts-with-footer" in checks_of(rep)


def test_footer_copy_differs(tmp_path: Path) -> None:
    data = vpc.dynamic()
    data = vpc.footer(vpc.DYNAMIC, 1 << 30) + data[512:]
    rep = inspect_file(write(tmp_path, data, "disk.vhd"))
    assert checks_of(rep) == ["vpc.footer-copy-differs"]
    assert "current_size" in details_of(rep, "malformed")[0]  # the detail lists the fields that differ


def test_missing_copy_and_missing_end_footer(tmp_path: Path) -> None:
    data = vpc.dynamic()
    no_copy = inspect_file(write(tmp_path, bytes(512) + data[512:], "a.vhd"))
    assert "vpc.dynamic-without-footer-copy" in checks_of(no_copy)
    no_end = inspect_file(write(tmp_path, data[:-512], "b.vhd"))
    assert no_end["format"] == "vpc"
    assert "vpc.footer-only-at-start" in checks_of(no_end)


def test_old_511_byte_footer(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.fixed()[:-1], "disk.vhd"))
    assert rep["format"] == "vpc" and rep["details"]["disk_type"] == "fixed"
    assert "checksum-mismatch" not in finding_ids(rep)  # the footer is zero-padded: the sum is the same


def test_dynamic_header_outside_the_file(tmp_path: Path) -> None:
    data = vpc.dynamic()
    rep = inspect_file(write(tmp_path, data[:512] + data[-512:], "disk.vhd"))
    assert "vpc.dynamic-header-past-eof" in checks_of(rep)


def test_dynamic_disk_with_locators(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.dynamic(locators=[Locator(b"W2ku", "C:\\secret.vhd")]), "disk.vhd"))
    assert rep["backing"] is None
    assert "C:\\secret.vhd" in {r["name"] for r in rep["references"]}
    assert "vpc.parent-on-non-differencing" in checks_of(rep)


def test_saved_state_is_dirty(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, vpc.fixed(saved_state=1), "disk.vhd"))
    assert rep["dirty"] and "dirty" in finding_ids(rep)


@pytest.mark.parametrize("length", [0, 8, 100, 511, 512, 600, 1535, 2000])
def test_truncated_images(tmp_path: Path, length: int) -> None:
    rep = inspect_file(write(tmp_path, vpc.dynamic()[:length], "disk.vhd"), "vpc")
    assert_no_parser_error(rep)
    if length >= 8:
        assert "malformed" in finding_ids(rep)


@pytest.mark.qemu
def test_current_size_and_geometry_far_apart_are_judged_at_the_larger(
    tmp_path: Path, qemu_create: Callable[..., Path], qemu_info: Any
) -> None:
    """16 MiB of geometry, 2000 GiB of current_size, creator neither Hyper-V nor qemu: qemu 7.2 reads the
    geometry, Hyper-V and newer qemu current_size; the limit is checked against the larger."""
    made = qemu_create("made.vhd", "vpc", "16M").read_bytes()
    path = write(tmp_path, refooter(made, creator_app=b"evil", current_size=struct.pack(">Q", 2000 << 30)), "disk.vhd")
    rep = inspect_file(path, "vpc")
    candidates = rep["details"]["candidate_sizes"]
    assert candidates["geometry"] == qemu_info(path, "vpc")["virtual-size"] < 17 << 20
    assert rep["virtual_size"] == candidates["current_size"] == 2000 << 30
    flagged = [f for f in rep["findings"] if f["id"] == "size-disagreement"]
    assert flagged and flagged[0]["severity"] == "warning" and "judged at the largest" in flagged[0]["detail"]
