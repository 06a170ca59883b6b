"""The window's first frame: painted before the event loop exists, with what the command line opened listed
and nothing deferred imported; its inspections, audits and triage tables start once the loop runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.gui.support import wait_done, write_images
from workbench.demo import images as demo
from workbench.ui.main_window import MainWindow

AUDIT_DATA = Path(__file__).parents[1] / "data" / "audit"
# Loaded on first use, after the first frame: the event loop, the inspector and the engine client, the remote clients,
# the dialogs, the triage table, the libvirt audit, the exporters' dialogs and the format parsers.
DEFERRED = (
    "asyncio",
    "qasync",
    "concurrent.futures",
    "ssl",
    "socket",
    "workbench.inspector",
    "workbench.host.protocol",
    "subprocess",
    "workbench.host.runner",
    "workbench.host.sources",
    "workbench.host.remote",
    "http.client",
    "workbench.ui.triage_window",
    "workbench.triage",
    "workbench.ui.settings_dialog",
    "workbench.ui.shortcuts_dialog",
    "workbench.ui.open_url",
    "workbench.audit",
    "xml.etree.ElementTree",
    "uuid",
    "platform",
)
FIRST_FRAME = """
import json, sys
from workbench.app import build_parser, first_frame
app, window, collector = first_frame(build_parser().parse_args(sys.argv[1:]))
print(json.dumps({
    "modules": sorted(sys.modules),
    "painted": window.first_paint.at is not None,
    "shown": window.isVisible() and window.stack.currentIndex() == 1,
    "states": [entry.state for entry in window.model.entries],
    "busy": window.busy(),
}))
"""
TIMING = re.compile(r"^workbench: first paint \d+\.\d ms after process start \(at \d+\.\d{6}\)$", re.M)


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path), **env}
    if not env:
        environment.pop("WORKBENCH_STARTUP_TIMING", None)
    return subprocess.run([sys.executable, *args], env=environment, capture_output=True, text=True, timeout=120)


def test_the_first_frame_lists_the_demo_and_imports_nothing_deferred(tmp_path: Path) -> None:
    run = _run(["-c", FIRST_FRAME, "--demo"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    frame = json.loads(run.stdout)
    assert frame["painted"] and frame["shown"]
    assert frame["states"] and set(frame["states"]) == {"queued"}  # listed, waiting for the event loop
    assert frame["busy"]  # so --quit-after waits for them
    loaded = set(frame["modules"])
    assert "workbench.demo.images" in loaded and "workbench.ui.main_window" in loaded
    assert [name for name in DEFERRED if name in loaded] == []
    assert "workbench.demo.qcow2" not in loaded  # the set is listed in the first frame, built after it


def test_the_listed_demonstration_set_is_the_one_built() -> None:
    assert [(name, declared) for name, declared, _ in demo.images()] == list(demo.LISTED)
    assert [image.path.name for image in demo.listed(Path("/x"))] == [name for name, _ in demo.LISTED]


def test_the_demonstration_set_opened_while_held_is_written_before_it_is_inspected(
    qtbot: Any, window: MainWindow
) -> None:
    """The command line's --demo: listed before it is built; built, then inspected by the engine, on release."""
    window.session.hold()
    entries = window.open_demo()
    assert not any(os.path.exists(entry.path) for entry in entries)
    window.session.release()
    assert all(os.path.exists(entry.path) for entry in entries)
    done = wait_done(qtbot, window, count=len(demo.LISTED))
    assert "failed" not in [entry.verdict for entry in done]  # each file was there to read
    assert done[0].verdict == "accept" and done[1].verdict == "reject"  # clean.qcow2, backing-host-file.qcow2


def test_startup_timing_reports_the_first_paint_on_stderr(tmp_path: Path) -> None:
    timed = _run(["-m", "workbench", "--demo", "--quit-after", "0"], tmp_path, WORKBENCH_STARTUP_TIMING="1")
    assert timed.returncode == 0, timed.stderr[-2000:]
    assert len(TIMING.findall(timed.stderr)) == 1, timed.stderr[-2000:]
    plain = _run(["-m", "workbench", "--demo", "--quit-after", "0"], tmp_path)
    assert plain.returncode == 0 and "first paint" not in plain.stderr


def test_a_held_session_starts_nothing_until_released(qtbot: Any, fast_window: MainWindow, tmp_path: Path) -> None:
    """What the command line opens before the event loop runs waits in the session, then runs in full."""
    session = fast_window.session
    session.hold()
    images = write_images(tmp_path / "images")
    conf = shutil.copy(AUDIT_DATA / "qemu-risky.conf", tmp_path / "qemu-risky.conf")
    write_images(tmp_path / "folder")
    fast_window.open_paths([*map(str, images.values()), str(conf)])
    fast_window.open_paths([str(tmp_path / "folder")])
    (triage,) = fast_window.triages
    qtbot.wait(200)
    assert [e.state for e in fast_window.model.entries if not e.audit] == ["queued"] * 3
    assert not session._workers and not session._tasks and triage.task is None
    assert fast_window.busy()
    session.release()
    entries = wait_done(qtbot, fast_window, count=4)
    assert [(e.audit, e.verdict) for e in entries] == [
        ("qemu-conf", "reject"),  # audits are listed first
        (None, "accept"),
        (None, "reject"),  # its backing file is a host path
        (None, "accept"),
    ]
    qtbot.waitUntil(lambda: triage.state == "done", timeout=20_000)
    assert triage.model.rowCount() == 3


def test_first_paint_calls_back_once_painted(qtbot: Any, fast_window: MainWindow) -> None:
    fast_window.first_paint.wait()
    assert fast_window.first_paint.at is not None
    calls: list[int] = []
    fast_window.first_paint.then(lambda: calls.append(1))  # already painted: at once
    assert calls == [1]
