"""Settings dialog and persistence (in a temporary config folder), policy re-inspection, themes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from tests.gui.support import wait_done, write_images
from workbench.policy import settings as settings_mod
from workbench.records import replace
from workbench.ui.main_window import MainWindow
from workbench.ui.settings_dialog import SettingsDialog, exact_size


def test_settings_dialog_round_trip_is_saved_in_the_config_folder(
    qtbot: Any, fast_window: MainWindow, tmp_path: Path
) -> None:
    dialog = SettingsDialog(fast_window.settings, fast_window)
    qtbot.addWidget(dialog)
    assert dialog.max_size.text() == "4T"
    dialog.max_size.setText("512M")
    dialog.all_formats.setChecked(False)
    for row in range(dialog.formats.count()):
        item = dialog.formats.item(row)
        item.setCheckState(Qt.CheckState.Checked if item.text() in ("qcow2", "raw") else Qt.CheckState.Unchecked)
    dialog.roots.addItem(str(tmp_path / "images"))
    dialog.theme.setCurrentText("dark")
    fast_window.apply_settings(dialog.result_settings())

    stored = tmp_path / "config" / "workbench" / "settings.json"
    raw = json.loads(stored.read_text())
    assert raw["max_virtual_size"] == 512 << 20
    assert raw["allowed_formats"] == ["qcow2", "raw"]
    assert raw["allowed_roots"] == [str(tmp_path / "images")]
    assert raw["theme"] == "dark"
    assert settings_mod.load() == fast_window.settings


def test_a_bad_size_disables_ok(qtbot: Any, fast_window: MainWindow) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    dialog = SettingsDialog(fast_window.settings, fast_window)
    qtbot.addWidget(dialog)
    dialog.max_size.setText("lots")
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "not a size" in dialog.size_error.text()
    assert exact_size(3 << 30) == "3G" and exact_size(1000) == "1000"


def test_the_size_field_is_exact(qtbot: Any, fast_window: MainWindow) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    dialog = SettingsDialog(fast_window.settings, fast_window)
    qtbot.addWidget(dialog)
    dialog.max_size.setText("9007199254742015")  # 2**53 + 1023: a float would make it 2**53 + 1024
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert dialog.result_settings().max_virtual_size == 9007199254742015
    dialog.max_size.setText("1.5G")
    assert dialog.result_settings().max_virtual_size == 3 << 29
    dialog.max_size.setText("1.1G")
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "not a whole number of bytes" in dialog.size_error.text()


def test_a_lower_size_limit_reinspects_open_images(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    (entry,) = fast_window.add_files([str(images["clean"])])
    wait_done(qtbot, fast_window, count=1)
    assert entry.verdict == "accept"
    changed = replace(fast_window.settings, max_virtual_size=1 << 20)
    fast_window.apply_settings(changed)
    wait_done(qtbot, fast_window, count=1)
    assert entry.verdict == "reject"
    assert "virtual-size-limit" in {f["id"] for f in entry.report["findings"]}


def test_allowed_folders_show_in_the_references_view(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.add_files([str(images["backing"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.tabs.setCurrentWidget(fast_window.references)
    model = fast_window.references.model
    assert model.index(0, 3).data() == "no: no allowed folders are set"
    fast_window.apply_settings(replace(fast_window.settings, allowed_roots=["/etc"]))
    wait_done(qtbot, fast_window, count=1)
    assert fast_window.references.model.index(0, 3).data() == "yes: under /etc"


def test_theme_switch_changes_the_palette_and_is_remembered(fast_window: MainWindow) -> None:
    app = QApplication.instance()
    assert fast_window.set_theme("dark") == "dark"
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert fast_window.theme_actions["dark"].isChecked()
    assert fast_window.set_theme("light") == "light"
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    assert settings_mod.load().theme == "light"
    fast_window.set_theme("system")
    assert settings_mod.load().theme == "system"


def test_recent_files_menu_lists_opened_paths(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.open_paths([str(images["raw"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.recent_menu.aboutToShow.emit()
    assert [a.text() for a in fast_window.recent_menu.actions()] == [os.fspath(images["raw"])]


def _layer_item(dialog: SettingsDialog, name: str) -> Any:
    items = [dialog.layers.item(row) for row in range(dialog.layers.count())]
    return next(item for item in items if item.data(Qt.ItemDataRole.UserRole) == name)


OBSERVED = {"landlock": "off: not supported by this kernel", "seccomp": "on", "rlimits": "on"}


def test_settings_say_which_layers_this_machine_has(qtbot: Any, fast_window: MainWindow) -> None:
    dialog = SettingsDialog(fast_window.settings, fast_window, OBSERVED)
    qtbot.addWidget(dialog)
    job, landlock, seccomp = (_layer_item(dialog, name) for name in ("job", "landlock", "seccomp"))
    assert job.text() == "job — not on this system" and not job.flags() & Qt.ItemFlag.ItemIsEnabled
    assert landlock.text().startswith("landlock — off here: off: not supported")
    assert not landlock.flags() & Qt.ItemFlag.ItemIsEnabled
    assert seccomp.text() == "seccomp" and seccomp.flags() & Qt.ItemFlag.ItemIsEnabled
    assert "a|b" in dialog.layers_help.text()


def test_impossible_requirements_are_refused_and_the_notice_goes(qtbot: Any, fast_window: MainWindow) -> None:
    settings = fast_window.settings
    settings.required_layers = ["job", "landlock|seccomp"]
    dialog = SettingsDialog(settings, fast_window, OBSERVED)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    assert dialog.layers_error.text().startswith("Refused: job cannot be on here")
    assert "landlock|seccomp" not in dialog.layers_error.text()  # one alternative is on: possible
    _layer_item(dialog, "job").setCheckState(Qt.CheckState.Unchecked)
    assert ok.isEnabled() and dialog.layers_error.text() == ""
    assert dialog.result_settings().required_layers == ["landlock|seccomp"]


def test_settings_know_the_layers_from_the_fork_server_before_any_image(qtbot: Any, window: MainWindow) -> None:
    """The session's fork server reports the layers it holds when it starts: no image needs to be read first."""
    assert window.model.entries == [] and window.observed_sandbox() is None
    asyncio.ensure_future(window.session.fork_server())
    qtbot.waitUntil(lambda: window.session.server_sandbox() is not None, timeout=20_000)
    observed = window.observed_sandbox()
    assert observed is not None and observed.keys() >= {"seccomp", "rlimits", "no_new_privs"}
    dialog = SettingsDialog(window.settings, window, observed)
    qtbot.addWidget(dialog)
    assert _layer_item(dialog, "seccomp").flags() & Qt.ItemFlag.ItemIsEnabled  # on here, so it can be required
