"""Exports written from the window and valid in their format; the demonstration set; start-up options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.builders import qcow2
from tests.gui.support import wait_done, write_images
from workbench.app import build_parser, quit_when_idle
from workbench.demo import images as demo
from workbench.render import export
from workbench.ui.main_window import MainWindow

EVIL = "<script>alert(1)</script>[x](http://e.vil)|\x1b[2J"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def reports(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> list[dict[str, Any]]:
    images = write_images(tmp_path / "images")
    evil = tmp_path / "images" / "evil.qcow2"
    evil.write_bytes(qcow2.qcow2(1 << 30, backing=EVIL))
    fast_window.add_files([str(images["clean"]), str(evil)])
    wait_done(qtbot, fast_window, count=2)
    fast_window.list_view.selectAll()
    return fast_window.selected_reports()


def test_json_export_holds_the_selected_reports(fast_window: MainWindow, reports: Any, tmp_path: Path) -> None:
    written = fast_window.export_reports(tmp_path / "out.json")
    loaded = json.loads(written.read_text())
    assert [r["path"] for r in loaded] == [r["path"] for r in reports]
    assert loaded[1]["backing"]["filename"] == EVIL
    assert "\x1b" not in written.read_text()


def test_html_export_escapes_image_strings(fast_window: MainWindow, reports: Any, tmp_path: Path) -> None:
    text = fast_window.export_reports(tmp_path / "out.html").read_text()
    parser = _Collector()
    parser.feed(text)
    assert "script" not in parser.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert any("<script>alert(1)</script>[x](http://e.vil)|\\x1b[2J" in chunk for chunk in parser.text)
    assert "default-src 'none'" in text
    assert parser.tags.count("section") == 2


def test_markdown_export_escapes_markup(fast_window: MainWindow, reports: Any, tmp_path: Path) -> None:
    text = fast_window.export_reports(tmp_path / "out.md").read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\[x\\](http:/\\/e.vil)\\|\\\\x1b\\[2J" in text  # no link, no tag
    assert "http://" not in text
    assert text.count("\n## ") == 2
    assert "**Verdict: REJECT**" in text


def test_unknown_export_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="use .json, .md or .html"):
        export.export([], tmp_path / "out.pdf")


def test_demo_set_in_the_window_with_the_real_engine(qtbot: Any, window: MainWindow) -> None:
    entries = window.open_demo()
    assert len(entries) == len(demo.images()) >= 6
    wait_done(qtbot, window, count=len(entries))
    verdicts = {Path(e.path).name: e.verdict for e in entries}
    ids = {Path(e.path).name: {f["id"] for f in e.report["findings"]} for e in entries}
    assert verdicts["clean.qcow2"] == "accept"
    assert "backing-file" in ids["backing-host-file.qcow2"]
    assert "format-mismatch" in ids["guest-raw-disk.img"]
    assert "external-extent" in ids["host-extent.vmdk"]
    assert "weak-encryption" in ids["aes-encrypted.qcow2"]
    assert next(e for e in entries if e.path.endswith("claims-16TiB.qcow2")).report["virtual_size"] == 16 << 40
    assert window.model.index(0, 3).data() == "qcow2 (demo set)"


def test_start_up_options() -> None:
    args = build_parser().parse_args(["--demo", "--theme", "dark", "--quit-after", "1.5", "a.qcow2", "b.vmdk"])
    assert (args.demo, args.theme, args.quit_after, args.files) == (True, "dark", 1.5, ["a.qcow2", "b.vmdk"])
    assert build_parser().parse_args([]).quit_after is None
    for bad in (["--theme", "blue"], ["--quit-after", "-1"], ["--quit-after", "soon"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


def test_quit_after_waits_for_the_last_inspection(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    states: list[list[str]] = []
    fast_window.add_files([str(p) for p in images.values()])
    assert fast_window.busy()
    quit_when_idle(fast_window, 0.2, lambda: states.append([e.state for e in fast_window.model.entries]), 10)
    qtbot.waitUntil(lambda: bool(states), timeout=5000)
    assert states == [["done", "done", "done"]]


def test_quit_after_zero_quits_at_the_first_idle_check(qtbot: Any, fast_window: MainWindow) -> None:
    """Once idle, ``--quit-after 0`` quits on the same check (every 10 ms), not on one a tick later."""
    checks: list[bool] = []
    busy = fast_window.busy
    fast_window.busy = lambda: checks.append(busy()) or checks[-1]  # type: ignore[method-assign]
    quit_calls: list[int] = []
    timer = quit_when_idle(fast_window, 0, lambda: quit_calls.append(len(checks)))
    assert timer.interval() == 10
    qtbot.waitUntil(lambda: bool(quit_calls), timeout=5000)
    assert quit_calls == [1] and checks == [False]


def test_the_window_quits_by_itself_with_status_zero(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "workbench", "--demo", "--quit-after", "0.2"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "Internal error" not in run.stderr


def test_exceptions_in_slots_and_tasks_are_shown_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sys

    from workbench.app import _install_error_handlers

    shown: list[str] = []

    class Window:
        def notify(self, message: str) -> None:
            shown.append(message)

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    loop = asyncio.new_event_loop()
    try:
        _install_error_handlers(Window(), loop)
        try:
            raise KeyError("slot went wrong")
        except KeyError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        loop.call_exception_handler({"message": "task went wrong", "exception": ValueError("bad")})
    finally:
        loop.close()
    assert shown == [
        "Internal error: KeyError: 'slot went wrong' (details in the log)",
        "Internal error: task went wrong (details in the log)",
    ]
