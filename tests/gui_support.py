"""Fixtures and helpers for the window tests (pytest-qt, offscreen).

Fixtures are defined as ``*_fixture`` functions with an explicit ``name``; test modules import them
(``from tests.gui_support import window_fixture  # noqa: F401``) and ask for ``window``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import QMimeData, QUrl  # noqa: E402

from workbench import inspector  # noqa: E402
from workbench.engine.child import sandbox  # noqa: E402
from workbench.host.runner import InProcessRunner  # noqa: E402
from workbench.policy import settings as settings_mod  # noqa: E402
from workbench.samples import qcow2  # noqa: E402
from workbench.ui.main_window import MainWindow  # noqa: E402
from workbench.ui.qtmodels.image_list_model import Entry  # noqa: E402

WAIT_MS = 20_000


# A stand-in for a fully hardened child (like dangerzone's dummy provider): the same inspection, parsed in the
# test process. Window tests are not about the sandbox: its layer line says every layer is on.
STAND_IN = InProcessRunner(dict.fromkeys(sandbox.layer_order(), "on (test stand-in: parsed in the test process)"))


async def inspect_in_process(request: inspector.Request) -> dict[str, Any]:
    """:func:`inspector.inspect` with the in-process stand-in for the child."""
    return await inspector.inspect(request, STAND_IN)


@pytest.fixture(name="qloop")
def qloop_fixture(qapp: Any) -> Iterator[qasync.QEventLoop]:
    """A qasync loop marked as running, so tasks advance whenever qtbot spins the Qt event loop."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    loop._QEventLoop__is_running = False  # stop() would call QApplication.exit(), ending later waits at once
    loop.close()
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


def _make_window(qtbot: Any, tmp_path: Path, monkeypatch: Any, inspect_fn: Any) -> Iterator[MainWindow]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    window = MainWindow(settings_mod.Settings(), inspect_fn=inspect_fn, jobs=2)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.session.cancel()
    qtbot.waitUntil(lambda: not window.session.busy(), timeout=WAIT_MS)
    window.close()
    qtbot.waitUntil(window.session.closed, timeout=WAIT_MS)  # the fork server has exited


@pytest.fixture(name="window")
def window_fixture(qtbot: Any, qloop: Any, tmp_path: Path, monkeypatch: Any) -> Iterator[MainWindow]:
    """The window on the real engine: every image is inspected by a sandboxed child process."""
    yield from _make_window(qtbot, tmp_path, monkeypatch, None)


@pytest.fixture(name="fast_window")
def fast_window_fixture(qtbot: Any, qloop: Any, tmp_path: Path, monkeypatch: Any) -> Iterator[MainWindow]:
    """The window with the in-process stand-in: for tests about the window, not the sandbox."""
    yield from _make_window(qtbot, tmp_path, monkeypatch, inspect_in_process)


def wait_done(qtbot: Any, window: MainWindow, count: int | None = None) -> list[Entry]:
    """Wait until ``count`` images (default: all opened) have their reports."""

    def ready() -> bool:
        entries = window.model.entries
        return (count is None or len(entries) >= count) and all(e.state == "done" for e in entries)

    qtbot.waitUntil(ready, timeout=WAIT_MS)
    return list(window.model.entries)


def url_mime(*urls: QUrl) -> QMimeData:
    mime = QMimeData()
    mime.setUrls(list(urls))
    return mime


def file_mime(*paths: Path) -> QMimeData:
    return url_mime(*(QUrl.fromLocalFile(str(p)) for p in paths))


def write_images(folder: Path) -> dict[str, Path]:
    """A clean qcow2, a qcow2 naming a host backing file, and a raw disk, built by the samples."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {
        "clean": (folder / "clean.qcow2", qcow2.qcow2(1 << 30)),
        "backing": (folder / "backing.qcow2", qcow2.qcow2(1 << 30, backing="/etc/passwd", backing_format="raw")),
        "raw": (folder / "disk.raw", bytes(1 << 16)),
    }
    for path, data in images.values():
        path.write_bytes(data)
    return {name: path for name, (path, _) in images.items()}
