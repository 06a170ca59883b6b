"""Which file systems a batch opens images on without a worker thread (``host/mounts.py``), with findmnt as the oracle
for this machine's own folders, and what ``inspect_path`` does with the answer."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from workbench.host import mounts
from workbench.host import runner as host_runner
from workbench.host.protocol import EngineOptions
from workbench.host.walked import Walked

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
31 27 0:45 / /mnt/share rw,relatime shared:7 master:2 - nfs4 server:/export rw,vers=4.2
32 27 0:46 / /mnt/fuse rw - fuse.sshfs host: rw
33 27 0:47 / /var/lib/docker/x rw - overlay overlay rw,lowerdir=/a
34 27 0:48 / /run rw - tmpfs tmpfs rw
not a mount line
"""


def test_the_table_maps_devices_to_their_file_system_types() -> None:
    table = mounts.parse(MOUNTINFO)
    assert table[os.makedev(254, 0)] == "ext4"
    assert table[os.makedev(0, 45)] == "nfs4"  # past the optional fields
    assert table[os.makedev(0, 46)] == "fuse.sshfs"
    assert len(table) == 6


@pytest.mark.parametrize(
    ("device", "local"),
    [((254, 0), True), ((0, 48), True), ((0, 45), False), ((0, 46), False), ((0, 47), False), ((9, 9), False)],
)
def test_only_local_disks_and_memory_count_as_local(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, device: tuple[int, int], local: bool
) -> None:
    """NFS, FUSE, overlay (its lower layers may be remote) and a device the table does not know keep the threads."""
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTINFO)
    monkeypatch.setattr(mounts, "_mounts", mounts._Mounts())
    monkeypatch.setattr(mounts, "MOUNTINFO", str(table))
    assert mounts.is_local(os.makedev(*device)) is local


@pytest.mark.skipif(shutil.which("findmnt") is None, reason="util-linux's findmnt is the oracle")
def test_this_machines_folders_are_judged_as_findmnt_types_them(tmp_path: Path) -> None:
    for folder in (tmp_path, Path.cwd(), Path("/proc"), Path("/dev/shm")):
        if not folder.exists():
            continue
        device = os.stat(folder).st_dev
        listed = subprocess.run(
            ["findmnt", "-n", "-o", "MAJ:MIN,FSTYPE", "--target", str(folder)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        # one line per mount stacked on that point: the one of the folder's own device is the one it is on
        kinds = [line.split()[1] for line in listed if line.split()[:1] == [f"{os.major(device)}:{os.minor(device)}"]]
        assert len(kinds) == 1, (folder, listed)
        assert mounts.is_local(device) is (kinds[0] in mounts.LOCAL), (folder, kinds)


def _inspect_walked(path: Path, off_loop_calls: list[str]) -> dict[str, Any]:
    st = os.stat(path)
    walked = Walked(str(path.parent), (path.name,), (st.st_dev, st.st_ino))
    original = host_runner.off_loop

    async def counted(call: Any, timeout: float, what: str, *rest: Any) -> Any:
        off_loop_calls.append(what)
        return await original(call, timeout, what, *rest)

    host_runner.off_loop = counted  # type: ignore[assignment]
    try:
        runner = host_runner.InProcessRunner()
        return asyncio.run(host_runner.inspect_path(str(path), "raw", EngineOptions(), False, walked, runner=runner))
    finally:
        host_runner.off_loop = original  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("local", "threaded"),
    [(True, []), (False, ["opening the file", "checking the file after the inspection"])],
    ids=["local disk: on the loop", "elsewhere: worker threads"],
)
def test_a_walked_file_is_opened_and_checked_on_the_loop_only_on_a_local_disk(
    raw_image: Path, monkeypatch: pytest.MonkeyPatch, local: bool, threaded: list[str]
) -> None:
    monkeypatch.setattr(mounts, "is_local", lambda device: local)
    calls: list[str] = []
    report = _inspect_walked(raw_image, calls)
    assert report["format"] == "raw"
    assert calls == threaded
