"""Shared fixtures: qemu-img as an oracle, and the engine run in-process on a file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fuzz.qemu_create import qemu_img_create

REQUIRE_QEMU = os.environ.get("WORKBENCH_REQUIRE_QEMU") == "1"


def required_tool(name: str, package: str) -> str:
    """Path of an oracle tool; tests that need it fail instead of skipping when CI requires qemu."""
    found = shutil.which(name)
    if found:
        return found
    if REQUIRE_QEMU:
        pytest.fail(f"{name} is required (WORKBENCH_REQUIRE_QEMU=1) but not installed")
    pytest.skip(f"{name} not installed (install {package}; CI sets WORKBENCH_REQUIRE_QEMU=1)")


@pytest.fixture(scope="session")
def qemu_img() -> str:
    return required_tool("qemu-img", "qemu-utils")


@pytest.fixture
def qemu_create(qemu_img: str, tmp_path: Path) -> Callable[..., Path]:
    """``qemu_create(name, fmt, size, *options)``: a new image made by qemu-img in tmp_path."""

    def create(name: str, fmt: str, size: str = "64M", *options: str, cwd: Path | None = None) -> Path:
        path = tmp_path / name
        cmd = [qemu_img, "create", "-q", "-f", fmt, *options, str(path), size]
        qemu_img_create(cmd, cwd or tmp_path)
        return path

    return create


@pytest.fixture
def qemu_info(qemu_img: str) -> Callable[[Path, str], dict[str, Any]]:
    """``qemu_info(path, fmt)``: qemu-img's JSON for the image read as ``fmt`` (the oracle)."""

    def info(path: Path, fmt: str) -> dict[str, Any]:
        out = subprocess.run(
            [qemu_img, "info", "--output=json", "-U", "-f", fmt, str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)

    return info


@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    """A 64 KiB raw disk of zeros: the plainest image the engine accepts."""
    path = tmp_path / "disk.raw"
    path.write_bytes(b"\0" * 65536)
    return path
