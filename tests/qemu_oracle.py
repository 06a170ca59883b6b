"""qemu-img as the consumer oracle: the files it tries to open for an image, seen under ``strace -f``.

An image is copied into a throwaway folder beside a clean qcow2 baseline; ``qemu-img info --backing-chain``
runs on both and every path the hostile run touches that the baseline did not (its own name aside) is a
file qemu would open because of the image. :func:`assert_consumer_parity` then requires each of them to be
named by one of the report's references and the verdict to be ``reject`` (the issue 13 rule).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.builders import qcow2 as build

TRACED = "trace=open,openat,openat2,stat,lstat,newfstatat,statx,access,faccessat,faccessat2,readlink,readlinkat"
_CALL = re.compile(r"^\d+\s+(\w+)\((?:AT_FDCWD|-?\d+)?,?\s*\"((?:[^\"\\]|\\.)*)\"")
# qemu loads a block driver module (block-gluster.so...) for some protocol names: never a reference
_RUNTIME = ("/usr/lib/", "/lib/", "/usr/share/", "/etc/ld.so", "/proc/", "/sys/", "/dev/")


def _touched(qemu_img: str, image: Path, fmt: str, trace: Path) -> set[str]:
    command = ["strace", "-f", "-qq", "-s", "4096", "-e", TRACED, "-o", str(trace)]
    command += [qemu_img, "info", "--backing-chain", "-U", "--output=json", "-f", fmt, str(image)]
    subprocess.run(command, capture_output=True, cwd=image.parent, timeout=60, check=False)
    paths = set()
    for line in trace.read_text(errors="replace").splitlines():
        match = _CALL.match(line)
        if match:
            raw = match.group(2).encode().decode("unicode_escape")
            paths.add(os.path.normpath(os.path.join(image.parent, raw)))
    return paths


def qemu_attempts(qemu_img: str, data: bytes, fmt: str, folder: Path) -> tuple[Path, set[str]]:
    """Write ``data`` to ``folder/image.FMT`` and return it with the other paths qemu-img tries to open."""
    folder.mkdir(parents=True, exist_ok=True)
    image, clean = folder / f"image.{fmt}", folder / "baseline.qcow2"
    image.write_bytes(data)
    clean.write_bytes(build.qcow2(1 << 20))
    base = _touched(qemu_img, clean, "qcow2", folder.parent / f"{folder.name}-baseline.trace")
    seen = _touched(qemu_img, image, fmt, folder.parent / f"{folder.name}.trace")
    ignored = {str(image), str(clean), str(folder)}
    return image, {p for p in seen - base if p not in ignored and not p.startswith(_RUNTIME)}


def _named(path: str, names: list[str], folder: Path) -> bool:
    """Whether a reference names ``path``: whole, or as one ``:``-separated part (blkdebug:conf:image)."""
    for name in names:
        if path in name:
            return True
        for part in {name, *name.split(":")}:
            if part and os.path.normpath(os.path.join(folder, part)) == path:
                return True
    return False


def inspect_cli(image: Path, fmt: str) -> tuple[int, dict[str, Any]]:
    """``workbench inspect --json -f FMT`` through the sandboxed engine: exit code and report."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(image.parent / "config")}
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "inspect", "--json", "-f", fmt, str(image)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def assert_consumer_parity(qemu_img: str, data: bytes, fmt: str, folder: Path) -> tuple[set[str], dict[str, Any]]:
    """Every file qemu-img tries to open is among the references, and such an image is rejected."""
    image, attempts = qemu_attempts(qemu_img, data, fmt, folder)
    code, report = inspect_cli(image, fmt)
    names = [ref["name"] for ref in report["references"]]
    missed = {path for path in attempts if not _named(path, names, folder)}
    assert not missed, f"qemu tries {sorted(missed)}; the workbench reports {names}"
    if attempts:
        assert report["verdict"] == "reject" and code == 20, (report["verdict"], report["findings"])
    return attempts, report
