"""The expert tools of the bytes pane and the views (issue 18, item 6): cursor and selection in the status
bar, go to offset, find, the data inspector, copy as, context menus, magic with its text, the field filter."""

from __future__ import annotations

import base64
import os
import struct
import uuid
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication

from tests.gui.support import wait_done
from workbench.ui import context_menus, hex_find, row_actions
from workbench.ui.data_inspector import decode
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.node_model import walk

SAMPLE = struct.pack("<q", -2) + struct.pack(">d", 1.5)  # 16 bytes


@pytest.mark.parametrize(
    ("kind", "data", "value"),
    [
        ("u8", b"\xfe", "254 (0xfe)"),
        ("i8", b"\xfe", "-2 (0xfe)"),
        ("u16 LE", b"\x01\x02", "513 (0x0201)"),
        ("u16 BE", b"\x01\x02", "258 (0x0102)"),
        ("i16 LE", b"\xfe\xff", "-2 (0xfffe)"),
        ("i16 BE", b"\xff\xfe", "-2 (0xfffe)"),
        ("u32 LE", b"\x78\x56\x34\x12", "305419896 (0x12345678)"),
        ("u32 BE", b"\x12\x34\x56\x78", "305419896 (0x12345678)"),
        ("i32 LE", b"\xfe\xff\xff\xff", "-2 (0xfffffffe)"),
        ("i32 BE", b"\xff\xff\xff\xfe", "-2 (0xfffffffe)"),
        ("u64 LE", struct.pack("<Q", 1 << 40), f"{1 << 40} (0x{1 << 40:016x})"),
        ("u64 BE", struct.pack(">Q", 1 << 40), f"{1 << 40} (0x{1 << 40:016x})"),
        ("i64 LE", SAMPLE, "-2 (0xfffffffffffffffe)"),
        ("i64 BE", struct.pack(">q", -3), "-3 (0xfffffffffffffffd)"),
        ("float32 LE", struct.pack("<f", 0.5), "0.5"),
        ("float32 BE", struct.pack(">f", -2.25), "-2.25"),
        ("float64 LE", struct.pack("<d", 1e100), "1e+100"),
        ("float64 BE", SAMPLE[8:], "1.5"),
        ("time_t u32 LE", struct.pack("<I", 1_000_000_000), "2001-09-09 01:46:40 UTC"),
        ("time_t i64 LE", struct.pack("<q", 0), "1970-01-01 00:00:00 UTC"),
        ("FILETIME", struct.pack("<Q", 116444736000000000), "1970-01-01 00:00:00 UTC"),
        ("FILETIME", b"\xff" * 8, "out of range"),
        (
            "GUID",
            uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le,
            "2FA54224-CD1B-4876-B211-5DBED83BF4B8",
        ),
        ("UUID BE", bytes(range(16)), "00010203-0405-0607-0809-0a0b0c0d0e0f"),
        ("ASCII", b"QFI\xfb", "QFI."),
    ],
)
def test_data_inspector_types(kind: str, data: bytes, value: str) -> None:
    assert dict(decode(data))[kind] == value


def test_data_inspector_leaves_out_what_does_not_fit() -> None:
    kinds = dict(decode(b"\x01\x02\x03"))
    assert "u16 LE" in kinds and "u32 LE" not in kinds and "GUID" not in kinds
    assert decode(b"") == []


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("hex", "51 46 49 fb"),
        ("C array", "unsigned char data[4] = {\n    0x51, 0x46, 0x49, 0xfb\n};"),
        ("Python bytes", 'b"\\x51\\x46\\x49\\xfb"'),
        ("base64", base64.b64encode(b"QFI\xfb").decode()),
    ],
)
def test_copy_as(kind: str, text: str) -> None:
    assert hex_find.copy_as(b"QFI\xfb", kind) == text


@pytest.mark.parametrize(
    ("text", "current", "offset"),
    [("0x1f0", None, 0x1F0), ("1f0h", None, 0x1F0), ("496", None, 496), ("+16", 32, 48), ("-0x10", 32, 16)],
)
def test_go_to_offset_forms(text: str, current: int | None, offset: int) -> None:
    assert hex_find.parse_offset(text, current) == offset


def test_find_hex_text_regex_with_wrap() -> None:
    regions = [(0, b"QFI\xfb....QFI\xfb"), (100, b"xx/etc/passwd")]
    assert hex_find.find(regions, hex_find.needle("51 46 49 FB", "hex"), -1) == (0, 4)
    assert hex_find.find(regions, hex_find.needle("51 46 49 FB", "hex"), 0) == (8, 4)
    assert hex_find.find(regions, hex_find.needle("51 46 49 FB", "hex"), 8) == (0, 4)  # wraps
    assert hex_find.find(regions, hex_find.needle("QFI", "text"), 0, backwards=True) == (8, 3)
    assert hex_find.find(regions, hex_find.needle(r"/etc/\w+", "regex"), 0) == (102, 11)
    for text, mode in (("zz", "hex"), ("(", "regex"), ("", "text")):
        with pytest.raises(ValueError):
            hex_find.needle(text, mode)


def _fields(qtbot: Any, window: MainWindow, name: str = "backing-host-file.qcow2") -> Any:
    window.open_demo()
    entries = {os.path.basename(e.path): e for e in wait_done(qtbot, window)}
    window.select(entries[name])
    window.tabs.setCurrentWidget(window.fields)
    return window.fields


def test_status_bar_shows_cursor_and_selection(qtbot: Any, fast_window: MainWindow) -> None:
    page = _fields(qtbot, fast_window)
    page.hex.setFocus()
    page.hex.select_byte(0x20)
    assert fast_window.status_cursor.text().startswith("cursor 0x20 (32)")
    qtbot.keyClick(page.hex, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(page.hex, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert fast_window.status_cursor.text() == "cursor 0x22 (34) · selection 3 bytes (0x20–0x22)"


def test_go_to_offset_by_keyboard_and_text(qtbot: Any, fast_window: MainWindow, monkeypatch: Any) -> None:
    page = _fields(qtbot, fast_window)
    assert page.pane.go_to("0x18") and page.hex.cursor_offset == 0x18
    assert page.pane.go_to("+8") and page.hex.cursor_offset == 0x20
    messages: list[str] = []
    page.pane.message.connect(messages.append)
    assert not page.pane.go_to("0x7fffffff") and "was not read" in messages[-1]
    assert not page.pane.go_to("nowhere") and messages[-1].startswith("not an offset")
    asked: list[bool] = []
    monkeypatch.setattr(page.pane, "go_to_dialog", lambda: asked.append(True))
    page.hex.setFocus()
    qtbot.keyClick(page.hex, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert asked == [True]


def test_find_bar_by_keyboard(qtbot: Any, fast_window: MainWindow) -> None:
    page = _fields(qtbot, fast_window)
    page.hex.setFocus()
    qtbot.keyClick(page.hex, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    bar = page.pane.find_bar
    assert bar.isVisible() and bar.text.hasFocus()
    bar.mode.setCurrentText("text")
    qtbot.keyClicks(bar.text, "/etc/passwd")
    qtbot.keyClick(bar.text, Qt.Key.Key_Return)
    start, end = page.hex.selection()
    assert end - start == 11 and page.hex.bytes_at(start, 11) == b"/etc/passwd"
    assert "selection 11 bytes" in fast_window.status_cursor.text()
    qtbot.keyClick(bar.text, Qt.Key.Key_Escape)
    assert not bar.isVisible()


def test_data_inspector_follows_the_cursor(qtbot: Any, fast_window: MainWindow) -> None:
    page = _fields(qtbot, fast_window)
    page.hex.select_byte(0)
    values = page.pane.inspector.values()
    assert values["u32 BE"] == "1363560955 (0x514649fb)" and values["ASCII"].startswith("QFI.")
    page.hex.select_byte(4)
    assert page.pane.inspector.values()["u32 BE"].startswith("3 ")  # qcow2 version 3


def test_hex_context_menu(qtbot: Any, fast_window: MainWindow, monkeypatch: Any) -> None:
    page = _fields(qtbot, fast_window)
    page.hex.highlight((0, 4))
    built = page.pane.menu_at(QPoint(-1, -1))
    for kind in hex_find.COPY_FORMATS:
        row_actions.action(built, f"Copy as {kind}").trigger()
        assert QGuiApplication.clipboard().text() == hex_find.copy_as(b"QFI\xfb", kind)
    row_actions.action(built, "Find… (Ctrl+F)").trigger()
    assert page.pane.find_bar.isVisible()
    asked: list[bool] = []
    monkeypatch.setattr(page.pane, "go_to_dialog", lambda: asked.append(True))
    row_actions.action(page.pane.menu_at(QPoint(-1, -1)), "Go to Offset… (Ctrl+G)").trigger()
    assert asked == [True]


def test_field_tree_context_menu(qtbot: Any, fast_window: MainWindow) -> None:
    page = _fields(qtbot, fast_window)
    page.select_offset(0)
    built = page.tree_menu()
    clipboard = QGuiApplication.clipboard()
    row_actions.action(built, "Copy Name").trigger()
    assert clipboard.text() == "magic"
    row_actions.action(built, "Copy Value").trigger()
    assert clipboard.text() == "514649fb"
    row_actions.action(built, "Copy Offset").trigger()
    assert clipboard.text() == "0x0"
    for kind in hex_find.COPY_FORMATS:
        row_actions.action(built, f"Copy Bytes as {kind}").trigger()
        assert clipboard.text() == hex_find.copy_as(b"QFI\xfb", kind)
    row_actions.action(built, "Collapse All").trigger()
    assert not page.tree.isExpanded(page.tree.model().index(0, 0))
    row_actions.action(built, "Expand All").trigger()
    assert page.tree.isExpanded(page.tree.model().index(0, 0))


def test_image_list_context_menu(qtbot: Any, fast_window: MainWindow, monkeypatch: Any) -> None:
    _fields(qtbot, fast_window)
    entry = fast_window.current
    row_actions.action(context_menus.list_menu(fast_window), "Copy Path").trigger()
    assert QGuiApplication.clipboard().text() == entry.path
    revealed: list[str] = []
    monkeypatch.setattr(row_actions.QDesktopServices, "openUrl", lambda url: revealed.append(url.toLocalFile()))
    row_actions.action(context_menus.list_menu(fast_window), "Reveal in Folder").trigger()
    assert revealed == [os.path.dirname(entry.path)]
    generation = entry.generation
    row_actions.action(context_menus.list_menu(fast_window), "Inspect Again").trigger()
    assert entry.generation > generation
    wait_done(qtbot, fast_window)
    count = fast_window.model.rowCount()
    row_actions.action(context_menus.list_menu(fast_window), "Remove").trigger()
    assert fast_window.model.rowCount() == count - 1 and fast_window.model.row_of(entry) < 0


def test_findings_and_references_context_menus(qtbot: Any, fast_window: MainWindow) -> None:
    _fields(qtbot, fast_window)
    fast_window.tabs.setCurrentWidget(fast_window.findings)
    clipboard = QGuiApplication.clipboard()
    row_actions.action(context_menus.findings_menu(fast_window), "Copy Finding Id").trigger()
    assert clipboard.text() == "backing-file"
    row_actions.action(context_menus.findings_menu(fast_window), "Copy Finding").trigger()
    assert clipboard.text().startswith("CRITICAL: ")
    row_actions.action(context_menus.findings_menu(fast_window), "Go to Field and Bytes").trigger()
    assert fast_window.tabs.currentWidget() is fast_window.fields and fast_window.fields.hex.field
    fast_window.tabs.setCurrentWidget(fast_window.references)
    fast_window.references.tree.setCurrentIndex(fast_window.references.model.index(0, 0))
    row_actions.action(context_menus.references_menu(fast_window), "Copy Name").trigger()
    assert clipboard.text() == "/etc/passwd"
    row_actions.action(context_menus.references_menu(fast_window), "Show the Field That Names It").trigger()
    assert fast_window.tabs.currentWidget() is fast_window.fields
    assert fast_window.fields.current_field()["value"] == "/etc/passwd"


def test_magic_is_shown_with_its_text(qtbot: Any, fast_window: MainWindow) -> None:
    page = _fields(qtbot, fast_window)
    magic = next(n for n in walk(page.model.nodes()) if n.cells[0] == "magic")
    assert magic.cells[1] == '514649fb ("QFI\\xfb")'


def test_field_filter_keeps_the_selection_and_escape_clears_it(qtbot: Any, fast_window: MainWindow) -> None:
    page = _fields(qtbot, fast_window)
    page.select_offset(0)
    qtbot.keyClicks(page.filter, "ma")
    assert page.current_field()["name"] == "magic"
    page.filter.setFocus()
    qtbot.keyClick(page.filter, Qt.Key.Key_Escape)
    assert page.filter.text() == "" and page.current_field()["name"] == "magic"
