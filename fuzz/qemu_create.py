"""``qemu-img create`` for test and fuzz seeds, robust to one known qemu flake.

Creating a LUKS image (or a LUKS-encrypted qcow2) runs qemu's PBKDF benchmark, which gives up with
"Unable to get accurate CPU usage" when getrusage does not advance during its measuring loop; on a busy
machine that happens to a few percent of runs (4 of 60 here). It says nothing about the image, so the
create is tried again; any other failure is raised at once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CPU_USAGE_FLAKE = b"Unable to get accurate CPU usage"
TRIES = 5


def qemu_img_create(cmd: list[str], cwd: Path, timeout: float | None = None) -> None:
    """Run ``cmd`` (a ``qemu-img create`` command line) in ``cwd``; raise CalledProcessError as
    ``subprocess.run(check=True)`` would."""
    for attempt in range(TRIES):
        done = subprocess.run(cmd, capture_output=True, cwd=cwd, timeout=timeout)
        if done.returncode == 0:
            return
        if CPU_USAGE_FLAKE not in done.stderr or attempt == TRIES - 1:
            raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
