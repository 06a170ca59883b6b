"""Strings from images never reach a terminal or a window as control text, and are capped in length.

The images carry escape sequences (ESC, BEL, 8-bit CSI 0x9b), bidirectional overrides (U+202E, U+2066),
NUL and markup (``<img src=x>``, ``<b>bold</b>``) in every text the engine reports: qcow2 backing, data
file and snapshot names, VMDK extents and parent hints, LUKS1 cipher names and LUKS2 labels, ISO volume
ids, VHD parent names and locators, VHDX locators, VDI descriptions. Terminal: ``workbench inspect`` (text,
verbose, chain, JSON) and ``workbench triage``. Window: every item view, label, tooltip and text pane of
the main window, on each page.
"""

from __future__ import annotations

import html
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction, QTextDocument
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import QAbstractItemView, QLabel, QPlainTextEdit

from tests.gui_support import fast_window_fixture, qloop_fixture, wait_done  # noqa: F401  (fixtures, by name)
from tests.test_cli import run_cli
from workbench.render.textsafe import printable
from workbench.samples import luks, misc, qcow2, vdi, vhdx, vmdk, vpc
from workbench.ui.main_window import MainWindow

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


# --- the window ---------------------------------------------------------------------------------------------


def rendered(tip: str) -> str:
    """What Qt shows for a tooltip: rich text when it looks like markup, as Qt::mightBeRichText decides."""
    if not GuiQt.mightBeRichText(tip):
        return tip
    document = QTextDocument()
    document.setHtml(tip)
    return document.toPlainText()


def item_texts(view: QAbstractItemView) -> list[tuple[str, str]]:
    """``(display, tooltip as shown)`` of every cell of every row of ``view``'s model, depth first."""
    model = view.model()
    out: list[tuple[str, str]] = []
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(model.rowCount(parent)):
            for column in range(model.columnCount(parent)):
                index = model.index(row, column, parent)
                display = index.data(Qt.ItemDataRole.DisplayRole)
                tip = index.data(Qt.ItemDataRole.ToolTipRole)
                out.append((display if isinstance(display, str) else "", rendered(tip) if tip else ""))
            stack.append(model.index(row, 0, parent))
    return out


def window_texts(window: MainWindow) -> list[str]:
    """Every string the window shows now: items, labels, text panes, tooltips, actions, its title."""
    texts = [window.windowTitle(), rendered(window.toolTip())]
    for view in window.findChildren(QAbstractItemView):
        for display, tip in item_texts(view):
            texts += [display, tip]
    for label in window.findChildren(QLabel):
        if label.textFormat() != Qt.TextFormat.PlainText:  # only fixed texts may be in a rich-text label
            assert not any(mark in label.text() for mark in ("owned", "bold", "evil", "<img")), label.text()
        texts += [label.text(), rendered(label.toolTip())]
    texts += [edit.toPlainText() for edit in window.findChildren(QPlainTextEdit)]
    texts += [action.text() for action in window.findChildren(QAction)]
    return texts


def test_every_view_shows_image_strings_as_capped_plain_text(
    qtbot: Any, fast_window: MainWindow, images: tuple[Path, dict[str, str]]
) -> None:
    folder, formats = images
    declared = {str(folder / name): fmt for name, fmt in formats.items()}
    fast_window.add_files(list(declared), declared=declared)
    entries = wait_done(qtbot, fast_window)
    assert len(entries) == len(formats) and all(e.verdict != "failed" for e in entries)
    seen = []
    for entry in entries:
        fast_window.select(entry)
        for page in range(fast_window.tabs.count()):
            fast_window.tabs.setCurrentIndex(page)
            findings = fast_window.findings.tree
            if findings.model().rowCount():  # show one finding's full text in the detail pane too
                findings.setCurrentIndex(findings.model().index(0, 0))
            texts = window_texts(fast_window)
            seen += texts
            assert [t for t in texts if unsafe(t)] == []
            assert max(map(len, texts)) <= MAX_LINE
    shown = "\n".join(seen)
    assert printable(HOSTILE, 4096) in shown  # names appear, escaped, as text...
    assert "<img src=x>" in shown and "<b>bold</b>" in shown  # ...and markup stays literal
    assert html.escape("<img") not in shown  # escaped markup never shows as entities either
