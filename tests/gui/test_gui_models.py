"""The Qt item models under qtmodeltester, and what their cells show for hostile image strings."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.builders import qcow2, vmdk
from tests.helpers import inspect_file
from workbench.host.validate import validate
from workbench.policy.policy import Policy, apply
from workbench.render.textsafe import printable
from workbench.ui.qtmodels.field_tree_model import FieldFilterProxy, FieldTreeModel, value_text
from workbench.ui.qtmodels.findings_model import FindingsModel
from workbench.ui.qtmodels.image_list_model import DECLARED, Entry, ImageListModel
from workbench.ui.qtmodels.node_model import walk
from workbench.ui.qtmodels.property_model import PropertyModel, overview_nodes, security_nodes
from workbench.ui.qtmodels.references_model import ReferencesModel, allowed_status

HOSTILE = "/etc/\x1b[31mpasswd\u202e<b>bold</b>\n"


def _report(path: Path, data: bytes, declared: str) -> dict[str, Any]:
    path.write_bytes(data)
    return apply(validate(inspect_file(path, declared)), Policy())


@pytest.fixture
def backing_report(tmp_path: Path) -> dict[str, Any]:
    return _report(tmp_path / "b.qcow2", qcow2.qcow2(1 << 30, backing=HOSTILE, backing_format="raw"), "qcow2")


def test_field_tree_model_passes_the_model_tester(qtmodeltester: Any, backing_report: dict[str, Any]) -> None:
    model = FieldTreeModel()
    model.set_fields(backing_report["fields"])
    qtmodeltester.check(model)
    proxy = FieldFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_needle("CLUSTER_BITS")
    qtmodeltester.check(proxy)
    header = proxy.index(0, 0)
    assert proxy.rowCount(header) == 1
    assert proxy.index(0, 0, header).data() == "cluster_bits"


def test_filter_matches_values_case_insensitively(backing_report: dict[str, Any]) -> None:
    model = FieldTreeModel()
    model.set_fields(backing_report["fields"])
    proxy = FieldFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_needle("PASSWD")
    shown, stack = [], [proxy.index(r, 0) for r in range(proxy.rowCount())]
    while stack:
        index = stack.pop()
        shown.append((index.data(), index.siblingAtColumn(1).data()))
        stack.extend(proxy.index(r, 0, index) for r in range(proxy.rowCount(index)))
    leaves = [(name, value) for name, value in shown if "passwd" in value]
    assert leaves, shown
    assert all(name != "cluster_bits" for name, _ in shown)


def test_field_cells_escape_control_and_bidi_characters(backing_report: dict[str, Any]) -> None:
    model = FieldTreeModel()
    model.set_fields(backing_report["fields"])
    node = next(n for n in walk(model.nodes()) if "passwd" in str(n.payload["value"]))
    shown = node.cells[1]
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in shown), shown
    assert shown.startswith("/etc/\\x1b[31mpasswd") and shown.endswith("<b>bold</b>\\x0a")
    assert shown == printable(node.payload["value"], 300)


def test_node_at_picks_the_smallest_deepest_field(backing_report: dict[str, Any]) -> None:
    model = FieldTreeModel()
    model.set_fields(backing_report["fields"])
    node = model.node_at(0x14)
    assert node is not None
    assert node.payload["name"] == "cluster_bits"
    assert (node.payload["offset"], node.payload["size"]) == (0x14, 4)
    assert model.node_at(1 << 40) is None


def test_value_text_shows_integers_in_decimal_and_hex() -> None:
    assert value_text(65536) == "65536 (0x10000)"
    assert value_text(3) == "3"
    assert value_text(True) == "yes"
    assert value_text(None) == ""


def test_findings_model_orders_worst_first(qtmodeltester: Any, backing_report: dict[str, Any]) -> None:
    model = FindingsModel()
    model.set_findings(backing_report["findings"])
    qtmodeltester.check(model)
    severities = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    assert model.index(0, 1).data() == "Image names a backing (parent) file"


def test_references_model_and_allowed_folders(qtmodeltester: Any, tmp_path: Path) -> None:
    report = _report(tmp_path / "x.vmdk", vmdk.demo_host_file(), "vmdk")
    model = ReferencesModel()
    model.set_references(report["path"], report["references"], [str(tmp_path)])
    qtmodeltester.check(model)
    assert model.index(0, 1).data() == "/etc/shadow"
    assert model.index(0, 3).data().startswith("no: /etc/shadow is outside them")


@pytest.mark.parametrize(
    ("name", "kind", "inside"),
    [
        ("base.qcow2", "path", True),
        ("sub/../base.qcow2", "path", True),
        ("../outside.qcow2", "path", False),
        ("/etc/passwd", "path", False),
        ("C:\\images\\base.vhd", "path", False),
        ("nbd://example.org/disk", "network", False),
        ("json:{}", "pseudo-protocol", False),
    ],
)
def test_allowed_status_is_decided_from_the_text_alone(tmp_path: Path, name: str, kind: str, inside: bool) -> None:
    image = tmp_path / "images" / "child.qcow2"
    ok, why = allowed_status(str(image), {"name": name, "kind": kind}, [str(tmp_path / "images")])
    assert ok is inside, why


def test_property_models(qtmodeltester: Any, backing_report: dict[str, Any]) -> None:
    model = PropertyModel()
    model.set_nodes(overview_nodes(backing_report, "extension"))
    qtmodeltester.check(model)
    rows = {model.index(r, 0).data(): model.index(r, 1).data() for r in range(model.rowCount())}
    assert rows["Verdict"].startswith("REJECT")
    assert rows["Declared format"] == "qcow2 (from the file extension)"
    assert rows["External references"] == "1"
    model.set_nodes(security_nodes(backing_report | {"sandbox": {"rlimits": "on"}}, ["rlimits", "no_new_privs"]))
    qtmodeltester.check(model)
    policy = next(n for n in model.nodes() if n.cells[0] == "Required by policy")
    assert [c.cells for c in policy.children] == [["rlimits", "on"], ["no_new_privs", "missing"]]


def test_image_list_model_edits_the_declared_format(qtmodeltester: Any, backing_report: dict[str, Any]) -> None:
    model = ImageListModel()
    done = Entry("/images/b.qcow2", state="done", report=backing_report)
    model.add([done, Entry("/images/disk.img")])
    qtmodeltester.check(model)
    assert model.index(0, 1).data() == "reject"
    assert model.index(0, DECLARED).data() == "qcow2 (extension)"
    assert model.index(1, DECLARED).data() == "none (probed)"
    changed: list[Entry] = []
    model.declared_changed.connect(changed.append)
    assert model.setData(model.index(0, DECLARED), "raw")
    assert changed == [done] and done.declared == "raw"
    assert model.index(0, DECLARED).data() == "raw (chosen)"


def test_tooltips_show_image_markup_literally(backing_report: dict[str, Any]) -> None:
    model = FieldTreeModel()
    model.set_fields(backing_report["fields"])
    node = next(n for n in walk(model.nodes()) if "passwd" in str(n.payload["value"]))
    tip = model.data(model.index_of(node, 1), Qt.ItemDataRole.ToolTipRole)
    assert "<b>" not in tip and "&lt;b&gt;bold&lt;/b&gt;" in tip
    entries = ImageListModel()
    entries.add([Entry("/images/<img src=x>.qcow2")])
    assert "&lt;img src=x&gt;" in entries.data(entries.index(0, 0), Qt.ItemDataRole.ToolTipRole)


def test_hex_view_rows_gaps_and_overlapping_regions(qtbot: Any) -> None:
    from workbench.ui.hex_view import HexView

    view = HexView()
    qtbot.addWidget(view)
    view.set_regions([(100, b"B" * 5), (0, b"A" * 20)])
    assert view.rows == [(0, 0), (16, 0), (80, -1), (96, 0)]  # 80 bytes not read between the regions
    assert (view.byte_at(19), view.byte_at(20), view.byte_at(50), view.byte_at(104)) == (65, None, None, 66)
    assert view.bytes_at(98, 4) is None and view.bytes_at(100, 5) == b"BBBBB"
    view.set_regions([(0, b"x" * 32), (8, b"y" * 4), (30, b"z" * 4)])  # overlaps an engine never sends
    starts = [start for start, kind in view.rows if kind == 0]
    assert starts == sorted(set(starts)) == [0, 16, 32]
    view.set_regions([])
    assert view.rows == [] and view.bytes_at(0, 1) is None


def test_idle_collector_moves_full_collections_out_of_busy_periods(qapp: Any) -> None:
    import gc

    from workbench.ui.session import IdleCollector

    saved = gc.get_threshold()
    busy = [True]
    collector = IdleCollector(lambda: busy[0])
    try:
        assert gc.get_threshold()[2] > 1_000_000
        while gc.get_count()[2] < IdleCollector.PENDING:
            gc.collect(1)  # middle-generation collections, each counted towards the next full one
        assert not collector.check()  # busy, not overdue
        busy[0] = False
        assert collector.check()
        assert gc.get_count()[2] == 0
    finally:
        collector.stop()
    assert gc.get_threshold() == saved
