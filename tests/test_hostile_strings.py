"""Strings from images never reach a terminal or a window as control text, and are capped in length.

The images carry escape sequences (ESC, BEL, 8-bit CSI 0x9b), bidirectional overrides (U+202E, U+2066),
NUL and markup (``<img src=x>``, ``<b>bold</b>``) in every text the engine reports: qcow2 backing, data
file and snapshot names, VMDK extents and parent hints, LUKS1 cipher names and LUKS2 labels, ISO volume
ids, VHD parent names and locators, VHDX locators, VDI descriptions. Terminal: ``workbench inspect`` (text,
verbose, chain, JSON) and ``workbench triage``. The window: ``tests/gui/test_gui_hostile_strings.py``.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from tests.builders import luks, misc, qcow2, vdi, vhdx, vmdk, vpc
from tests.test_cli import run_cli

ESCAPES = "\x1b]0;owned\x07\x1b[31m\x9b2J"
MARKUP = "<img src=x><b>bold</b>"
BIDI = "\u202eevil\u2066"
HOSTILE = f"{ESCAPES}{MARKUP}{BIDI}"
RAW = HOSTILE.encode("utf-8")  # bytes for fields decoded as UTF-8
LATIN = ESCAPES.encode("latin-1") + MARKUP.encode()  # bytes for fields decoded as latin-1 (0x9b stays CSI)
LONG = "A" * 60_000
MAX_LINE = 12_000  # the longest escaped line allowed in terminal output; the long name alone is 60 000
FORBIDDEN = {"\x00", "\x07", "\x1b", "\x9b", "\u202e", "\u2066"}


def hostile_images(folder: Path) -> dict[str, str]:
    """``file name -> declared format`` of images whose every text field is hostile."""
    folder.mkdir(exist_ok=True)
    snapshot = qcow2.snapshot_entry("1", HOSTILE)
    images = {
        "backing.qcow2": (
            "qcow2",
            qcow2.qcow2(
                1 << 30,
                backing=LATIN + b"\0hidden",
                backing_format=HOSTILE,
                data_file=HOSTILE,
                snapshots=[snapshot],
            ),
        ),
        "long-backing.qcow2": ("qcow2", qcow2.qcow2(1 << 30, backing="B" * 4000)),
        "extents.vmdk": (
            "vmdk",
            vmdk.descriptor_file(
                [("RW", 8, "FLAT", HOSTILE, 0), ("RW", 8, "FLAT", LONG, 0)],
                create_type=HOSTILE,
                parent_hint=HOSTILE,
            ),
        ),
        "label.luks": ("luks", luks.luks2(label=LATIN[:47], subsystem=RAW[:47])),
        "cipher.luks": ("luks", luks.luks1(cipher=ESCAPES, mode=MARKUP, hash_spec=BIDI)),
        "volume.iso": ("iso", misc.iso(volume_id="\x1b]0;x\x07<b>b</b>")),
        "parent.vhd": (
            "vpc",
            vpc.differencing([vpc.Locator(b"W2ku", HOSTILE), vpc.Locator(b"Wi2k", ESCAPES)], parent_name=HOSTILE),
        ),
        "parent.vhdx": (
            "vhdx",
            vhdx.vhdx(parent=[("parent_linkage", vhdx.PARENT_LINKAGE), ("relative_path", HOSTILE)]),
        ),
        "comment.vdi": ("vdi", vdi.vdi(description=ESCAPES + MARKUP)),
        f"{ESCAPES}<img src=x><b>bold{BIDI}.qcow2": ("qcow2", qcow2.qcow2(1 << 20)),  # the file's own name
    }
    for name, (_, data) in images.items():
        (folder / name).write_bytes(data)
    return {name: fmt for name, (fmt, _) in images.items()}


def unsafe(text: str) -> list[str]:
    """Characters a terminal would obey: controls other than newline, format and bidi characters."""
    return sorted({ch for ch in text if ch in FORBIDDEN or (unicodedata.category(ch) in ("Cc", "Cf") and ch != "\n")})


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    return folder, hostile_images(folder)


def assert_terminal_safe(out: str) -> None:
    assert unsafe(out) == []
    assert max(map(len, out.splitlines())) <= MAX_LINE
    assert LONG not in out


def test_inspect_escapes_every_image_string(images: tuple[Path, dict[str, str]]) -> None:
    folder, formats = images
    paths = [str(folder / name) for name in formats]
    result = run_cli("inspect", "-v", *paths, timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == 20, result.stderr
    assert_terminal_safe(out)
    assert out.count(": REJECT") + out.count(": REVIEW") + out.count(": ACCEPT") == len(paths)
    assert "\\x1b]0;owned\\x07" in out and "\\x9b2J" in out  # shown, escaped
    assert "\\u202eevil\\u2066" in out
    assert MARKUP in out  # markup is text in a terminal: shown as it is


def test_chain_and_json_output_escape_image_strings(images: tuple[Path, dict[str, str]]) -> None:
    folder, _ = images
    chain = run_cli("inspect", "--chain", str(folder / "backing.qcow2"), str(folder / "parent.vhdx"), timeout=60)
    assert_terminal_safe(chain.stdout + chain.stderr)
    assert "chain ends" in chain.stdout
    result = run_cli("inspect", "--json", str(folder / "extents.vmdk"), timeout=60)
    assert result.stdout.isascii() and unsafe(result.stdout) == []
    report = json.loads(result.stdout)
    assert HOSTILE in [ref["name"] for ref in report["references"]]  # the data itself stays exact
    assert all(len(ref["name"]) <= 4096 for ref in report["references"])


def test_triage_summary_escapes_image_strings(images: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, formats = images
    hostile_name = folder.parent / f"name{ESCAPES}{BIDI}"
    hostile_name.mkdir(exist_ok=True)
    (hostile_name / "backing.qcow2").write_bytes((folder / "backing.qcow2").read_bytes())
    result = run_cli("triage", str(folder), str(hostile_name), "--jobs", "2", timeout=120)
    out = result.stdout + result.stderr
    assert_terminal_safe(out)
    assert f"{len(formats) + 1} file(s)" in out
    assert "REJECT" in out and "\\x1b]0;owned\\x07" in out
