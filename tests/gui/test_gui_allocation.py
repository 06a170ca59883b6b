"""The Allocation view (issue 16): the two strips' kinds, colours and legend from hand-made ``deep`` reports
(the contract of ``workbench.schema.Deep``), hover and click, unavailable messages, the Overview's
"guest data" row, the Deep check through the window's runner path, and the budget settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from tests.gui.support import WAIT_MS, inspect_in_process, wait_done, write_images
from workbench import inspector
from workbench.policy import settings as settings_mod
from workbench.schema import DEFAULT_DEEP_BUDGET, DEFAULT_GUEST_BUDGET
from workbench.ui.allocation_page import NO_DEEP, NOT_RUN, AllocationPage, deep_message
from workbench.ui.allocation_strip import FILE_KINDS, MAP_KINDS, Legend, file_runs, map_kind, map_runs
from workbench.ui.main_window import MainWindow
from workbench.ui.settings_dialog import SettingsDialog
from workbench.ui.size_bar import GUEST_DATA

MIB = 1 << 20
MAP = [  # qemu-img map's shape: each kind once
    {"start": 0, "length": MIB, "present": True, "zero": False, "data": True, "offset": 0x50000},
    {"start": MIB, "length": MIB, "present": True, "zero": True, "data": False},
    {"start": 2 * MIB, "length": 64 << 10, "present": True, "zero": False, "data": True, "compressed": True},
    {"start": 2 * MIB + (64 << 10), "length": MIB, "present": False, "zero": True, "data": False},
    {"start": 3 * MIB + (64 << 10), "length": MIB, "present": False, "zero": False, "data": False},
    {"start": 4 * MIB + (64 << 10), "length": 4096, "present": True, "zero": False, "data": True, "invalid": True},
]
FILE_MAP = [
    {"offset": 0, "length": 0x10000, "kind": "header", "name": "header"},
    {"offset": 0x10000, "length": 0x10000, "kind": "table", "name": "L1 table"},
    {"offset": 0x20000, "length": 0x10000, "kind": "free"},
    {"offset": 0x30000, "length": 0x10000, "kind": "overlap", "name": "\x1b[2JL2 table 0\u202e"},
    {"offset": 0x50000, "length": MIB, "kind": "data"},
    {"offset": 0x150000, "length": 0x1000, "kind": "compressed"},
    {"offset": 0x151000, "length": 0x1000, "kind": "outside", "name": "L2 table 9"},
]
DEEP = {
    "map": MAP,
    "file_map": FILE_MAP,
    "allocated_virtual": MIB + (64 << 10),
    "complete": True,
    "check": {"allocated-clusters": 17, "total-clusters": 80, "leaks": 0, "corruptions": 1},
}


def report(deep: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"verdict": "accept", "virtual_size": 8 * MIB, "file_size": 0x152000, "findings": []}
    if deep is not None:
        out["deep"] = deep
    return out


def test_runs_get_their_kind_and_distinct_colours_with_a_legend(qtbot: Any) -> None:
    assert [map_kind(run) for run in MAP] == ["data", "zero", "compressed", "unallocated", "backing", "invalid"]
    assert [run.kind for run in file_runs(FILE_MAP)] == [
        "header",
        "table",
        "free",
        "overlap",
        "data",
        "compressed",
        "outside",
    ]
    page = AllocationPage()
    qtbot.addWidget(page)
    page.show_deep(report(DEEP))
    assert not page.strips.isHidden()
    guest_colours = {run.kind: page.guest_strip.colour(run.kind).name() for run in page.guest_strip.runs}
    assert len(guest_colours) == 6 and len(set(guest_colours.values())) == 6
    file_colours = {run.kind: page.file_strip.colour(run.kind) for run in page.file_strip.runs}
    assert len(set(c.name() for c in file_colours.values())) == 7
    for kind in ("overlap", "outside"):  # in red
        colour = file_colours[kind]
        assert colour.red() > 180 and colour.green() < 120 and colour.blue() < 120, kind
    guest_legend, file_legend = page.findChildren(Legend)
    assert [text for text, _ in guest_legend.entries] == [text for text, _ in MAP_KINDS.values()]
    assert [colour.name() for _, colour in file_legend.entries] == [QColor(c).name() for _, c in FILE_KINDS.values()]
    assert "from the backing file" in [text for text, _ in guest_legend.entries]


def test_hover_text_is_plain_and_a_run_reports_its_file_offset(qtbot: Any) -> None:
    runs = map_runs(MAP)
    assert runs[0].text == "data: guest 0x0–0x100000 (1.0 MiB); file offset 0x50000" and runs[0].file_offset == 0x50000
    assert runs[4].file_offset is None and runs[4].text.startswith("from the backing file: guest")
    overlap = file_runs(FILE_MAP)[3]
    assert overlap.text.startswith("overlap \\x1b[2JL2 table 0\\u202e: file 0x30000")
    page = AllocationPage()
    qtbot.addWidget(page)
    page.resize(800, 300)
    page.show()
    page.show_deep(report(DEEP))
    clicked: list[int] = []
    page.offset_selected.connect(clicked.append)
    strip = page.file_strip
    data = next(run for run in strip.runs if run.kind == "data")
    assert strip.run_at(strip.run_rect(data).center().x()) is data
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.run_rect(data).center().toPoint())
    assert clicked == [0x50000]


def test_unavailable_and_missing_deep_reports_are_plain_messages(qtbot: Any) -> None:
    hostile = "\x1b]0;pwned\x07" + "x" * 10_000
    message = deep_message(report({"unavailable": hostile}), asked=True)
    assert message.startswith("Deep check unavailable: \\x1b]0;pwned\\x07") and len(message) < 400
    assert deep_message(report(), asked=False) == NOT_RUN
    assert deep_message(report(), asked=True) == NO_DEEP  # an engine without deep inspection (not merged yet)
    assert "guest data actually allocated: 1.1 MiB" in deep_message(report(DEEP), True)
    assert "corruptions 1" in deep_message(report(DEEP), True)
    assert "incomplete" in deep_message(report({**DEEP, "complete": False}), True)
    page = AllocationPage()
    qtbot.addWidget(page)
    page.show_deep(report({"unavailable": hostile}))
    assert page.strips.isHidden() and page.bar.message.textFormat() == Qt.TextFormat.PlainText


def test_overview_adds_guest_data_after_a_deep_check(fast_window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    fast_window.open_paths([str(write_images(tmp_path)["clean"])], remember=False)
    (entry,) = wait_done(qtbot, fast_window, 1)
    bar = fast_window.overview.size_bar
    assert [name for name, _ in bar.sizes] == ["Logical", "File", "Allocated"]
    entry.report["deep"] = DEEP
    fast_window._show_entry(entry)
    assert bar.sizes[-1] == (GUEST_DATA, MIB + (64 << 10))
    assert "guest data actually allocated 1.1 MiB" in bar.accessibleDescription()
    fast_window.tabs.setCurrentWidget(fast_window.allocation)
    page = fast_window.allocation
    header = next(run for run in page.file_strip.runs if run.kind == "header")
    qtbot.mouseClick(
        page.file_strip, Qt.MouseButton.LeftButton, pos=page.file_strip.run_rect(header).center().toPoint()
    )
    field = fast_window.fields.current_field()
    assert field is not None and field["offset"] == 0  # the qcow2 magic, nearest the header run's offset
    assert fast_window.fields.hex.field == (0, field["size"])


def test_deep_check_runs_with_the_deep_budget_and_says_when_the_engine_has_none(
    fast_window: MainWindow, qtbot: Any, tmp_path: Path
) -> None:
    seen: list[inspector.Request] = []

    async def record(request: inspector.Request) -> dict[str, Any]:
        seen.append(request)
        return await inspect_in_process(request)

    fast_window.session.inspect_fn = record
    fast_window.settings.deep_budget = 8 * MIB
    fast_window.open_paths([str(write_images(tmp_path)["clean"])], remember=False)
    (entry,) = wait_done(qtbot, fast_window, 1)
    fast_window.tabs.setCurrentWidget(fast_window.allocation)
    page = fast_window.allocation
    assert page.bar.message.text() == NOT_RUN and page.bar.action.isVisible() and not seen[-1].deep  # on demand only
    qtbot.mouseClick(page.bar.action, Qt.MouseButton.LeftButton, pos=QPoint(4, 4))
    qtbot.waitUntil(lambda: seen[-1].deep, timeout=WAIT_MS)
    assert seen[-1].deep_budget == 8 * MIB and not seen[-1].guest
    qtbot.waitUntil(lambda: entry not in fast_window.session.loads, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.bar.message.text() != "" and not page.bar.busy.isVisible(), timeout=WAIT_MS)
    deep = entry.report.get("deep")
    if deep is None:  # the engine of this branch has no deep inspection yet
        assert page.bar.message.text() == NO_DEEP
    else:
        assert page.bar.message.text() == deep_message(entry.report, True)


def test_budgets_are_settings_with_defaults_limits_and_a_dialog_entry(qtbot: Any, tmp_path: Path) -> None:
    defaults = settings_mod.Settings()
    assert (defaults.guest_budget, defaults.deep_budget) == (DEFAULT_GUEST_BUDGET, DEFAULT_DEEP_BUDGET)
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"guest_budget": "8M", "deep_budget": 1 << 40}))
    loaded = settings_mod.load(path)
    assert loaded.guest_budget == 8 * MIB and loaded.deep_budget == DEFAULT_DEEP_BUDGET  # above the cap: default
    dialog = SettingsDialog(loaded)
    qtbot.addWidget(dialog)
    guest_box, deep_box = (box for box, _ in dialog.budgets.values())
    assert guest_box.text() == "8M" and deep_box.text() == "64M"
    deep_box.setText("2T")
    assert not dialog._validate() and "Deep check budget" in dialog.size_error.text()
    deep_box.setText("128M")
    assert dialog._validate()
    assert dialog.result_settings().deep_budget == 128 * MIB
