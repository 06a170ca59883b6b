"""Readability (issue 18, item 7): same-named files told apart, one colour rule for the size line, a
critical reference marked critical, copy confirmations, the shortcuts dialog, About's version, the
symbolic link message, Markdown that keeps "." and "(" readable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QMessageBox

from tests.gui.support import wait_done, write_images
from workbench import __version__
from workbench.render.export import md
from workbench.ui import theme
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.image_list_model import NAME
from workbench.ui.size_bar import SizeBar


def test_same_named_files_show_their_folder(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    one, two = write_images(tmp_path / "one"), write_images(tmp_path / "two")
    fast_window.open_paths([str(one["clean"]), str(two["clean"]), str(one["raw"])])
    model = fast_window.model
    names = [model.index(row, NAME).data() for row in range(model.rowCount())]
    assert names == ["clean.qcow2 — one/", "clean.qcow2 — two/", "disk.raw"]
    fast_window.select(model.entries[1])
    fast_window.remove_selected()
    assert model.index(0, NAME).data() == "clean.qcow2"
    wait_done(qtbot, fast_window)


def test_the_size_line_has_one_colour_rule(qtbot: Any, fast_window: MainWindow) -> None:
    bar = SizeBar()
    qtbot.addWidget(bar)
    text = bar.palette().color(QPalette.ColorRole.WindowText)
    bar.set_sizes(1 << 30, 448 << 10, 448 << 10, 4 << 40)  # a clean sparse image: 2,000 times smaller
    assert bar.note_colour() == text
    bar.set_sizes(16 << 40, 448 << 10, 448 << 10, 4 << 40)
    assert bar.note_colour() == theme.accent("critical")


def test_a_critical_reference_is_marked_critical(qtbot: Any, fast_window: MainWindow) -> None:
    fast_window.open_demo()
    entries = {os.path.basename(e.path): e for e in wait_done(qtbot, fast_window)}
    fast_window.select(entries["backing-host-file.qcow2"])
    fast_window.tabs.setCurrentWidget(fast_window.references)
    assert fast_window.references.model.nodes()[0].icon == "severity-critical"


def test_copy_actions_confirm(qtbot: Any, fast_window: MainWindow) -> None:
    fast_window.open_demo()
    wait_done(qtbot, fast_window)
    fast_window.tabs.setCurrentWidget(fast_window.fields)
    fast_window.fields.select_offset(0)
    fast_window.copy_value()
    assert fast_window.statusBar().currentMessage().startswith("Copied the value of ")
    fast_window.copy_bytes()
    assert fast_window.statusBar().currentMessage().endswith("bytes as hex")
    fast_window.copy_summary()
    assert fast_window.statusBar().currentMessage() == "Copied the summary for a ticket"
    assert QGuiApplication.clipboard().text()


def test_shortcuts_list_both_windows_aligned(qtbot: Any, fast_window: MainWindow) -> None:
    dialog = fast_window.show_shortcuts()
    main, triage = dialog.rows(0), dialog.rows(1)
    assert ("Settings…", "Ctrl+,") in main and ("Export the rows shown", "Ctrl+E") in triage
    assert ("Copy the selected rows as TSV", "Ctrl+C") in triage
    assert dialog.tree.columnCount() == 2  # a column per field: aligned whatever the font
    dialog.close()


def test_about_shows_the_version(qtbot: Any, fast_window: MainWindow) -> None:
    fast_window.show_about()
    box = next(w for w in fast_window.findChildren(QMessageBox) if w.windowTitle() == "About")
    assert f"Disk Image Workbench {__version__}" in box.text()
    box.close()


def test_symlink_refusal_names_the_menu_action(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "in")
    link = tmp_path / "link.qcow2"
    link.symlink_to(images["clean"])
    window.open_paths([str(link)])
    (entry,) = wait_done(qtbot, window)
    assert "Image ▸ Inspect Symbolic Link Target" in entry.report["error"]
    assert "--follow-symlinks" not in entry.report["error"]


def test_markdown_keeps_plain_punctuation() -> None:
    assert md("qcow2 (probed). 1.5 GiB!") == "qcow2 (probed). 1.5 GiB!"
    assert md("# not a heading") == "\\# not a heading" and md("1. not a list") == "1\\. not a list"
    assert md("see www.evil.example or https://x") == "see www\\.evil.example or https:/\\/x"


def test_dark_unchecked_boxes_are_visible(qtbot: Any, fast_window: MainWindow) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QListWidget, QListWidgetItem

    fast_window.set_theme("dark")
    box = QListWidget()
    qtbot.addWidget(box)
    item = QListWidgetItem("unticked")
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Unchecked)
    box.addItem(item)
    box.resize(200, 80)
    box.show()
    image = box.grab().toImage()
    row = box.visualItemRect(item)
    base = box.palette().color(QPalette.ColorRole.Base)

    def luminance(colour: Any) -> float:
        return 0.2126 * colour.redF() + 0.7152 * colour.greenF() + 0.0722 * colour.blueF()

    contrast = max(
        abs(luminance(image.pixelColor(x + box.frameWidth(), y + box.frameWidth())) - luminance(base))
        for x in range(row.left(), row.left() + 24)
        for y in range(row.top(), row.bottom())
    )
    assert contrast > 0.25
    fast_window.set_theme("light")
