"""File > Open URL (issue 20): a remote image inspected by ranges through the window's fork server, shown and
stored under its redacted URL only, and without the actions that need a local file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

from tests.builders import qcow2
from tests.gui.support import WAIT_MS, wait_done
from tests.gui.test_gui_hostile_strings import window_texts
from tests.remote_servers import RangeServer
from workbench.ui import context_menus
from workbench.ui.chain_page import REMOTE
from workbench.ui.main_window import MainWindow
from workbench.ui.open_url import OpenUrlDialog
from workbench.ui.row_actions import action

SECRET = "s3kr1t-Sig-0123456789"


@pytest.fixture
def http() -> Iterator[RangeServer]:
    server = RangeServer()
    yield server
    server.stop()


def signed_url(http: RangeServer, name: str) -> str:
    """A URL with a password and a presigned query: both secrets."""
    return http.url(f"/{name}").replace("//", f"//user:{SECRET}-pw@") + f"?X-Amz-Signature={SECRET}&a=1"


def test_the_dialog_takes_one_remote_object_and_an_endpoint_without_secrets(qtbot: Any) -> None:
    dialog = OpenUrlDialog("http://127.0.0.1:9000")
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled() and dialog.endpoint.text() == "http://127.0.0.1:9000"
    for bad, why in (
        ("/tmp/disk.qcow2", "s3://, https:// or http://"),
        ("file:///tmp/disk.qcow2", "s3://, https:// or http://"),
        ("s3://bucket/prefix/", "triage"),
        ("s3://bucket", "triage"),
    ):
        dialog.url.setText(bad)
        assert not ok.isEnabled() and why in dialog.error.text(), bad
    dialog.url.setText(f"https://h.example/d.qcow2?sig={SECRET}")
    assert ok.isEnabled() and dialog.error.text() == ""
    dialog.endpoint.setText(f"https://key:{SECRET}@minio.example")
    assert not ok.isEnabled() and "credentials" in dialog.error.text()
    dialog.endpoint.setText("")
    assert ok.isEnabled() and dialog.values() == (f"https://h.example/d.qcow2?sig={SECRET}", "")


def test_a_remote_image_is_inspected_and_its_secret_is_shown_nowhere(
    window: MainWindow, qtbot: Any, http: RangeServer, tmp_path: Path
) -> None:
    http.state.objects["/signed.qcow2"] = qcow2.qcow2(1 << 30)
    url = signed_url(http, "signed.qcow2")
    entry = window.open_url(url, "http://127.0.0.1:9")
    (done,) = wait_done(qtbot, window, 1)
    report = done.report or {}
    assert done is entry and report["verdict"] != "failed", report.get("error")
    assert report["format"] == "qcow2" and report["virtual_size"] == 1 << 30
    assert report["path"] == entry.path == http.url("/signed.qcow2?X-Amz-Signature=REDACTED&a=1")
    assert report["declared_format"] == "qcow2" and entry.declared_label() == "qcow2 (from the file extension)"
    assert any(sent.range for sent in http.state.settled())  # read by ranges, through the window's fork server
    assert window.session.server_sandbox()  # the fork server started and made the child
    assert window.windowTitle().startswith("signed.qcow2 — ")

    window.deep_check(entry)  # the deep check of a remote image takes the same ranged path
    qtbot.waitUntil(lambda: entry not in window.session.loads, timeout=WAIT_MS)
    assert isinstance((entry.report or {}).get("deep"), dict)

    menu = context_menus.list_menu(window)  # no local-file actions for a remote entry
    shown = [a.text() for a in menu.actions() if a.text()]
    assert shown == ["Inspect Again", "Copy URL (redacted)", "Remove"]
    action(menu, "Copy URL (redacted)").trigger()
    assert QGuiApplication.clipboard().text() == entry.path
    window.follow_chain()
    assert entry not in window.session.following and entry.chain is None
    window.tabs.setCurrentWidget(window.chain)
    assert not window.chain.follow_button.isEnabled() and window.chain.summary.text() == REMOTE

    exported = window.export_reports(tmp_path / "out.json", [entry.report or {}])
    window._fill_recent()
    settings_file = tmp_path / "config" / "workbench" / "settings.json"
    saved = json.loads(settings_file.read_text())
    assert saved["recent_files"][0] == entry.path and saved["endpoint_url"] == "http://127.0.0.1:9"
    for page in window._report_pages:
        window.tabs.setCurrentWidget(page)
    texts = [*window_texts(window), *(edit.text() for edit in window.findChildren(QLineEdit))]
    texts += [a.text() for a in window.recent_menu.actions()]
    texts += [settings_file.read_text(), exported.read_text(), json.dumps(entry.report), repr(entry)]
    assert SECRET not in "\n".join(texts)
    assert any(entry.path in text for text in texts)


def test_a_recent_url_opens_the_dialog_again(fast_window: MainWindow, monkeypatch: Any) -> None:
    asked: list[str] = []
    monkeypatch.setattr(fast_window, "open_url_dialog", asked.append)
    fast_window.settings.remember("s3://bucket/disk.qcow2")
    fast_window._fill_recent()
    action(fast_window.recent_menu, "s3://bucket/disk.qcow2").trigger()
    assert asked == ["s3://bucket/disk.qcow2"]
