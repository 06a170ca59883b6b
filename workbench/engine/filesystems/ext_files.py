"""A bounded path lookup on ext2/3/4, enough to read ``/etc/os-release`` and ``/etc/hostname``.

Every walk is a loop with a cap, never recursion: extent trees are walked with an explicit stack to at
most MAX_DEPTH levels and MAX_NODES nodes (a block seen twice is a loop), directories are read block by
block as linear entry lists (an htree's index blocks look like empty entries, so they are skipped),
symbolic links are followed at most MAX_LINKS times, and every inode number is checked against the
inode count before its table is read.
"""

from __future__ import annotations

import struct
from typing import Any

from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from .ext import INCOMPAT_64BIT

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
GROUP_DESC = Layout("ext group descriptor", [Spec("inode_table_lo", 8, "I")], "<")
GROUP_DESC_64 = GROUP_DESC.extended(Spec("inode_table_hi", 0x28, "I"))
INODE = Layout(
    "ext inode",
    [
        Spec("mode", 0, "H"),
        Spec("size_lo", 4, "I"),
        Spec("flags", 32, "I"),
        Spec("block", 40, "60s", "block pointers, an extent tree's root, or inline data"),
        Spec("size_high", 108, "I"),
    ],
    "<",
)
POINTERS = struct.Struct("<15I")  # i_block as block pointers: 12 direct, then the single indirect
EXTENT_HEADER = Layout(
    "ext extent header",
    [Spec("magic", 0, "H"), Spec("entries", 2, "H"), Spec("max", 4, "H"), Spec("depth", 6, "H")],
    "<",
)
EXTENT_INDEX = Layout("ext extent index", [Spec("leaf_lo", 4, "I"), Spec("leaf_hi", 8, "H")], "<")
EXTENT_LEAF = Layout(
    "ext extent",
    [Spec("block", 0, "I"), Spec("len", 4, "H"), Spec("start_hi", 6, "H"), Spec("start_lo", 8, "I")],
    "<",
)
EXTENT_ENTRY = 12  # bytes of the header and of each entry
DIR_ENTRY = Layout(
    "ext directory entry", [Spec("inode", 0, "I"), Spec("rec_len", 4, "H"), Spec("name_len", 6, "B")], "<"
)
DIR_ENTRY_HEAD = 8  # the name follows


def _mode(inode: bytes) -> int:
    return INODE.unpack_from(inode)["mode"] & S_IFMT


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
        entry = (GROUP_DESC_64 if self.desc_size >= 64 else GROUP_DESC).unpack_from(desc)
        table = entry["inode_table_lo"] | entry.get("inode_table_hi", 0) << 32
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
            header = EXTENT_HEADER.unpack_from(node)
            magic, depth = header["magic"], header["depth"]
            if magic != EXTENT_MAGIC or depth >= allowed:
                raise LookupStopped(f"inode {number}: extent node with magic 0x{magic:04x}, depth {depth} is invalid")
            count = min(header["entries"], (len(node) - EXTENT_ENTRY) // EXTENT_ENTRY)
            for at in range(EXTENT_ENTRY, EXTENT_ENTRY * (count + 1), EXTENT_ENTRY):
                if depth == 0:
                    leaf = EXTENT_LEAF.unpack_from(node, at)
                    length = leaf["len"] if leaf["len"] <= 32768 else leaf["len"] - 32768
                    leaves.append((leaf["block"], leaf["start_hi"] << 32 | leaf["start_lo"], length))
                    continue
                index = EXTENT_INDEX.unpack_from(node, at)
                child = index["leaf_hi"] << 32 | index["leaf_lo"]
                nodes += 1
                if child in seen or nodes > MAX_NODES:
                    raise LookupStopped(f"inode {number}: extent tree loops or has more than {MAX_NODES} nodes")
                seen.add(child)
                stack.append((self.view.read(child * self.block, self.block), depth))
        return sorted(leaves)

    def _blocks(self, data: bytes, number: int, size: int) -> list[tuple[int, int, int]]:
        inode = INODE.unpack_from(data)
        if inode["flags"] & EXTENTS_FL:
            return self._extents(inode["block"], number)
        pointers = POINTERS.unpack(inode["block"])
        direct = [(i, pointers[i], 1) for i in range(DIRECT_BLOCKS)]
        indirect = pointers[DIRECT_BLOCKS]
        if indirect and size > DIRECT_BLOCKS * self.block:
            table = self.view.read(indirect * self.block, self.block)
            listed = struct.unpack_from(f"<{len(table) // 4}I", table)  # the indirect block: more pointers
            direct += [(DIRECT_BLOCKS + i, pointer, 1) for i, pointer in enumerate(listed)]
        return direct

    def content(self, number: int, data: bytes, cap: int = MAX_FILE) -> bytes:
        """The file's bytes (at most ``cap``; holes as zeros)."""
        inode = INODE.unpack_from(data)
        size = min(inode["size_lo"] | inode["size_high"] << 32, cap)
        inline = len(inode["block"])
        if inode["flags"] & INLINE_DATA_FL or (
            inode["mode"] & S_IFMT == S_IFLNK and size < inline and not inode["flags"] & EXTENTS_FL
        ):
            return inode["block"][: min(size, inline)]
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
            while at + DIR_ENTRY_HEAD <= end:
                entry = DIR_ENTRY.unpack_from(content, at)
                inode, rec_len, name_len = entry["inode"], entry["rec_len"], entry["name_len"]
                if rec_len < DIR_ENTRY_HEAD or rec_len % 4 or at + rec_len > end:
                    raise LookupStopped(f"directory inode {number}: entry at byte {at} has record length {rec_len}")
                if inode and name_len:
                    name_at = at + DIR_ENTRY_HEAD
                    found.setdefault(bytes(content[name_at : name_at + name_len]), inode)
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
            if _mode(data) != S_IFDIR:
                return None
            child = self.entries(number, data).get(name.encode())
            if child is None:
                return None
            child_data = self.inode(child)
            if _mode(child_data) == S_IFLNK:
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
        if found is None or _mode(found[1]) != S_IFREG:
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
        if etc is None or _mode(etc[1]) != S_IFDIR:
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
