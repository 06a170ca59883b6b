"""Hand-made VMDK images: sparse extents with an embedded descriptor, descriptor-only files, COWD.

Layouts follow VMware's "Virtual Disk Format 1.1"; every builder returns the whole file as bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

SECTOR = 512
GD_AT_END = 0xFFFF_FFFF_FFFF_FFFF
# (access, sectors, type, file name or None, offset or None)
Extent = tuple[str, int, str, str | None, int | None]


def extent_line(access: str, sectors: int, kind: str, name: str | None = None, offset: int | None = None) -> str:
    line = f"{access} {sectors} {kind}"
    if name is not None:
        line += f' "{name}"'
    if offset is not None:
        line += f" {offset}"
    return line


def descriptor(
    create_type: str = "monolithicSparse",
    extents: Sequence[Extent] = (("RW", 2048, "SPARSE", "disk.vmdk", None),),
    *,
    cid: int = 0x12345678,
    parent_cid: int = 0xFFFFFFFF,
    parent_hint: str | None = None,
    extra: str = "",
) -> str:
    """A descriptor as VMware and qemu write it; ``extra`` is appended verbatim."""
    lines = ["# Disk DescriptorFile", "version=1", f"CID={cid:08x}", f"parentCID={parent_cid:08x}"]
    lines.append(f'createType="{create_type}"')
    if parent_hint is not None:
        lines.append(f'parentFileNameHint="{parent_hint}"')
    lines += ["", "# Extent description", *(extent_line(*e) for e in extents)]
    lines += ["", "# The Disk Data Base", "#DDB", "", 'ddb.virtualHWVersion = "4"', 'ddb.adapterType = "ide"']
    return "\n".join(lines) + "\n" + extra


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
    head = b"KDMV" + struct.pack(
        "<IIQQQQIQQQB4sH",
        version,
        flags,
        capacity,
        grain,
        desc_offset,
        desc_size,
        gtes,
        rgd_offset,
        gd_offset,
        overhead,
        unclean,
        newline,
        compression,
    )
    return head.ljust(SECTOR, b"\0")


def sparse(capacity: int = 2048, desc: str | None = None, **header: Any) -> bytes:
    """A monolithicSparse file with ``desc`` embedded at sector 1 (default: one extent naming disk.vmdk).

    The file ends where the header says the grains start, so it holds no guest data.
    """
    head = sparse_header(capacity, **header)
    text = (desc if desc is not None else descriptor(extents=(("RW", capacity, "SPARSE", "disk.vmdk", None),))).encode()
    overhead = struct.unpack_from("<Q", head, 64)[0]
    return (head + text).ljust(overhead * SECTOR, b"\0")


def _marker(value: int, kind: int) -> bytes:
    return struct.pack("<QII", value, 0, kind).ljust(SECTOR, b"\0")


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
    head = struct.pack("<4sIIIIIII", b"COWD", 1, 0 if parent else 1, capacity, 1, 4, 1, 8)
    union = parent.encode().ljust(1024, b"\0") + struct.pack("<I", 1) if parent else struct.pack("<III", 2, 16, 63)
    body = (head + union).ljust(1060, b"\0")
    body += struct.pack("<I", 1) + b"cowd disk".ljust(60, b"\0") + b"made by hand".ljust(512, b"\0")
    body += struct.pack("<I", 1) + bytes(8) + struct.pack("<I", unclean)
    return body.ljust(8 * SECTOR, b"\0")  # header, then the one-sector grain directory at sector 4


def descriptor_file(extents: Sequence[Extent], create_type: str = "monolithicFlat", **keys: Any) -> bytes:
    """A descriptor-only VMDK: every extent it lists lives in another file."""
    return descriptor(create_type, extents, **keys).encode()


def demo_host_file() -> bytes:
    """For the demonstration window: a descriptor whose extent is the host's /etc/shadow."""
    return descriptor_file([("RW", 8, "FLAT", "/etc/shadow", 0)], cid=0x0BADF00D)
