"""Fixtures of the window tests (pytest-qt, offscreen): ``qloop``, ``window`` (the real engine) and
``fast_window`` (the in-process stand-in); helpers are in :mod:`tests.gui.support`."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import qasync  # noqa: E402

from tests.gui.support import WAIT_MS, inspect_in_process  # noqa: E402
from workbench.policy import settings as settings_mod  # noqa: E402
from workbench.ui.main_window import MainWindow  # noqa: E402


@pytest.fixture(autouse=True)
def collect_qt_garbage() -> Iterator[None]:
    """After each window test (its widgets, loop and qtbot torn down first), destroy what they left in
    reference cycles here, on the main thread. Left to the cyclic collector, Qt objects (qasync's socket
    notifiers, widgets) die whenever some thread allocates next, for example a worker thread of
    ``host.open.off_loop`` in a later test while this thread sits in Qt's processEvents: Qt then frees an
    object it is using and the run dies with SIGSEGV (seen in 3 of 4 full runs before this fixture)."""
    yield
    gc.collect()


@pytest.fixture
def qloop(qapp: Any) -> Iterator[qasync.QEventLoop]:
    """A qasync loop marked as running, so tasks advance whenever qtbot spins the Qt event loop."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    with mock.patch.object(qapp, "exit"):  # stop() would end the application's later waits at once
        loop.stop()
    loop.close()
    asyncio.events._set_running_loop(None)  # set by qasync for a loop created as running
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


@pytest.fixture
def window(qtbot: Any, qloop: Any, tmp_path: Path, monkeypatch: Any) -> Iterator[MainWindow]:
    """The window on the real engine: every image is inspected by a sandboxed child process."""
    yield from _make_window(qtbot, tmp_path, monkeypatch, None)


@pytest.fixture
def fast_window(qtbot: Any, qloop: Any, tmp_path: Path, monkeypatch: Any) -> Iterator[MainWindow]:
    """The window with the in-process stand-in: for tests about the window, not the sandbox."""
    yield from _make_window(qtbot, tmp_path, monkeypatch, inspect_in_process)
