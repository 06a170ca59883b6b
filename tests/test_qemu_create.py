"""The seed maker retries qemu's PBKDF-benchmark flake only, and raises every other failure at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.qemu_create import CPU_USAGE_FLAKE, qemu_img_create


def fake_qemu(tmp_path: Path, failures: int, message: bytes) -> list[str]:
    """A stand-in for ``qemu-img create`` that fails ``failures`` times with ``message`` before it succeeds."""
    counter = tmp_path / "count"
    script = (
        "import pathlib, sys\n"
        f"c = pathlib.Path({str(counter)!r}); n = int(c.read_text()) if c.exists() else 0; c.write_text(str(n + 1))\n"
        f"sys.stderr.buffer.write({message!r}) if n < {failures} else None\n"
        f"sys.exit(1 if n < {failures} else 0)\n"
    )
    return [sys.executable, "-c", script]


def test_the_cpu_usage_flake_is_tried_again(tmp_path: Path) -> None:
    qemu_img_create(fake_qemu(tmp_path, 2, b"qemu-img: x.luks: " + CPU_USAGE_FLAKE), tmp_path)
    assert (tmp_path / "count").read_text() == "3"


def test_any_other_failure_is_raised_at_once(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        qemu_img_create(fake_qemu(tmp_path, 2, b"qemu-img: Invalid parameter 'bogus'"), tmp_path)
    assert b"Invalid parameter" in failed.value.stderr
    assert (tmp_path / "count").read_text() == "1"


def test_a_flake_that_never_ends_is_raised(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        qemu_img_create(fake_qemu(tmp_path, 99, CPU_USAGE_FLAKE), tmp_path)
