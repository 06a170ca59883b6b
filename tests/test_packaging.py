"""Desktop integration files and the frozen build's runtime hook (the bundle itself: packaging/smoke.sh)."""

from __future__ import annotations

import configparser
import os
import runpy
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
DESKTOP = RESOURCES / "workbench.desktop"
METAINFO = RESOURCES / "io.github.workbench.DiskImageWorkbench.metainfo.xml"
HOOK = ROOT / "packaging" / "pyi_rth_workbench_qt.py"
MIME_TYPES = {
    "application/x-qemu-disk",
    "application/x-vmdk-disk",
    "application/x-vhd-disk",
    "application/x-vhdx-disk",
    "application/x-vdi-disk",
    "application/x-raw-disk-image",
}
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def tool(name: str, package: str) -> str:
    """The validators are required, never skipped: CI installs them (Debian ``package``)."""
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: apt-get install {package}")
    return found


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def test_desktop_file_validates_without_remarks() -> None:
    result = subprocess.run([tool("desktop-file-validate", "desktop-file-utils"), str(DESKTOP)], capture_output=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_desktop_file_opens_disk_images_with_the_executable() -> None:
    entry = desktop_entry()
    assert entry["Exec"] == "workbench %F"
    assert set(entry["MimeType"].rstrip(";").split(";")) == MIME_TYPES
    assert entry["Icon"] == "workbench"


def test_metainfo_validates() -> None:
    result = subprocess.run(
        [tool("appstreamcli", "appstream"), "validate", "--no-net", str(METAINFO)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_metainfo_matches_the_desktop_file() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("launchable[@type='desktop-id']") == DESKTOP.name
    assert {element.text for element in root.iterfind("provides/mediatype")} == MIME_TYPES
    assert root.findtext("provides/binary") == "workbench"
    assert [release.get("version") for release in root.iterfind("releases/release")] == ["0.1.0"]
    screenshot = root.findtext("screenshots/screenshot/image")
    assert screenshot and screenshot.endswith("/docs/screenshots/demo-light.png")


def test_installed_tree_validates(tmp_path: Path) -> None:
    """Laid out as packaging/install-linux.sh installs them, the metainfo finds its desktop file."""
    share = tmp_path / "usr" / "share"
    for folder, source in (("applications", DESKTOP), ("metainfo", METAINFO)):
        (share / folder).mkdir(parents=True)
        shutil.copy(source, share / folder)
    shutil.copytree(RESOURCES / "icons" / "hicolor", share / "icons" / "hicolor")
    result = subprocess.run(
        [tool("appstreamcli", "appstream"), "validate-tree", "--no-net", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "desktop-file-not-found" not in result.stdout


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icon_png_has_its_size(size: int) -> None:
    assert png_size(RESOURCES / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "workbench.png") == (size, size)


@pytest.mark.parametrize(
    ("argv", "plugins"),
    [
        (["workbench", "--demo"], os.path.join("/opt/wb/_internal", "PySide6", "Qt", "plugins")),
        (["workbench", "--engine-worker"], None),
    ],
)
def test_runtime_hook_leaves_the_engine_child_alone(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], plugins: str | None
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "_MEIPASS", "/opt/wb/_internal", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_PLUGIN_PATH", raising=False)
    runpy.run_path(str(HOOK))
    assert os.environ.get("QT_PLUGIN_PATH") == plugins
