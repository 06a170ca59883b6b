"""Hand-made VMDK images: sparse extents with an embedded descriptor, descriptor-only files, COWD.

Layouts follow VMware's "Virtual Disk Format 1.1"; every builder returns the whole file as bytes.
The descriptor text comes from the demonstration set's builder (``workbench/demo/vmdk.py``, re-exported here).
"""

from __future__ import annotations

from typing import Any

from workbench.demo.vmdk import (
    Extent,
    demo_host_file,
    descriptor,
    descriptor_file,
    extent_line,
)
from workbench.engine.formats.vmdk import (
    COWD,
    COWD_CHILD_SPECS,
    COWD_LAYOUT,
    COWD_ROOT,
    COWD_ROOT_SPECS,
    COWD_TAIL_SPECS,
    GD_AT_END,
    KDMV,
    KDMV_LAYOUT,
    MARKER_LAYOUT,
)

__all__ = [  # the demonstration set's builder, re-exported, and this module's own
    "Extent",
    "demo_host_file",
    "descriptor",
    "descriptor_file",
    "extent_line",
    "SECTOR",
    "sparse_header",
    "sparse",
    "stream_optimized",
    "cowd",
    "HINT_PLACES",
    "hint_outside_descriptor",
    "capacity_zero",
    "flat_descriptor",
    "SSCANF_LINES",
    "sscanf_descriptor",
    "late_descriptor",
    "many_extents",
]


SECTOR = 512


def sparse_header(
    capacity: int,
    *,
    version: int = 1,
    flags: int = 0x3,
    grain: int = 128,
    desc_offset: int = 1,
    desc_size: int = 20,
    gtes: int = 512,
    rgd_offset: int = 21,
    gd_offset: int = 26,
    overhead: int = 32,
    unclean: int = 0,
    newline: bytes = b"\n \r\n",
    compression: int = 0,
) -> bytes:
    """One sector: the KDMV sparse extent header (all values in sectors, little-endian)."""
    head = KDMV_LAYOUT.pack(
        magic=KDMV,
        version=version,
        flags=flags,
        capacity=capacity,
        grain_size=grain,
        descriptor_offset=desc_offset,
        descriptor_size=desc_size,
        gtes_per_gt=gtes,
        rgd_offset=rgd_offset,
        gd_offset=gd_offset,
        overhead=overhead,
        unclean_shutdown=unclean,
        newline_check=newline,
        compression=compression,
    )
    return head.ljust(SECTOR, b"\0")


def sparse(capacity: int = 2048, desc: str | None = None, **header: Any) -> bytes:
    """A monolithicSparse file with ``desc`` embedded at sector 1 (default: one extent naming disk.vmdk).

    The file ends where the header says the grains start, so it holds no guest data.
    """
    head = sparse_header(capacity, **header)
    text = (desc if desc is not None else descriptor(extents=(("RW", capacity, "SPARSE", "disk.vmdk", None),))).encode()
    overhead = KDMV_LAYOUT.unpack(head)["overhead"]
    return (head + text).ljust(overhead * SECTOR, b"\0")


def _marker(value: int, kind: int) -> bytes:
    return MARKER_LAYOUT.pack(value=value, type=kind).ljust(SECTOR, b"\0")


def stream_optimized(capacity: int = 2048, footer_capacity: int | None = None, *, valid_footer: bool = True) -> bytes:
    """streamOptimized as VMware writes it: the header's grain directory is 'at the end' and the real
    header is the footer, followed by an end-of-stream marker."""
    flags, desc = 0x30003, descriptor("streamOptimized", (("RW", capacity, "SPARSE", "stream.vmdk", None),))
    body = sparse(capacity, desc, version=3, flags=flags, gd_offset=GD_AT_END, compression=1, rgd_offset=0)
    footer_header = sparse_header(
        footer_capacity if footer_capacity is not None else capacity,
        version=3,
        flags=flags,
        gd_offset=len(body) // SECTOR,
        compression=1,
        rgd_offset=0,
    )
    footer_kind = 3 if valid_footer else 7
    return body + _marker(1, footer_kind) + footer_header + _marker(0, 0)


def cowd(capacity: int = 2048, *, parent: str | None = None, unclean: int = 0) -> bytes:
    """An ESX COWD sparse file: the 2048-byte header and an empty grain directory; a ``parent`` makes it a
    child disk (flags bit 0 clear)."""
    union = COWD_CHILD_SPECS if parent else COWD_ROOT_SPECS
    layout = COWD_LAYOUT.extended(*union, *COWD_TAIL_SPECS)
    values = {"parent_file_name": parent.encode(), "parent_generation": 1} if parent else {}
    values = values or {"cylinders": 2, "heads": 16, "sectors": 63}
    body = layout.pack(
        magic=COWD,
        version=1,
        flags=0 if parent else COWD_ROOT,
        capacity=capacity,
        grain_size=1,
        gd_offset=4,
        gd_entries=1,
        free_sector=8,
        generation=1,
        name=b"cowd disk",
        description=b"made by hand",
        saved_generation=1,
        unclean_shutdown=unclean,
        **values,
    )
    return body.ljust(8 * SECTOR, b"\0")  # header, then the one-sector grain directory at sector 4


HINT_PLACES = ("offset0", "moved", "one-sector", "cowd-root", "cowd-truncated", "past-nul")


def hint_outside_descriptor(where: str, parent: str = "parent.vmdk") -> bytes:
    """A parent name only where qemu looks: vmdk_parent_open searches the 10 KiB at offset 0x200 of a
    KDMV or COWD file, whatever the header declares. ``where``: ``offset0`` (the header declares no
    descriptor), ``moved`` (the declared descriptor, at sector 40, names no parent), ``one-sector``
    (the hint follows the declared single sector), ``cowd-root`` (a COWD root disk, which has no parent),
    ``cowd-truncated`` (the same cut inside its 2048-byte header: qemu reads zeros for the rest),
    ``past-nul`` (the text ends right after the word: qemu skips two bytes, the NUL too, then reads on)."""
    window = descriptor(parent_hint=parent, parent_cid=1)
    if where == "offset0":
        return sparse(2048, window, desc_offset=0, desc_size=0)
    if where == "moved":
        data = bytearray(sparse(2048, window, desc_offset=40, desc_size=20, overhead=64))
        clean = descriptor().encode()
        data[40 * SECTOR : 40 * SECTOR + len(clean)] = clean
        return bytes(data)
    if where == "one-sector":
        text = descriptor(extra="#" * 600 + "\n") + f'parentFileNameHint="{parent}"\n'
        return sparse(2048, text, desc_size=1)
    if where in ("cowd-root", "cowd-truncated"):
        data = bytearray(cowd(2048))
        data[SECTOR : SECTOR + len(window)] = window.encode()
        return bytes(data if where == "cowd-root" else data[:1500])
    if where == "past-nul":
        return sparse(2048, descriptor() + f'parentFileNameHint\0"{parent}"\n')
    raise ValueError(where)


def capacity_zero(text: str, *, desc_offset: int = 1, desc_size: int = 1, pad_to: int = 0) -> bytes:
    """A capacity-0 sparse header with ``text`` at sector 1: qemu opens the file through that descriptor
    alone (vmdk_open_vmdk4), reading from ``desc_offset << 9`` (64-bit, wrapping) to the first NUL, up
    to 1 MiB, whatever ``desc_size`` says."""
    head = sparse_header(0, desc_offset=desc_offset, desc_size=desc_size)
    return (head + text.encode()).ljust(max(pad_to, 32 * SECTOR), b"\0")


def flat_descriptor(body: str, create_type: str = "monolithicFlat") -> str:
    """The keys qemu needs to open a descriptor (createType, CID, parentCID), then ``body`` verbatim."""
    return f'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="{create_type}"\n{body}'


# Extent lines that are not VMware's grammar but that qemu's sscanf (vmdk_parse_extents) takes;
# ``{name}`` is the file qemu opens.
SSCANF_LINES = {
    "newlines": 'RW\n8\nFLAT\n"{name}"\n0\n',
    "trailing-words": 'RW 8 FLAT "{name}" 0 and more words\n',
    "signs-zeros": 'RW +0008 FLAT "{name}" +00\n',
    "overflow": 'RW 99999999999999999999999 SPARSE "{name}"\n',
    "no-closing-quote": 'RW 8 SPARSE "{name}\n',
    "adjacent": 'RW 8FLAT "{name}" 0\n',
    "ten-letter-type": 'RW 8 VMFSSPARSE"{name}"\n',
    "tabs-and-cr": 'RW\t8\tFLAT\t"{name}"\t0\r\n',
}


def sscanf_descriptor(case: str, name: str) -> bytes:
    return flat_descriptor(SSCANF_LINES[case].format(name=name)).encode()


def late_descriptor(name: str, comment_bytes: int = 3000) -> bytes:
    """A text descriptor that starts after a long comment, past any probe window: qemu -f vmdk reads it."""
    return ("#" * comment_bytes + "\n").encode() + sscanf_descriptor("newlines", name)


def many_extents(count: int, first: str, last: str) -> bytes:
    """A descriptor of ``count`` FLAT extents: all but the last name ``first``, the last names ``last``."""
    lines = f'RW 1 FLAT "{first}" 0\n' * (count - 1) + f'RW 1 FLAT "{last}" 0\n'
    return flat_descriptor(lines).encode()
