"""The Guest tab (issue 17): the drawn disk layout's geometry, its selection linked to the field tree and
bytes, hostile strings, and the on-demand load through the window's runner path (guest option, cancel)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QRectF, Qt

from tests.builders.partitions import EFI_SYSTEM, LINUX_FS, gpt
from tests.gui.support import WAIT_MS, inspect_in_process, wait_done
from workbench import inspector
from workbench.policy.policy import Policy
from workbench.ui.disk_layout import LABEL_CAP, MIN_BLOCK, describe, layout_blocks, volume_kind
from workbench.ui.guest_page import READING, GuestPage
from workbench.ui.main_window import MainWindow
from workbench.ui.page_state import PageState
from workbench.ui.qtmodels.guest_model import layer_nodes
from workbench.ui.qtmodels.image_list_model import Entry
from workbench.ui.qtmodels.node_model import walk

MIB = 1 << 20
HOSTILE = "\x1b[31mred\u202egnp.exe\x07" + "L" * 10_000


def volume(index: int, start: int, length: int, **layers: Any) -> dict[str, Any]:
    return {"index": index, "start": start, "length": length, "type": "Linux filesystem", "name": f"p{index}", **layers}


def test_blocks_are_proportional_with_gaps_and_a_minimum_width() -> None:
    volumes = [volume(1, 100, 400), volume(2, 500, 499), volume(3, 999, 1)]
    blocks = layout_blocks(volumes, 1000, QRectF(0, 0, 1000, 50), least=28)
    assert [(b.start, b.length, b.volume is None) for b in blocks] == [
        (0, 100, True),  # the unallocated space before the first partition
        (100, 400, False),
        (500, 499, False),
        (999, 1, False),
    ]
    widths = [b.rect.width() for b in blocks]
    assert widths[3] == 28  # a 1-byte partition stays visible
    assert abs(widths[1] / widths[2] - 400 / 499) < 1e-9 and abs(widths[0] / widths[1] - 100 / 400) < 1e-9
    assert abs(sum(widths) - 1000) < 1e-6
    assert all(abs(a.rect.right() - b.rect.left()) < 1e-6 for a, b in zip(blocks, blocks[1:], strict=False))
    assert all(b.rect.top() == 0 and b.rect.height() == 50 for b in blocks)


def test_overlapping_and_oversized_volumes_are_drawn_not_trusted() -> None:
    blocks = layout_blocks([volume(1, 0, 600), volume(2, 500, 1000)], 1000, QRectF(0, 0, 300, 40), least=10)
    assert [b.overlap for b in blocks] == [False, True]
    assert [b.length for b in blocks] == [600, 900]  # the overlapped part is drawn once; the scale grows to 1500
    assert abs(blocks[0].rect.width() - 300 * 600 / 1500) < 1e-6
    many = layout_blocks([volume(n, n, 1) for n in range(2000)], 2000, QRectF(0, 0, 512, 10), least=MIN_BLOCK)
    assert len(many) == 256 + 1  # drawn blocks are capped (the tree lists the volumes); the rest is one gap


def test_volume_kinds_colour_filesystems_and_mark_encryption() -> None:
    assert volume_kind(volume(1, 0, 1, filesystem={"type": "ext4"})) == "ext4"
    assert volume_kind(volume(1, 0, 1, container={"type": "crypto_LUKS"})) == "encrypted"
    assert volume_kind(volume(1, 0, 1, container={"type": "BitLocker"})) == "encrypted"
    assert volume_kind(volume(1, 0, 1, filesystem={"type": "strange"})) == "other"
    assert volume_kind(volume(1, 0, 1)) == "empty"
    assert "encrypted" in describe(volume(1, 0, 1, container={"type": "luks2"}), 0, 1)


def test_hostile_strings_are_escaped_and_capped_in_blocks_tree_and_messages(qtbot: Any) -> None:
    hostile = volume(1, 0, MIB, filesystem={"type": HOSTILE, "label": HOSTILE}, os={"name": HOSTILE})
    hostile["name"] = HOSTILE
    lines = describe(hostile, 0, MIB)
    cells = [
        cell
        for node in walk(layer_nodes({"partition_table": {"type": HOSTILE}, "volumes": [hostile]}))
        for cell in node.cells
    ]
    for text in [*lines, *cells]:
        assert not any(ch in text for ch in "\x1b\u202e\x07"), text[:80]
        assert len(text) <= 1100
    assert "\\x1b[31mred\\u202egnp.exe\\x07" in lines[0] and "L" * (LABEL_CAP + 1) not in "".join(lines)
    page = GuestPage()
    qtbot.addWidget(page)
    policy = Policy()
    page.show_state(
        PageState(
            Entry("x.raw", state="done"),
            {"verdict": "accept", "guest": {"unavailable": HOSTILE}},
            False,
            policy,
            [],
            False,
        )
    )
    message = page.bar.message.text()
    assert message.startswith("Guest view unavailable: \\x1b[31m") and len(message) < 400
    assert page.bar.message.textFormat() == Qt.TextFormat.PlainText
    assert page.layout_view.isHidden() and page.model.rowCount() == 0


def _gpt_image(folder: Path) -> Path:
    path = folder / "gpt-disk.raw"
    path.write_bytes(gpt([(EFI_SYSTEM, 2048, 4095, "EFI system"), (LINUX_FS, 4096, 14335, "root")]))
    return path


def _recording(window: MainWindow) -> list[inspector.Request]:
    seen: list[inspector.Request] = []

    async def record(request: inspector.Request) -> dict[str, Any]:
        seen.append(request)
        return await inspect_in_process(request)

    window.session.inspect_fn = record
    return seen


def test_guest_tab_loads_on_demand_and_a_block_selects_its_field_and_bytes(
    fast_window: MainWindow, qtbot: Any, tmp_path: Path
) -> None:
    seen = _recording(fast_window)
    fast_window.settings.guest_budget = 2 * MIB
    fast_window.open_paths([str(_gpt_image(tmp_path))], remember=False)
    (entry,) = wait_done(qtbot, fast_window, 1)
    assert "guest" not in entry.report and not seen[-1].guest  # the header parse alone, until the tab is opened
    fast_window.tabs.setCurrentWidget(fast_window.guest)
    assert entry in fast_window.session.loads  # asked for by opening the tab
    qtbot.waitUntil(lambda: seen[-1].guest, timeout=WAIT_MS)
    assert seen[-1].guest_budget == 2 * MIB
    qtbot.waitUntil(lambda: "guest" in (entry.report or {}) and entry not in fast_window.session.loads, timeout=WAIT_MS)
    page = fast_window.guest
    qtbot.waitUntil(lambda: page.layout_view.isVisible(), timeout=WAIT_MS)
    blocks = page.layout_view.blocks()
    assert [b.volume["name"] for b in blocks if b.volume] == ["EFI system", "root"]
    assert blocks[0].volume is None  # the first MiB before partition 1: unallocated
    assert page.model.rowCount() == 3  # the partition table and two volumes
    efi = next(b for b in blocks if b.volume and b.volume["index"] == 1)
    qtbot.mouseClick(page.layout_view, Qt.MouseButton.LeftButton, pos=efi.rect.center().toPoint())
    field = fast_window.fields.current_field()
    assert field is not None and field["name"] == "entry 1" and field["offset"] == 1024  # its GPT entry, read
    assert fast_window.fields.hex.field == (1024, 1024 + 128)
    assert fast_window.fields.current_bytes() is not None
    assert page.tree.currentIndex().data().startswith("Volume 1")
    assert page.layout_view.selected is not None and page.layout_view.selected.volume is efi.volume
    root = page.model.index_of(page.model.nodes()[2])  # a row of the tree selects its block, and its field
    page.tree.setCurrentIndex(root)
    assert page.layout_view.selected is not None and page.layout_view.selected.volume["name"] == "root"
    assert fast_window.fields.current_field()["offset"] == 1024 + 128
    assert fast_window.tabs.currentWidget() is page  # a click selects; a double-click shows the fields
    qtbot.mouseDClick(page.layout_view, Qt.MouseButton.LeftButton, pos=efi.rect.center().toPoint())
    assert fast_window.tabs.currentWidget() is fast_window.fields
    assert fast_window.fields.current_field()["offset"] == 1024
    fast_window.reinspect()  # an inspection again keeps the guest view that was asked for
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=WAIT_MS)
    assert seen[-1].guest


def test_guest_load_shows_busy_and_can_be_cancelled(fast_window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    fast_window.open_paths([str(_gpt_image(tmp_path))], remember=False)
    (entry,) = wait_done(qtbot, fast_window, 1)
    never = asyncio.Event()

    async def hang(request: inspector.Request) -> dict[str, Any]:
        await never.wait()
        raise AssertionError("not reached")

    fast_window.session.inspect_fn = hang
    fast_window.tabs.setCurrentWidget(fast_window.guest)
    bar = fast_window.guest.bar
    assert entry in fast_window.session.loads and bar.busy.isVisible() and bar.cancel.isVisible()
    assert bar.message.text() == READING
    qtbot.mouseClick(bar.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: entry not in fast_window.session.loads, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not bar.busy.isVisible(), timeout=WAIT_MS)
    assert "guest" not in entry.extras and "guest" not in entry.report
    assert bar.action.isVisible() and entry not in fast_window.session.loads  # not asked for again unbidden
    fast_window.session.inspect_fn = inspect_in_process
    qtbot.mouseClick(bar.action, Qt.MouseButton.LeftButton, pos=QPoint(4, 4))
    qtbot.waitUntil(lambda: "guest" in (entry.report or {}), timeout=WAIT_MS)


def test_an_engine_without_a_guest_view_is_asked_once(fast_window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    seen: list[inspector.Request] = []

    async def no_guest(request: inspector.Request) -> dict[str, Any]:
        seen.append(request)
        report = await inspect_in_process(request)
        report.pop("guest", None)
        return report

    fast_window.session.inspect_fn = no_guest
    fast_window.open_paths([str(_gpt_image(tmp_path))], remember=False)
    (entry,) = wait_done(qtbot, fast_window, 1)
    fast_window.tabs.setCurrentWidget(fast_window.guest)
    qtbot.waitUntil(lambda: len(seen) == 2 and entry not in fast_window.session.loads, timeout=WAIT_MS)
    bar = fast_window.guest.bar
    qtbot.waitUntil(lambda: not bar.busy.isVisible(), timeout=WAIT_MS)
    fast_window.tabs.setCurrentWidget(fast_window.overview)
    fast_window.tabs.setCurrentWidget(fast_window.guest)
    assert len(seen) == 2 and entry not in fast_window.session.loads  # no loop of requests
    assert bar.message.text() == "The guest disk has not been read." and bar.action.isVisible()


def test_guest_view_through_the_sandboxed_engine(window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    """The window's own path: the guest option reaches a real engine child of the fork server."""
    window.open_paths([str(_gpt_image(tmp_path))], remember=False)
    (entry,) = wait_done(qtbot, window, 1)
    window.tabs.setCurrentWidget(window.guest)
    qtbot.waitUntil(lambda: "guest" in (entry.report or {}) and entry not in window.session.loads, timeout=WAIT_MS)
    volumes = entry.report["guest"]["volumes"]
    assert [(v["index"], v["start"], v["name"]) for v in volumes] == [
        (1, 2048 * 512, "EFI system"),
        (2, 4096 * 512, "root"),
    ]
    assert entry.report["sandbox"] and "test stand-in" not in str(entry.report["sandbox"])
    qtbot.waitUntil(lambda: len([b for b in window.guest.layout_view.blocks() if b.volume]) == 2, timeout=WAIT_MS)
