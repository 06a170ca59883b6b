"""Strings from images never reach the window as control text, and are capped in length: every item view,
label, tooltip and text pane of the main window, on each page (the images: :mod:`tests.test_hostile_strings`).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction, QTextDocument
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import QAbstractItemView, QLabel, QPlainTextEdit

from tests.gui.support import wait_done
from tests.test_hostile_strings import HOSTILE, MAX_LINE, hostile_images, unsafe
from workbench.render.textsafe import printable
from workbench.ui.main_window import MainWindow


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    return folder, hostile_images(folder)


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
