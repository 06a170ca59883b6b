"""Dropping libvirt domain XML and qemu.conf files: audited off the UI thread, listed with a verdict, findings shown."""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from tests.gui.support import file_mime, wait_done, write_images
from workbench.records import replace
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.image_list_model import DECLARED, FORMAT

DATA = Path(__file__).parents[1] / "data" / "audit"


def _properties(window: MainWindow) -> dict[str, str]:
    model = window.audit.model
    return {model.index(r, 0).data(): model.index(r, 1).data() for r in range(model.rowCount())}


def test_dropped_configuration_files_are_audited_with_their_findings(
    qtbot: Any, fast_window: MainWindow, tmp_path: Path
) -> None:
    xml, conf = (shutil.copy(DATA / name, tmp_path / name) for name in ("domain-risky.xml", "qemu-risky.conf"))
    assert fast_window.handle_drop(file_mime(Path(xml), Path(conf)))
    entries = wait_done(qtbot, fast_window, count=2)
    assert [(e.audit, e.verdict) for e in entries] == [("domain-xml", "reject"), ("qemu-conf", "reject")]
    model = fast_window.model
    assert [model.index(row, FORMAT).data() for row in range(2)] == ["xml", "conf"]
    assert model.index(1, DECLARED).data() == "audit (.conf)"
    assert "audited as libvirt domain XML" in model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert not model.flags(model.index(0, DECLARED)) & Qt.ItemFlag.ItemIsEditable
    assert fast_window.session._done == 0  # no engine child was asked: audits run in a worker thread

    assert fast_window.current is entries[0]
    assert fast_window.report_stack.currentWidget() is fast_window.audit
    assert not fast_window.declared_box.isEnabled() and not fast_window.declared_box.isVisible()
    shown = _properties(fast_window)
    assert shown["Verdict"] == "REJECT: 1 critical, 9 warning, 0 info"
    assert (shown["Audited as"], shown["Domain name"], shown["Disks"]) == ("libvirt domain XML", "risky-guest", "5")
    findings = fast_window.audit.findings
    assert findings.model.headers[-1] == "Location"
    first = [findings.model.index(0, column).data() for column in range(4)]
    assert first[:2] == ["critical", "Backing chain names a network source"]
    assert first[3] == "/domain/devices/disk[2]/backingStore/backingStore"
    findings.tree.setCurrentIndex(findings.model.index(0, 0))
    text = findings.detail.toPlainText()
    assert "Location: /domain/devices/disk[2]/backingStore/backingStore" in text
    assert "Recommendation: A backing level on the network" in text

    fast_window.select(entries[1])
    assert _properties(fast_window)["Syntax errors"] == "1"
    ids = [node.payload["id"] for node in fast_window.audit.findings.model.nodes()]
    assert ids[0] == "format-probing-enabled" and "migration-listen-all" in ids
    fast_window.copy_summary()
    assert QGuiApplication.clipboard().text().startswith(f"{conf}: REJECT (qemu-conf)")


def test_hostile_xml_is_refused_and_shown_as_failed(qtbot: Any, fast_window: MainWindow) -> None:
    fast_window.open_paths([str(DATA / "billion-laughs.xml"), str(DATA / "external-entity.xml")], remember=False)
    laughs, external = wait_done(qtbot, fast_window, count=2)
    assert (laughs.verdict, external.verdict) == ("failed", "failed")
    assert "billion laughs" in _properties(fast_window)["Error"]
    fast_window.select(external)
    assert "external entity" in _properties(fast_window)["Error"]
    assert fast_window.audit.findings.model.rowCount() == 0


def test_strings_from_a_configuration_file_are_escaped(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    xml = tmp_path / "guest.xml"
    disk = "<disk type='file' device='disk'><source file='/home/\u202eevil\u2066.img'/><target dev='vda'/></disk>"
    xml.write_text(f"<domain type='kvm'><name>\u202eevil</name><devices>{disk}</devices></domain>", encoding="utf-8")
    fast_window.add_audits([str(xml)])
    wait_done(qtbot, fast_window, count=1)
    texts = [*_properties(fast_window).values()]
    findings = fast_window.audit.findings.model
    texts += [findings.index(r, c).data() for r in range(findings.rowCount()) for c in range(4)]
    assert _properties(fast_window)["Domain name"] == "\\u202eevil"
    for text in texts:
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text), text


def test_audits_next_to_images_settings_and_inspect_again(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    images = write_images(tmp_path / "images")
    conf = tmp_path / "qemu.conf"
    conf.write_text('migration_address = "0.0.0.0"\n')
    xml = Path(shutil.copy(DATA / "domain-risky.xml", tmp_path / "guest.xml"))
    fast_window.open_paths([str(images["clean"]), str(conf), str(xml)], remember=False)
    audited_conf, audited_xml, clean = wait_done(qtbot, fast_window, count=3)  # audits are listed first
    assert (clean.audit, clean.verdict, audited_conf.audit) == (None, "accept", "qemu-conf")
    assert "migration-listen-all" in {f["id"] for f in audited_conf.report["findings"]}
    fast_window.list_view.selectAll()
    assert fast_window.selected_reports() == [clean.report]  # exports hold disk image reports only

    outside = sum(f["id"] == "disk-outside-image-folders" for f in audited_xml.report["findings"])
    roots = ["/home/alice"]  # the folder of the first disk: allowed folders are image folders too
    fast_window.apply_settings(replace(fast_window.settings, max_virtual_size=1 << 20, allowed_roots=roots))
    wait_done(qtbot, fast_window, count=3)
    assert clean.verdict == "reject" and audited_conf.report["kind"] == "qemu-conf"  # not sent to the engine
    assert sum(f["id"] == "disk-outside-image-folders" for f in audited_xml.report["findings"]) == outside - 1

    conf.write_text((DATA / "qemu-hardened.conf").read_text())
    fast_window.select(audited_conf)
    fast_window.reinspect()
    wait_done(qtbot, fast_window, count=3)
    assert audited_conf.verdict == "accept"
