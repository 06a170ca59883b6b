"""A bounded path lookup on ext2/3/4, enough to read ``/etc/os-release`` and ``/etc/hostname``.

Every walk is a loop with a cap, never recursion: extent trees are walked with an explicit stack to at
most MAX_DEPTH levels and MAX_NODES nodes (a block seen twice is a loop), directories are read block by
block as linear entry lists (an htree's index blocks look like empty entries, so they are skipped),
symbolic links are followed at most MAX_LINKS times, and every inode number is checked against the
inode count before its table is read.
"""

from __future__ import annotations

from typing import Any

from ..guest_disk import View
from ..inspection import Inspection
from .ext import INCOMPAT_64BIT, unpack

ROOT_INODE = 2
MAX_DEPTH = 5  # the ext4 maximum extent-tree depth
MAX_NODES = 64  # extent-tree nodes read per file
MAX_FILE = 64 << 10  # bytes of one file or directory read
MAX_COMPONENTS = 32  # path components walked per lookup, symbolic links included
MAX_LINKS = 8
S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0xF000, 0x4000, 0x8000, 0xA000
EXTENTS_FL, INLINE_DATA_FL = 0x80000, 0x10000000
EXTENT_MAGIC = 0xF30A
DIRECT_BLOCKS = 12


class LookupStopped(Exception):
    """The lookup stopped: the message says where and why (it becomes a finding)."""


class ExtFiles:
    """Inodes, extents and directories of one ext filesystem, read through a view."""

    def __init__(self, view: View, values: dict[str, Any]) -> None:
        self.view = view
        self.block = 1024 << values["log_block_size"]
        self.inodes = values["inodes_count"]
        self.per_group = values["inodes_per_group"]
        self.inode_size = values["inode_size"] if values["rev_level"] else 128
        wide = values["feature_incompat"] & INCOMPAT_64BIT
        self.desc_size = values["desc_size"] if wide and values["desc_size"] >= 64 else 32
        self.gdt = (values["first_data_block"] + 1) * self.block
        if not self.per_group or self.inode_size < 128 or self.desc_size > 1024:
            raise LookupStopped(f"inodes per group {self.per_group}, inode size {self.inode_size}: not readable")

    def inode(self, number: int) -> bytes:
        if not 1 <= number <= self.inodes:
            raise LookupStopped(f"inode number {number} is outside 1..{self.inodes}")
        group, index = divmod(number - 1, self.per_group)
        desc = self.view.read(self.gdt + group * self.desc_size, self.desc_size)
        table = unpack("<I", desc, 8)[0] | (unpack("<I", desc, 0x28)[0] << 32 if self.desc_size >= 64 else 0)
        offset = table * self.block + index * self.inode_size
        data = self.view.read(offset, min(self.inode_size, 256))
        if len(data) < 128:
            raise LookupStopped(f"inode {number} at volume offset {offset} is past the end of the volume")
        return data

    def _extents(self, root: bytes, number: int) -> list[tuple[int, int, int]]:
        """Leaf extents ``(logical block, physical block, count)`` of an inode's extent tree."""
        leaves: list[tuple[int, int, int]] = []
        stack: list[tuple[bytes, int]] = [(root, MAX_DEPTH + 1)]
        seen: set[int] = set()
        nodes = 0
        while stack:
            node, allowed = stack.pop()
            magic, entries, _, depth = unpack("<HHHH", node, 0)
            if magic != EXTENT_MAGIC or depth >= allowed:
                raise LookupStopped(f"inode {number}: extent node with magic 0x{magic:04x}, depth {depth} is invalid")
            for at in range(12, 12 + 12 * min(entries, (len(node) - 12) // 12), 12):
                if depth == 0:
                    logical, length, hi, lo = unpack("<IHHI", node, at)
                    leaves.append((logical, hi << 32 | lo, length if length <= 32768 else length - 32768))
                    continue
                _, lo, hi = unpack("<IIH", node, at)
                child = hi << 32 | lo
                nodes += 1
                if child in seen or nodes > MAX_NODES:
                    raise LookupStopped(f"inode {number}: extent tree loops or has more than {MAX_NODES} nodes")
                seen.add(child)
                stack.append((self.view.read(child * self.block, self.block), depth))
        return sorted(leaves)

    def _blocks(self, data: bytes, number: int, size: int) -> list[tuple[int, int, int]]:
        flags = unpack("<I", data, 32)[0]
        if flags & EXTENTS_FL:
            return self._extents(data[40:100], number)
        direct = [(i, unpack("<I", data, 40 + 4 * i)[0], 1) for i in range(DIRECT_BLOCKS)]
        indirect = unpack("<I", data, 40 + 4 * DIRECT_BLOCKS)[0]
        if indirect and size > DIRECT_BLOCKS * self.block:
            table = self.view.read(indirect * self.block, self.block)
            direct += [(DIRECT_BLOCKS + i, unpack("<I", table, 4 * i)[0], 1) for i in range(len(table) // 4)]
        return direct

    def content(self, number: int, data: bytes, cap: int = MAX_FILE) -> bytes:
        """The file's bytes (at most ``cap``; holes as zeros)."""
        size = unpack("<I", data, 4)[0] | unpack("<I", data, 108)[0] << 32
        size = min(size, cap)
        if unpack("<I", data, 32)[0] & INLINE_DATA_FL or (
            unpack("<H", data, 0)[0] & S_IFMT == S_IFLNK and size < 60 and not unpack("<I", data, 32)[0] & EXTENTS_FL
        ):
            return data[40 : 40 + min(size, 60)]
        out = bytearray(size)
        for logical, physical, count in self._blocks(data, number, size):
            start = logical * self.block
            if start >= size or not physical:
                continue
            length = min(count * self.block, size - start)
            out[start : start + length] = self.view.read(physical * self.block, length).ljust(length, b"\0")
        return bytes(out)

    def entries(self, number: int, data: bytes) -> dict[bytes, int]:
        """A directory's names and inode numbers, its blocks read as linear entry lists."""
        content = self.content(number, data)
        found: dict[bytes, int] = {}
        for block_start in range(0, len(content), self.block):
            at, end = block_start, min(block_start + self.block, len(content))
            while at + 8 <= end:
                inode, rec_len, name_len = unpack("<IHB", content, at)
                if rec_len < 8 or rec_len % 4 or at + rec_len > end:
                    raise LookupStopped(f"directory inode {number}: entry at byte {at} has record length {rec_len}")
                if inode and name_len:
                    found.setdefault(bytes(content[at + 8 : at + 8 + name_len]), inode)
                at += rec_len
        return found

    def lookup(self, path: str) -> tuple[int, bytes] | None:
        """Resolve an absolute path (symbolic links followed, bounded); ``None`` when a name is absent."""
        parts = [p for p in path.split("/") if p]
        trail = [(ROOT_INODE, self.inode(ROOT_INODE))]
        links = steps = 0
        while parts:
            steps += 1
            if steps > MAX_COMPONENTS:
                raise LookupStopped(f"looking up {path}: more than {MAX_COMPONENTS} path steps")
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                trail = trail[:-1] or trail
                continue
            number, data = trail[-1]
            if unpack("<H", data, 0)[0] & S_IFMT != S_IFDIR:
                return None
            child = self.entries(number, data).get(name.encode())
            if child is None:
                return None
            child_data = self.inode(child)
            if unpack("<H", child_data, 0)[0] & S_IFMT == S_IFLNK:
                links += 1
                if links > MAX_LINKS:
                    raise LookupStopped(f"looking up {path}: more than {MAX_LINKS} symbolic links")
                target = self.content(child, child_data, 4096).decode("utf-8", errors="replace")
                if target.startswith("/"):
                    trail = trail[:1]
                parts = [p for p in target.split("/") if p] + parts
                continue
            trail.append((child, child_data))
        return trail[-1]

    def read_file(self, path: str, cap: int) -> bytes | None:
        found = self.lookup(path)
        if found is None or unpack("<H", found[1], 0)[0] & S_IFMT != S_IFREG:
            return None
        return self.content(found[0], found[1], cap)


def _os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines()[:64]:
        key, sep, value = line.strip().partition("=")
        if sep and key.isidentifier():
            values[key[:64]] = value.strip().strip("\"'")[:256]
    return values


def operating_system(view: View, values: dict[str, Any], info: Inspection) -> dict[str, Any] | None:
    """``/etc/os-release`` (or ``/usr/lib/os-release``) and ``/etc/hostname``, if this looks like a root fs."""
    try:
        files = ExtFiles(view, values)
        etc = files.lookup("/etc")
        if etc is None or unpack("<H", etc[1], 0)[0] & S_IFMT != S_IFDIR:
            return None
        release = files.read_file("/etc/os-release", 4096) or files.read_file("/usr/lib/os-release", 4096)
        hostname = files.read_file("/etc/hostname", 256)
    except LookupStopped as stop:
        info.add("guest-malformed", f"ext path lookup stopped: {stop}")
        return None
    fields = _os_release(release.decode("utf-8", errors="replace")) if release else {}
    return {
        "name": fields.get("PRETTY_NAME") or fields.get("NAME"),
        "id": fields.get("ID"),
        "version_id": fields.get("VERSION_ID"),
        "hostname": hostname.decode("utf-8", errors="replace").strip()[:256] if hostname else None,
        "os_release": fields,
    }
