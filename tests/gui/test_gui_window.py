"""The window: drops, the field tree linked to the bytes pane, findings, re-inspection, failures.

``window`` inspects with real sandboxed engine children; ``fast_window`` uses the in-process stand-in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QGuiApplication

from tests.gui.support import file_mime, url_mime, wait_done, write_images
from workbench import inspector
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.image_list_model import Entry


def _ids(entry: Entry) -> set[str]:
    return {f["id"] for f in (entry.report or {}).get("findings", [])}


def _by_name(window: MainWindow) -> dict[str, Entry]:
    return {os.path.basename(e.path): e for e in window.model.entries}


def test_empty_window_says_what_to_drop(fast_window: MainWindow) -> None:
    assert fast_window.stack.currentWidget() is fast_window.empty
    assert "Drop disk images or folders here" in fast_window.empty.text()
    assert fast_window.empty.textFormat() == Qt.TextFormat.PlainText


def test_dropped_files_are_inspected_by_the_engine(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "in")
    assert window.handle_drop(file_mime(images["clean"], images["backing"]))
    entries = _by_name(window)
    assert set(entries) == {"clean.qcow2", "backing.qcow2"}
    wait_done(qtbot, window)
    assert entries["clean.qcow2"].verdict == "accept"
    assert entries["backing.qcow2"].verdict == "reject"
    assert "backing-file" in _ids(entries["backing.qcow2"])
    assert entries["clean.qcow2"].report["sandbox"]["rlimits"].startswith("on")  # a real child reported it
    assert window.stack.currentWidget() is window.split
    assert window.current is entries["clean.qcow2"]  # the first dropped image is shown


def _fork_servers() -> list[int]:
    """Our child processes that are engine fork servers (``--zygote`` on their command line)."""
    found = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                if b"--zygote" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                    found.append(int(pid))
            except OSError:
                continue
    return found


def test_one_fork_server_serves_the_window_and_exits_with_it(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "in")
    window.handle_drop(file_mime(images["clean"]))
    wait_done(qtbot, window)
    servers = _fork_servers()
    assert len(servers) == 1
    window.handle_drop(file_mime(images["raw"]))
    entries = wait_done(qtbot, window, 2)
    assert _fork_servers() == servers  # the same fork server, not one per inspection
    assert all(e.report["byte_regions"] for e in entries)  # the bytes the hex view needs
    window.close()
    qtbot.waitUntil(window.session.closed, timeout=20_000)
    assert not _fork_servers()


def test_a_dropped_folder_opens_a_triage_table(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "folder" / "nested")
    fast_window.handle_drop(file_mime(tmp_path / "folder"))
    (triage,) = fast_window.triages
    qtbot.waitUntil(lambda: triage.state == "done", timeout=20_000)
    names = sorted(triage.model.index(row, 0).data() for row in range(triage.model.rowCount()))
    assert names == sorted(f"nested/{p.name}" for p in images.values())  # named from the folder dropped
    assert fast_window.model.rowCount() == 0  # the files are in the table, not in the list
    assert fast_window.settings.recent_files == [str(tmp_path / "folder")]


def test_a_remote_url_is_refused_with_a_message(fast_window: MainWindow) -> None:
    assert not fast_window.handle_drop(url_mime(QUrl("https://example.org/disk.qcow2")))
    assert fast_window.model.rowCount() == 0
    assert fast_window.notices.isVisible()
    assert "refused https://example.org/disk.qcow2: only local files" in fast_window.notices.messages[0]


def test_drop_events_are_always_a_copy(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    from PySide6.QtGui import QDropEvent

    images = write_images(tmp_path)
    mime = file_mime(images["raw"])
    event = QDropEvent(
        QPoint(10, 10).toPointF(), Qt.DropAction.MoveAction | Qt.DropAction.CopyAction, mime,
        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    fast_window.dropEvent(event)
    assert event.dropAction() == Qt.DropAction.CopyAction
    assert event.isAccepted()
    wait_done(qtbot, fast_window, count=1)
    assert images["raw"].exists()


def test_selecting_a_field_highlights_its_bytes_and_back(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.add_files([str(images["backing"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.tabs.setCurrentWidget(fast_window.fields)
    page = fast_window.fields
    assert page.hex.regions and page.hex.regions[0][0] == 0
    node = page.model.node_at(0x14)
    assert page.select_node(node)
    assert page.hex.field == (0x14, 0x18)
    assert page.hex.context == (0, node.parent.payload["size"])
    assert page.current_bytes() == (16).to_bytes(4, "big")
    assert "offset 0x14 (20), size 4 bytes" in fast_window.status_field.text()
    page.hex.byte_selected.emit(0x19)  # a click on a byte of the "size" field
    assert page.current_field()["name"] == "size"
    assert page.hex.field == (0x18, 0x20)


def test_clicking_a_byte_in_the_pane_selects_its_field(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.add_files([str(images["clean"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.tabs.setCurrentWidget(fast_window.fields)
    hex_view = fast_window.fields.hex
    qtbot.waitExposed(hex_view)
    row_y = hex_view._line_height() * 1 + 3  # second row: offsets 0x10..0x1f
    point = QPoint(hex_view._byte_x(4) + 2, row_y)  # byte 0x14: cluster_bits
    assert hex_view.offset_at(point) == 0x14
    qtbot.mouseClick(hex_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert fast_window.fields.current_field()["name"] == "cluster_bits"


def test_without_engine_bytes_the_pane_says_so(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.session.inspect_fn = _without_bytes
    fast_window.add_files([str(images["clean"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.tabs.setCurrentWidget(fast_window.fields)
    assert fast_window.fields.hex.regions == []
    assert fast_window.fields.current_bytes() is None


async def _without_bytes(request: inspector.Request) -> dict[str, Any]:
    from tests.gui.support import inspect_in_process

    report = await inspect_in_process(request)
    report["byte_regions"], report["header_bytes"] = [], None
    return report


def test_activating_a_finding_selects_its_field(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.add_files([str(images["backing"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.tabs.setCurrentWidget(fast_window.findings)
    model = fast_window.findings.model
    row = next(r for r in range(model.rowCount()) if model.nodes()[r].payload["id"] == "backing-file")
    finding = model.nodes()[row].payload
    fast_window.findings.tree.activated.emit(model.index(row, 1))
    assert fast_window.tabs.currentWidget() is fast_window.fields
    field = fast_window.fields.current_field()
    assert field["offset"] <= finding["offset"] < field["offset"] + field["size"]
    assert "passwd" in str(field["value"])


def test_filter_then_expand_and_collapse(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.add_files([str(images["clean"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.focus_filter()
    page = fast_window.fields
    qtbot.keyClicks(page.filter, "L1_TABLE")
    proxy = page.proxy
    assert proxy.rowCount() == 1 and proxy.rowCount(proxy.index(0, 0)) == 1
    assert proxy.index(0, 0, proxy.index(0, 0)).data() == "l1_table_offset"
    page.collapse_button.click()
    assert not page.tree.isExpanded(proxy.index(0, 0))
    page.expand_button.click()
    assert page.tree.isExpanded(proxy.index(0, 0))


def test_changing_the_declared_format_inspects_again(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    (entry,) = window.add_files([str(images["clean"])])
    wait_done(qtbot, window, count=1)
    assert "format-mismatch" not in _ids(entry)
    window.declared_box.setCurrentIndex(window.declared_box.findData("vmdk"))
    window.declared_box.activated.emit(window.declared_box.currentIndex())
    assert entry.declared == "vmdk" and entry.state != "done"
    wait_done(qtbot, window, count=1)
    assert entry.report["declared_format"] == "vmdk"
    assert "format-mismatch" in _ids(entry)
    assert entry.verdict == "reject"
    assert window.model.index(0, 3).data() == "vmdk (chosen)"


def test_an_engine_failure_shows_on_its_image_only(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)

    async def flaky(request: inspector.Request) -> dict[str, Any]:
        if request.path.endswith(".raw"):
            raise RuntimeError("engine exploded")
        from tests.gui.support import inspect_in_process

        return await inspect_in_process(request)

    fast_window.session.inspect_fn = flaky
    fast_window.add_files([str(images["raw"]), str(images["clean"])])
    entries = _by_name(fast_window)
    wait_done(qtbot, fast_window, count=2)
    assert entries["disk.raw"].verdict == "failed"
    assert entries["clean.qcow2"].verdict == "accept"
    fast_window.select(entries["disk.raw"])
    overview = fast_window.overview.model
    rows = {overview.index(r, 0).data(): overview.index(r, 1).data() for r in range(overview.rowCount())}
    assert rows["Error"] == "internal error: engine exploded"


def test_a_symlink_is_refused_until_its_target_is_asked_for(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "real")
    link = tmp_path / "link.qcow2"
    link.symlink_to(images["clean"])
    (entry,) = window.add_files([str(link)])
    wait_done(qtbot, window, count=1)
    assert entry.verdict == "failed"
    assert "symbolic link" in entry.report["error"]
    window.follow_link()
    wait_done(qtbot, window, count=1)
    assert entry.verdict == "accept"


def test_copy_value_bytes_and_ticket_summary(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path)
    fast_window.add_files([str(images["backing"])])
    wait_done(qtbot, fast_window, count=1)
    fast_window.tabs.setCurrentWidget(fast_window.fields)
    fast_window.fields.select_offset(0x14)
    clipboard = QGuiApplication.clipboard()
    fast_window.copy_value()
    assert clipboard.text() == "16"
    fast_window.copy_bytes()
    assert clipboard.text() == "00 00 00 10"
    fast_window.copy_summary()
    assert clipboard.text().startswith(f"{images['backing']}: REJECT")
    assert "backing-file" in clipboard.text()


def test_every_view_has_an_accessible_name_and_every_action_a_shortcut(fast_window: MainWindow) -> None:
    from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHeaderView

    popups = {box.view() for box in fast_window.findChildren(QComboBox)}
    views = [v for v in fast_window.findChildren(QAbstractItemView) if not isinstance(v, QHeaderView)]
    unnamed = [type(v).__name__ for v in [*views, fast_window.fields.hex] if v not in popups and not v.accessibleName()]
    assert not unnamed
    # images, overview, fields, data inspector, references, findings, security, chain, guest layers, audited file,
    # audit findings
    assert len(views) - len(popups) == 11
    keys = [a.shortcut().toString() for a in fast_window.actions()]
    assert all(keys), [a.text() for a in fast_window.actions() if a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys))
