"""``workbench inspect --guest`` end to end: a GPT disk built with sfdisk and mkfs, inspected through the
real sandboxed child; sfdisk --json and blkid are the oracles."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.builders.guest_disks import MIB, blkid, gpt_guest_disk, run
from tests.builders.misc import bochs
from tests.conftest import required_tool
from tests.test_cli import run_cli
from workbench.host.validate import validate
from workbench.schema import GUEST_DEPTH, MAX_LIST, MAX_STRING
from workbench.triage.run import summarise

PRETTY_NAME = "Testix GNU/Linux 13 (trixie)"  # tests.builders.guest_disks.OS_RELEASE


@pytest.fixture(scope="module")
def gpt_disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    for tool in ("sfdisk", "blkid", "mkfs.ext4", "mkfs.vfat"):
        required_tool(tool, "util-linux e2fsprogs dosfstools")
    return gpt_guest_disk(tmp_path_factory.mktemp("guestcli"))


def inspect_json(*args: str) -> dict[str, Any]:
    result = run_cli("inspect", "--json", *args)
    assert result.returncode in (0, 10), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_json_guest_matches_sfdisk_and_blkid(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, parts = gpt_disk
    report = inspect_json("--guest", str(disk))
    guest = report["guest"]
    assert report["verdict"] == "accept"
    assert guest["partition_table"]["type"] == "gpt"
    got = [(v["index"], v["start"], v["length"], v["name"]) for v in guest["volumes"]]
    assert got == [(i + 1, p["start"] * 512, p["size"] * 512, p["name"]) for i, p in enumerate(parts)]
    for volume in guest["volumes"]:
        oracle = blkid(disk, volume["start"])
        found = volume["filesystem"]
        assert (found["type"], found["label"], found["uuid"]) == (oracle["TYPE"], oracle["LABEL"], oracle["UUID"])
    assert [v["filesystem"]["type"] for v in guest["volumes"]] == ["ext4", "vfat"]
    assert guest["volumes"][0]["os"]["name"] == PRETTY_NAME
    assert guest["volumes"][1]["os"] is None
    assert not [f for f in report["findings"] if f["id"].startswith("guest-")]


def test_guest_bytes_counted_apart_from_the_header_budget(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, _ = gpt_disk
    plain = inspect_json(str(disk))
    report = inspect_json("--guest", str(disk))
    guest = report["guest"]
    assert "guest" not in plain
    assert 0 < guest["bytes_read"] <= guest["budget"] == 4 * MIB
    assert report["read_budget"] == plain["read_budget"]
    assert report["bytes_read"] == plain["bytes_read"] + guest["bytes_read"]  # all 4 KiB blocks inside the file
    node = next(f for f in report["fields"] if f["name"] == "guest")
    assert node["children"] and not [f for f in plain["fields"] if f["name"] == "guest"]


def test_text_output_prints_the_layout(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, parts = gpt_disk
    result = run_cli("inspect", "--guest", str(disk))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("  guest       gpt, 2 volume(s), read ") for line in lines)
    root, esp = (p["start"] * 512 for p in parts)
    first = f"      1  start {root}  length 20.0 MiB (20971520 bytes)  Linux filesystem 'root'  [ext4 'rootfs']"
    assert f"{first}  {PRETTY_NAME}" in lines
    assert f"      2  start {esp}  length 16.0 MiB (16777216 bytes)  EFI System 'esp'  [vfat 'ESP']" in lines


def test_tiny_guest_budget_is_a_finding_not_a_failure(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    disk, _ = gpt_disk
    report = inspect_json("--guest", "--guest-budget", "8K", str(disk))
    assert report["verdict"] == "review"
    assert report["guest"]["budget"] == 8192 and report["guest"]["bytes_read"] <= 8192
    details = [f["detail"] for f in report["findings"] if f["id"] == "guest-budget"]
    assert details and "8192-byte guest budget" in details[0]


def test_guest_budget_over_its_cap_is_a_usage_error(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    result = run_cli("inspect", "--guest", "--guest-budget", "65M", str(gpt_disk[0]))
    assert result.returncode == 2
    assert "guest budget must lie between 1 byte and 64M" in result.stderr


@pytest.mark.qemu
def test_fixed_vhd_shows_the_same_guest(gpt_disk: tuple[Path, list[dict[str, Any]]], qemu_img: str) -> None:
    disk, _ = gpt_disk
    vhd = disk.with_name("fixed.vhd")
    run(qemu_img, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", disk, vhd)
    raw, fixed = inspect_json("--guest", str(disk)), inspect_json("--guest", str(vhd))
    assert fixed["format"] == "vpc" and fixed["details"]["disk_type"] == "fixed"
    assert fixed["guest"]["volumes"] == raw["guest"]["volumes"]
    assert fixed["guest"]["partition_table"] == raw["guest"]["partition_table"]


@pytest.mark.qemu
def test_qcow2_shows_the_same_guest(gpt_disk: tuple[Path, list[dict[str, Any]]], qemu_img: str) -> None:
    disk, _ = gpt_disk
    qcow2 = disk.with_name("disk.qcow2")
    run(qemu_img, "convert", "-f", "raw", "-O", "qcow2", disk, qcow2)
    raw, image = inspect_json("--guest", str(disk)), inspect_json("--guest", str(qcow2))
    assert image["format"] == "qcow2" and image["verdict"] == "accept"
    assert image["guest"]["volumes"] == raw["guest"]["volumes"]
    assert image["guest"]["partition_table"] == raw["guest"]["partition_table"]
    assert not [f for f in image["findings"] if f["id"].startswith("guest-")]


def test_format_without_a_guest_reader_says_so(tmp_path: Path) -> None:
    image = tmp_path / "disk.bochs"
    image.write_bytes(bochs())
    report = inspect_json("--guest", str(image))
    assert report["format"] == "bochs"
    assert report["guest"] == {"unavailable": "no guest reader for bochs yet"}
    assert not [f for f in report["findings"] if f["id"].startswith("guest-")]
    assert "guest       unavailable: no guest reader for bochs yet" in run_cli("inspect", "--guest", str(image)).stdout
    summary = summarise(report)
    assert (summary["guest_os"], summary["guest_filesystems"]) == ("", "unavailable: no guest reader for bochs yet")


def _reply(guest: Any) -> dict[str, Any]:
    """A minimal valid engine reply carrying ``guest``."""
    return {
        "schema": "workbench-report/1",
        "path": "x",
        "format": "raw",
        "format_matches": [],
        "file_size": 1,
        "allocated_size": 0,
        "encrypted": False,
        "dirty": False,
        "corrupt": False,
        "extents": [],
        "references": [],
        "snapshots": [],
        "fields": [],
        "findings": [],
        "bytes_read": 1,
        "read_budget": 1,
        "guest": guest,
    }


def test_parent_caps_the_guest_value() -> None:
    volumes = [{"index": n, "name": "n" * (MAX_STRING + 10), "os": {"x": [1] * (MAX_LIST + 5)}} for n in range(2000)]
    clean = validate(_reply({"partition_table": None, "volumes": volumes}))
    kept = clean["guest"]["volumes"]
    assert len(kept) == MAX_LIST
    assert len(kept[0]["name"]) == MAX_STRING and len(kept[0]["os"]["x"]) == MAX_LIST
    assert "guest" not in validate(_reply(None))


@pytest.mark.parametrize(
    "bad", [[], {"volumes": [{"start": 1 << 70}]}, "nested"], ids=["not-an-object", "huge-int", "too-deep"]
)
def test_parent_leaves_out_a_bad_guest_value_never_the_report(bad: Any) -> None:
    if bad == "nested":
        bad = {}
        node = bad
        for _ in range(GUEST_DEPTH + 1):
            node["a"] = {}
            node = node["a"]
    clean = validate(_reply(bad))
    assert clean["guest"] == {"unavailable": "the engine's guest view did not follow the report contract"}
    details = [f["detail"] for f in clean["findings"] if f["id"] == "report-capped"]
    assert len(details) == 1 and details[0].startswith("guest view left out: ")


def test_triage_guest_columns_in_csv_and_html(gpt_disk: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    disk, _ = gpt_disk
    out_csv, out_html = tmp_path / "t.csv", tmp_path / "t.html"
    result = run_cli("triage", "-q", "--guest", str(disk), f"--csv={out_csv}", f"--html={out_html}")
    assert result.returncode == 0, result.stderr
    (row,) = csv.DictReader(out_csv.open())
    assert row["guest_os"] == PRETTY_NAME
    assert row["guest_filesystems"] == "1 ext4 'rootfs'; 2 vfat 'ESP'"
    page = out_html.read_text()
    assert "<th>guest OS</th><th>guest filesystems</th>" in page
    assert f"<td>{PRETTY_NAME}</td><td>1 ext4 &#x27;rootfs&#x27;; 2 vfat &#x27;ESP&#x27;</td>" in page
    run_cli("triage", "-q", str(disk), f"--csv={out_csv}")
    (plain,) = csv.DictReader(out_csv.open())
    assert (plain["guest_os"], plain["guest_filesystems"]) == ("", "")


def test_guest_view_reports_its_progress_per_volume(gpt_disk: tuple[Path, list[dict[str, Any]]]) -> None:
    """In the engine: one call after the partition table and one per volume, within the budget, then done."""
    import os

    from workbench.engine.guest import RawGuestDisk, inspect_guest
    from workbench.engine.reader import Reader

    seen: list[tuple[int, int, str]] = []
    fd = os.open(gpt_disk[0], os.O_RDONLY)
    try:
        disk = RawGuestDisk(Reader(fd, os.fstat(fd).st_size, 1 << 40))
        value, _, _ = inspect_guest(disk, 1 << 20, lambda *line: seen.append(line))
    finally:
        os.close(fd)
    volumes = [f"guest: volume {v['index']}" for v in value["volumes"]]
    assert [what for _, _, what in seen] == ["guest: partition table", *volumes, "guest: done"]
    assert all(0 <= done <= total == 1 << 20 for done, total, _ in seen)
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)
    assert seen[-2][0] == value["bytes_read"]


def test_a_sandboxed_guest_view_sends_progress_only_to_a_caller_who_asks(
    gpt_disk: tuple[Path, list[dict[str, Any]]],
) -> None:
    import asyncio

    from workbench.host.runner import EngineOptions, inspect_path

    seen: list[dict[str, Any]] = []
    asked = EngineOptions(guest=True, on_progress=seen.append)
    report = asyncio.run(inspect_path(str(gpt_disk[0]), "raw", asked))
    assert [line["what"] for line in seen][-1] == "guest: done"
    assert len(seen) == len(report["guest"]["volumes"]) + 2
    plain = asyncio.run(inspect_path(str(gpt_disk[0]), "raw", EngineOptions(guest=True)))
    assert plain["guest"]["volumes"] == report["guest"]["volumes"]
