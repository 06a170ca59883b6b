"""Which file systems cannot hang the event loop: local disks and memory, told by ``/proc/self/mountinfo``.

Opening an image and checking it again afterwards run on worker threads (``open.off_loop``) because a call into a
network or user-space file system (NFS, SMB, FUSE, ...) can block for as long as its server is away. On a local
disk or in memory they return at once, and a batch pays each hand-off to a thread and back (~0.14 ms of the
parent's CPU per call, measured: ``docs/performance.md``). So a file that a walk found on such a device is opened
and checked on the loop itself; any other device, one the table does not know (a btrfs subvolume, say), and
every platform but Linux keep the threads. The triage walk itself already runs on the loop.
"""

from __future__ import annotations

import os
import sys
import time

# Kernel names of file systems that live on a local block device or in memory. Not ``overlay`` (its lower
# layers may be on NFS), nor anything networked or served from user space (``fuse.*``, ``nfs``, ``cifs``, ``9p``).
LOCAL = frozenset(
    {
        "btrfs",
        "erofs",
        "exfat",
        "ext2",
        "ext3",
        "ext4",
        "f2fs",
        "hfs",
        "hfsplus",
        "iso9660",
        "jfs",
        "msdos",
        "nilfs2",
        "ntfs",
        "ntfs3",
        "ramfs",
        "reiserfs",
        "squashfs",
        "tmpfs",
        "udf",
        "vfat",
        "xfs",
        "zfs",
    }
)
MOUNTINFO = "/proc/self/mountinfo"
MAX_TABLE = 4 << 20  # bytes of the mount table read (thousands of mounts fit)
REFRESH_SECONDS = 5.0  # a table older than this is read again before it answers (mounts come and go)


def parse(text: str) -> dict[int, str]:
    """Device number -> file-system type, from the text of a ``mountinfo`` file (proc(5): the third field is
    ``major:minor``, the type follows the ``-`` that ends the optional fields)."""
    table: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            major, minor = (int(part) for part in fields[2].split(":"))
            kind = fields[fields.index("-", 6) + 1]
        except (IndexError, ValueError):
            continue
        table.setdefault(os.makedev(major, minor), kind)
    return table


class _Mounts:
    def __init__(self) -> None:
        self.table: dict[int, str] = {}
        self.read_at = -REFRESH_SECONDS

    def kind(self, device: int) -> str | None:
        now = time.monotonic()
        if now - self.read_at >= REFRESH_SECONDS:
            self.read_at = now
            try:
                with open(MOUNTINFO, "rb") as file:
                    self.table = parse(file.read(MAX_TABLE).decode("utf-8", "replace"))
            except OSError:
                self.table = {}
        return self.table.get(device)


_mounts = _Mounts()


def is_local(device: int) -> bool:
    """Whether files on ``device`` (an ``st_dev``) are on a local disk or in memory (see the module's note)."""
    return sys.platform.startswith("linux") and _mounts.kind(device) in LOCAL
