"""Helpers of the window tests: the in-process stand-in for the engine child, waiting, drops, images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QUrl

from tests.builders import qcow2
from workbench import inspector
from workbench.engine.child import sandbox
from workbench.host.runner import InProcessRunner
from workbench.ui.main_window import MainWindow
from workbench.ui.qtmodels.image_list_model import Entry

WAIT_MS = 20_000

# A stand-in for a fully hardened child (like dangerzone's dummy provider): the same inspection, parsed in the
# test process. Window tests are not about the sandbox: its layer line says every layer is on.
STAND_IN = InProcessRunner(dict.fromkeys(sandbox.layer_order(), "on (test stand-in: parsed in the test process)"))


async def inspect_in_process(request: inspector.Request) -> dict[str, Any]:
    """:func:`inspector.inspect` with the in-process stand-in for the child."""
    return await inspector.inspect(request, STAND_IN)


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
