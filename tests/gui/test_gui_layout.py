"""Small and large screens (issue 18, item 1): at 1024x640 and 1920x1080 the Image column shows at least
20 characters, every tab is in sight without scrolling, and a long title is cut in the middle with a tooltip."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QRect

from tests.gui.support import wait_done
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.image_list_model import DECLARED, NAME


@pytest.mark.parametrize("size", [(1024, 640), (1920, 1080)])
def test_layout_holds(qtbot: Any, fast_window: MainWindow, size: tuple[int, int]) -> None:
    fast_window.open_demo()
    wait_done(qtbot, fast_window)
    fast_window.resize(*size)
    qtbot.wait(250)  # the column fitting runs on a 100 ms timer
    assert fast_window.size().toTuple() == size
    view = fast_window.list_view
    text_room = view.columnWidth(NAME) - view.iconSize().width() - 16
    assert text_room >= view.fontMetrics().horizontalAdvance("0" * 20)
    bar = fast_window.tabs.tabBar()
    assert not bar.usesScrollButtons()
    assert bar.width() <= fast_window.tabs.width()
    for number in range(bar.count()):
        assert QRect(0, 0, bar.width(), bar.height()).contains(bar.tabRect(number))
        assert fast_window.tabs.tabToolTip(number)
    assert fast_window.declared_box.isVisible() and fast_window.reinspect_button.isVisible()
    assert view.isColumnHidden(DECLARED) == (size[0] < 1280)  # the header's box says it in a narrow window
    right = fast_window.reinspect_button.mapTo(fast_window, fast_window.reinspect_button.rect().topRight()).x()
    assert right <= fast_window.width()


def test_long_title_is_elided_with_the_whole_name_kept(qtbot: Any, fast_window: MainWindow, tmp_path: Any) -> None:
    image = tmp_path / ("a-very-long-image-name-" * 8 + "end.qcow2")
    image.write_bytes(bytes(4096))
    fast_window.open_paths([str(image)])
    wait_done(qtbot, fast_window)
    fast_window.resize(1024, 640)
    qtbot.wait(50)
    title = fast_window.title
    assert title.text() == image.name
    assert "…" in title.elided() and title.elided().endswith("end.qcow2")
    assert len(title.elided()) >= 15
    assert image.name in title.toolTip()
