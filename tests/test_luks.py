"""LUKS1/LUKS2: qemu-img and cryptsetup as oracles, hand-built hostile headers."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.builders import luks as samples
from tests.helpers import assert_no_parser_error, checks_of, details_of, finding_ids, inspect_file, write

SECRET = ("--object", "secret,id=sec0,data=abc", "-o", "key-secret=sec0,iter-time=10")


@pytest.fixture(scope="session")
def cryptsetup() -> str:
    found = shutil.which("cryptsetup") or shutil.which("cryptsetup", path="/usr/sbin:/sbin")
    if not found:
        pytest.fail("cryptsetup is required (Debian package cryptsetup-bin)")
    return found


def luks_format(cryptsetup: str, path: Path, *options: str) -> Path:
    """A 20 MiB file formatted by cryptsetup with a fast key derivation."""
    with open(path, "wb") as f:
        f.truncate(20 << 20)
    cmd = [cryptsetup, "luksFormat", "--batch-mode", *options, str(path)]
    subprocess.run(cmd, input=b"password", check=True, capture_output=True)
    return path


def dump_json(cryptsetup: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [cryptsetup, "luksDump", "--dump-json-metadata", str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def assert_matches_qemu(rep: dict[str, Any], qemu: dict[str, Any]) -> None:
    """The LUKS1 facts qemu-img reports (format-specific data of the luks driver)."""
    data = qemu["format-specific"]["data"]
    enc = rep["encryption"]
    assert rep["virtual_size"] == qemu["virtual-size"]
    assert rep["encrypted"] is qemu["encrypted"] is True
    assert data["cipher-alg"].split("-")[0] == enc["cipher"]
    assert f"{data['cipher-mode']}-{data['ivgen-alg']}" == enc["mode"]
    assert data["hash-alg"] == enc["hash"]
    assert data["payload-offset"] == enc["payload_offset"]
    assert data["uuid"] == enc["uuid"]
    assert len(data["slots"]) == len(enc["key_slots"]) == 8
    for theirs, ours in zip(data["slots"], enc["key_slots"], strict=True):
        assert theirs["active"] == ours["active"]
        assert theirs["key-offset"] == ours["key_offset"]
        if theirs["active"]:
            assert (theirs["iters"], theirs["stripes"]) == (ours["iterations"], ours["stripes"])
    assert enc["key_slots_active"] == sum(slot["active"] for slot in data["slots"])


# ---------------------------------------------------------------- oracles


def test_qemu_luks1_matches_qemu_img(qemu_create: Callable[..., Path], qemu_info: Callable[..., Any]) -> None:
    path = qemu_create("q.luks", "luks", "16M", *SECRET)
    rep = inspect_file(path, "luks")
    assert_no_parser_error(rep)
    assert rep["format"] == "luks" and rep["format_matches"] == ["luks"]
    assert rep["encryption"]["version"] == 1
    assert_matches_qemu(rep, qemu_info(path, "luks"))
    assert rep["virtual_size"] == 16 << 20
    assert finding_ids(rep) == {"encrypted"}
    assert rep["bytes_read"] < 4096


def test_cryptsetup_luks1_matches_qemu_img(cryptsetup: str, tmp_path: Path, qemu_info: Callable[..., Any]) -> None:
    path = luks_format(cryptsetup, tmp_path / "c1", "--type", "luks1", "--pbkdf-force-iterations", "1000")
    rep = inspect_file(path, "luks")
    assert_matches_qemu(rep, qemu_info(path, "luks"))
    assert rep["encryption"]["key_slots"][0]["iterations"] == 1000
    assert finding_ids(rep) == {"encrypted"}


@pytest.mark.parametrize("kdf", ["pbkdf2", "argon2id"])
def test_cryptsetup_luks2_matches_luksdump(cryptsetup: str, tmp_path: Path, kdf: str) -> None:
    """qemu 7.2 refuses LUKS2 ("LUKS version 2 is not supported"): cryptsetup's own dump is the oracle."""
    cost = ["--pbkdf-force-iterations", "1000"] if kdf == "pbkdf2" else ["--pbkdf-force-iterations", "4"]
    cost += ["--pbkdf-memory", "32"] if kdf == "argon2id" else []
    path = luks_format(
        cryptsetup, tmp_path / "c2", "--type", "luks2", "--pbkdf", kdf, *cost, "--label", "lab", "--subsystem", "sub"
    )
    rep = inspect_file(path, "luks")
    assert_no_parser_error(rep)
    assert finding_ids(rep) == {"encrypted"}, rep["findings"]
    meta = dump_json(cryptsetup, path)
    enc = rep["encryption"]
    uuid = subprocess.run([cryptsetup, "luksUUID", str(path)], check=True, capture_output=True, text=True)
    assert (enc["version"], enc["uuid"], enc["label"], enc["subsystem"]) == (2, uuid.stdout.strip(), "lab", "sub")
    segment = meta["segments"]["0"]
    assert enc["payload_offset"] == int(segment["offset"])
    assert rep["virtual_size"] == rep["file_size"] - int(segment["offset"])
    assert f"{enc['cipher']}-{enc['mode']}" == segment["encryption"]
    assert enc["sector_size"] == segment["sector_size"]
    assert enc["hash"] == meta["digests"]["0"]["hash"]
    assert enc["key_slots_active"] == len(meta["keyslots"]) == 1
    theirs, ours = meta["keyslots"]["0"], enc["key_slots"][0]
    assert ours["kdf"] == theirs["kdf"]["type"] == kdf
    assert ours["key_size"] * 8 == enc["key_size"] == theirs["key_size"] * 8
    assert (ours["area_offset"], ours["area_size"]) == (int(theirs["area"]["offset"]), int(theirs["area"]["size"]))
    if kdf == "pbkdf2":
        assert ours["kdf_iterations"] == theirs["kdf"]["iterations"] == 1000
    else:
        assert (ours["kdf_time"], ours["kdf_memory"]) == (theirs["kdf"]["time"], theirs["kdf"]["memory"]) == (4, 32)
    assert rep["bytes_read"] < 40_000  # two 16 KiB header copies


def test_luks2_two_keyslots_after_add_key(cryptsetup: str, tmp_path: Path) -> None:
    path = luks_format(
        cryptsetup, tmp_path / "c2", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"
    )
    key = tmp_path / "key"
    key.write_bytes(b"second")
    subprocess.run(
        [
            cryptsetup,
            "luksAddKey",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            str(path),
            str(key),
        ],
        input=b"password",
        check=True,
        capture_output=True,
    )
    rep = inspect_file(path, "luks")
    assert [slot["id"] for slot in rep["encryption"]["key_slots"]] == ["0", "1"]
    assert rep["encryption"]["key_slots_active"] == 2
    assert finding_ids(rep) == {"encrypted"}  # seqid went up in both copies, checksums still match


def test_samples_are_accepted_by_the_real_tools(cryptsetup: str, tmp_path: Path, qemu_info: Callable[..., Any]) -> None:
    one = write(tmp_path, samples.luks1(), "s1.luks")
    assert_matches_qemu(inspect_file(one, "luks"), qemu_info(one, "luks"))
    two = write(tmp_path, samples.luks2(), "s2.luks")
    assert dump_json(cryptsetup, two)["segments"]["0"]["offset"] == str(1 << 20)
    rep = inspect_file(two, "luks")
    assert finding_ids(rep) == {"encrypted"}
    assert rep["virtual_size"] == 64 * 1024


# ---------------------------------------------------------------- LUKS1 hostile


def test_luks1_truncated_at_every_length(tmp_path: Path) -> None:
    image = samples.luks1()
    path = tmp_path / "t.luks"
    for length in range(601):
        path.write_bytes(image[:length])
        rep = inspect_file(path, "luks")
        assert_no_parser_error(rep)
        if length < 6:
            assert rep["format"] == "raw" and "format-mismatch" in finding_ids(rep), length
            continue
        assert rep["format"] == "luks" and rep["encrypted"], length
        checks = checks_of(rep)
        if length < 592:
            assert {"luks.header-truncated", "luks1.header-truncated"} & set(checks), length
        else:
            assert checks == ["luks.payload-past-eof"], length
            assert rep["virtual_size"] == 0


def test_luks1_corrupt_key_slots(tmp_path: Path) -> None:
    image = bytearray(samples.luks1())
    struct.pack_into(">I", image, 208 + 48 * 3, 0x12345678)  # slot 3 state
    struct.pack_into(">I", image, 208 + 48 * 5 + 44, 0)  # slot 5 stripes
    struct.pack_into(">I", image, 208 + 48 * 6 + 40, 8)  # slot 6 key material on top of slot 0
    rep = inspect_file(write(tmp_path, bytes(image), "x.luks"), "luks")
    checks = checks_of(rep)
    assert "luks1.key-slot-state" in checks
    assert "luks1.key-slot-stripes" in checks
    assert "luks1.key-slots-overlap" in checks
    assert rep["encryption"]["key_slots_active"] == 1


def test_luks1_key_material_over_payload_and_header(tmp_path: Path) -> None:
    image = bytearray(samples.luks1(payload_sectors=600))
    struct.pack_into(">I", image, 208 + 40, 0)
    rep = inspect_file(write(tmp_path, bytes(image), "x.luks"), "luks")
    checks = checks_of(rep)
    assert "luks1.key-slot-overlaps-header" in checks
    assert "luks1.key-slot-overlaps-payload" in checks
    assert rep["virtual_size"] == 64 * 1024


def test_luks1_detached_header(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, samples.luks1(payload_sectors=0), "x.luks"), "luks")
    [detail] = [f for f in rep["findings"] if f["id"] == "malformed"]
    assert "detached LUKS header" in detail["detail"] and detail["severity"] == "warning"
    assert rep["encryption"]["payload_offset"] == 0


def test_luks1_hostile_strings_are_capped_text(tmp_path: Path) -> None:
    image = samples.luks1(cipher="\x1b[2J" + "A" * 40, uuid="../../etc/passwd" + "\x07" * 30)
    rep = inspect_file(write(tmp_path, image, "x.luks"), "luks")
    assert rep["encryption"]["cipher"] == "\x1b[2J" + "A" * 28  # the 32-byte field, no more
    assert rep["encryption"]["uuid"] == "../../etc/passwd" + "\x07" * 24
    assert rep["references"] == []  # a path-like uuid is text, never a reference


def test_unknown_luks_version(tmp_path: Path) -> None:
    image = bytearray(samples.luks1())
    struct.pack_into(">H", image, 6, 7)
    rep = inspect_file(write(tmp_path, bytes(image), "x.luks"), "luks")
    assert checks_of(rep) == ["luks.version"]
    assert rep["encrypted"] and rep["encryption"]["version"] == 7


# ---------------------------------------------------------------- LUKS2 hostile


def test_luks2_truncated(tmp_path: Path) -> None:
    image = samples.luks2()
    for length, expected in [
        (7, "luks.header-truncated"),
        (600, "luks2.header-truncated"),
        (4095, "luks2.header-truncated"),
        (5000, "luks2.header-past-eof"),
        (16384, "luks2.secondary-missing"),
        (20000, "luks.payload-past-eof"),
    ]:
        rep = inspect_file(write(tmp_path, image[:length], "x.luks"), "luks")
        assert_no_parser_error(rep)
        assert expected in checks_of(rep), (length, rep["findings"])


@pytest.mark.parametrize("hdr_size", [2**63, 1024, 4096, 0])
def test_luks2_header_size_out_of_range(tmp_path: Path, hdr_size: int) -> None:
    image = bytearray(samples.luks2())
    struct.pack_into(">Q", image, 8, hdr_size)
    rep = inspect_file(write(tmp_path, bytes(image), "x.luks"), "luks")
    assert_no_parser_error(rep)
    assert "luks2.header-size" in checks_of(rep)
    assert "key_slots" not in rep["encryption"]  # the JSON area is not trusted to exist
    assert rep["bytes_read"] < 10_000  # the binary header and the other formats' probes


def test_luks2_bad_checksum(tmp_path: Path) -> None:
    image = bytearray(samples.luks2())
    image[24:30] = b"edited"  # label of the primary copy, after the checksum was computed
    rep = inspect_file(write(tmp_path, bytes(image), "x.luks"), "luks")
    [mismatch] = details_of(rep, "checksum-mismatch")
    assert mismatch.startswith("primary LUKS2 header sha256 is ")
    assert rep["encryption"]["label"] == "edited"


def test_luks2_copies_disagree(tmp_path: Path) -> None:
    rep = inspect_file(write(tmp_path, samples.luks2(seqids=(5, 4)), "x.luks"), "luks")
    [finding] = [f for f in rep["findings"] if f["id"] == "malformed"]
    assert "primary seqid 5, secondary 4" in finding["detail"] and finding["severity"] == "warning"
    assert "checksum-mismatch" not in finding_ids(rep)


@pytest.mark.parametrize(
    ("json_area", "check", "error"),
    [
        (b"not json at all", "luks2.json-invalid", "JSONDecodeError"),
        (b"\xff\xfe{}", "luks2.json-invalid", "UnicodeDecodeError"),
        (b"[1, 2]", "luks2.json-not-object", "list"),
        (b"[" * 200_000, "luks2.json-invalid", "RecursionError"),
        (b'{"a": ' + b"9" * 5000 + b"}", "luks2.json-invalid", "ValueError"),
    ],
)
def test_luks2_json_not_metadata(tmp_path: Path, json_area: bytes, check: str, error: str) -> None:
    image = samples.luks2(json_area=json_area, hdr_size=256 * 1024, data_offset=2 << 20)
    rep = inspect_file(write(tmp_path, image, "x.luks"), "luks")
    assert_no_parser_error(rep)
    assert checks_of(rep) == [check], rep["findings"]
    assert error in details_of(rep, "malformed")[0]  # which error the JSON reader met: data, not a check
    assert "checksum-mismatch" not in finding_ids(rep)


def test_luks2_many_keyslots_are_counted_not_listed(tmp_path: Path) -> None:
    meta = samples.luks2_metadata(hdr_size=256 * 1024, data_offset=2 << 20)
    meta["keyslots"] = {str(n): {} for n in range(20_000)}
    image = samples.luks2(metadata=meta, hdr_size=256 * 1024, data_offset=2 << 20)
    rep = inspect_file(write(tmp_path, image, "x.luks"), "luks")
    assert "luks2.json-too-many" in checks_of(rep)
    assert rep["encryption"]["key_slots_active"] == 20_000
    assert [slot["id"] for slot in rep["encryption"]["key_slots"]] == [str(n) for n in range(32)]
    assert "luks2.keyslot-area" in checks_of(rep)


def test_luks2_json_larger_than_the_read_cap(tmp_path: Path) -> None:
    hdr_size = 4 << 20
    meta = samples.luks2_metadata(hdr_size=hdr_size, data_offset=10 << 20)
    meta["keyslots"] = {str(n): {"type": "luks2"} for n in range(100_000)}
    image = samples.luks2(metadata=meta, hdr_size=hdr_size, data_offset=10 << 20, data_size=0)
    rep = inspect_file(write(tmp_path, image, "x.luks"), "luks")
    assert_no_parser_error(rep)
    budget = details_of(rep, "read-budget")
    assert f"LUKS2 header is {hdr_size} bytes; read only the first {256 * 1024}, checksums not verified" in budget
    assert any("JSON text runs past" in detail for detail in budget)
    assert rep["bytes_read"] < 300_000


def test_luks2_big_header_with_small_json_is_parsed(tmp_path: Path) -> None:
    hdr_size = 4 << 20
    image = samples.luks2(hdr_size=hdr_size, data_offset=10 << 20, data_size=0)
    rep = inspect_file(write(tmp_path, image, "x.luks"), "luks")
    assert finding_ids(rep) == {"read-budget", "encrypted"}
    assert rep["encryption"]["key_slots"][0]["area_offset"] == 2 * hdr_size
    assert rep["virtual_size"] == 0


def test_luks2_hostile_json_types(tmp_path: Path) -> None:
    meta: dict[str, Any] = {
        "keyslots": {"0": "a string", "1": {"key_size": "x", "kdf": [1], "area": {"offset": True, "size": -5}}},
        "segments": {"0": {"type": "crypt", "offset": "12abc", "size": {"a": 1}, "encryption": 7}},
        "digests": {"0": {"keyslots": "0", "hash": ["sha256"]}},
        "tokens": [],
        "config": {
            "json_size": "99999999999999999999999",
            "requirements": {"mandatory": ["online-reencrypt", 3, "x" * 9000]},
        },
    }
    rep = inspect_file(write(tmp_path, samples.luks2(metadata=meta), "x.luks"), "luks")
    assert_no_parser_error(rep)
    checks = checks_of(rep)
    assert "luks2.segment-offset" in checks
    assert "luks2.json-size" in checks
    [unknown] = details_of(rep, "unknown-features")
    assert unknown.startswith("LUKS2 mandatory requirements not known: 3, xxx") and len(unknown) < 600
    assert rep["encryption"]["key_slots"] == [{"id": "0"}, {"id": "1"}]
    assert rep["encryption"]["cipher"] == "" and rep["encryption"]["hash"] is None


def test_luks2_fixed_size_segment(tmp_path: Path) -> None:
    meta = samples.luks2_metadata()
    meta["segments"]["0"]["size"] = "4096"
    rep = inspect_file(write(tmp_path, samples.luks2(metadata=meta), "x.luks"), "luks")
    assert rep["virtual_size"] == 4096 and finding_ids(rep) == {"encrypted"}
    meta["segments"]["0"]["size"] = str(1 << 40)
    rep = inspect_file(write(tmp_path, samples.luks2(metadata=meta), "x.luks"), "luks")
    assert rep["virtual_size"] == 1 << 40
    assert checks_of(rep) == ["luks.payload-past-eof"]


def test_luks2_keyslot_area_over_the_data(tmp_path: Path) -> None:
    meta = samples.luks2_metadata(keyslots=4)  # four 252 KiB areas from 32 KiB: past the 1 MiB data offset
    rep = inspect_file(write(tmp_path, samples.luks2(metadata=meta), "x.luks"), "luks")
    assert checks_of(rep) == ["luks2.keyslot-overlaps-headers"]
    assert rep["encryption"]["key_slots_active"] == 4


def test_luks2_hostile_label_and_subsystem(tmp_path: Path) -> None:
    image = samples.luks2(label="\x1b]0;pwned\x07" + "L" * 60, subsystem=b"\xff\xfe" * 30)
    rep = inspect_file(write(tmp_path, image, "x.luks"), "luks")
    enc = rep["encryption"]
    assert enc["label"] == ("\x1b]0;pwned\x07" + "L" * 60)[:48]
    assert len(enc["subsystem"]) == 48 and isinstance(enc["subsystem"], str)
    assert finding_ids(rep) == {"encrypted"}


def test_demo_images_are_clean(tmp_path: Path) -> None:
    for name, declared, data in samples.demo_images():
        rep = inspect_file(write(tmp_path, data, name), declared)
        assert (rep["format"], finding_ids(rep)) == ("luks", {"encrypted"}), name
        assert rep["virtual_size"] == 64 * 1024
