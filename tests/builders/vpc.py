"""Hand-made VHD images (qemu: vpc): fixed, dynamic and differencing disks with parent locators.

Layouts follow Microsoft's "Virtual Hard Disk Image Format Specification"; builders return bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.engine.fields import Layout
from workbench.engine.formats.vpc import DYNAMIC_HEADER, FOOTER, LOCATOR, checksum

SECTOR = 512
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
BLOCK = 2 * 1024 * 1024
NO_OFFSET = 0xFFFF_FFFF_FFFF_FFFF
ENCODINGS = {b"W2ku": "utf-16-le", b"W2ru": "utf-16-le", b"Wi2k": "latin-1", b"Wi2r": "latin-1"}


def _signed(data: bytes, layout: Layout, flip: bool) -> bytes:
    """``data`` with its checksum written in ``layout``'s field (``flip``: one bit wrong, for hostile tests)."""
    at = layout.offset_of("checksum")
    value = checksum(data, at) ^ (1 if flip else 0)
    return data[:at] + value.to_bytes(4, "big") + data[at + 4 :]


def geometry(size: int) -> tuple[int, int, int]:
    """Cylinders, heads, sectors per track for ``size`` bytes, by the specification's algorithm."""
    total = min(size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def footer(
    disk_type: int,
    size: int,
    *,
    data_offset: int = SECTOR,
    creator: bytes = b"qemu",
    chs: tuple[int, int, int] | None = None,
    saved_state: int = 0,
    bad_checksum: bool = False,
) -> bytes:
    cyls, heads, spt = chs or geometry(size)
    body = FOOTER.pack(
        cookie=b"conectix",
        features=2,
        format_version=0x00010000,
        data_offset=data_offset,
        timestamp=0x32000000,
        creator_app=creator,
        creator_version=0x00050003,
        creator_host_os=b"Wi2k",
        original_size=size,
        current_size=size,
        cylinders=cyls,
        heads=heads,
        sectors_per_track=spt,
        disk_type=disk_type,
        unique_id=bytes(range(16)),
        saved_state=saved_state,
    ).ljust(SECTOR, b"\0")
    return _signed(body, FOOTER, bad_checksum)


@dataclass
class Locator:
    """One parent locator; ``length``/``offset`` override the fields (the data is still written)."""

    code: bytes
    path: str = ""
    length: int | None = None
    offset: int | None = None

    def data(self) -> bytes:
        return self.path.encode(ENCODINGS.get(self.code, "utf-8"))


def fixed(size: int = 1 << 20, **footer_args: Any) -> bytes:
    """Guest data (zeros) followed by the footer: the whole of a fixed disk."""
    return bytes(size) + footer(FIXED, size, data_offset=NO_OFFSET, **footer_args)


def dynamic(
    size: int = 8 << 20,
    *,
    disk_type: int = DYNAMIC,
    block_size: int = BLOCK,
    entries: int | None = None,
    parent_name: str = "",
    locators: Sequence[Locator] = (),
    creator: bytes = b"qemu",
    bad_footer_checksum: bool = False,
    bad_header_checksum: bool = False,
) -> bytes:
    """Footer copy, dynamic header, an empty block table, locator data, footer: no block allocated."""
    count = entries if entries is not None else -(-size // block_size)
    table = min(count, 1024) * 4  # the table written is capped: hostile counts need no real table
    table_len = -(-table // SECTOR) * SECTOR
    data_at = 1536 + table_len
    blobs = b""
    entries_raw = b""
    for loc in locators:
        raw = loc.data()
        where = data_at + len(blobs)
        length = loc.length if loc.length is not None else len(raw)
        offset = loc.offset if loc.offset is not None else where
        entries_raw += LOCATOR.pack(
            platform_code=loc.code, data_space=-(-len(raw) // SECTOR), data_length=length, data_offset=offset
        )
        blobs += raw.ljust(-(-len(raw) // SECTOR) * SECTOR, b"\0")
    head = DYNAMIC_HEADER.pack(
        cookie=b"cxsparse",
        data_offset=NO_OFFSET,
        table_offset=1536,
        header_version=0x00010000,
        max_table_entries=count,
        block_size=block_size,
        parent_unique_id=bytes(range(16, 32)),
        parent_timestamp=0x31000000,
        parent_unicode_name=parent_name.encode("utf-16-be")[:512],
    )
    head = (head + entries_raw).ljust(1024, b"\0")
    head = _signed(head, DYNAMIC_HEADER, bad_header_checksum)
    foot = footer(disk_type, size, creator=creator, bad_checksum=bad_footer_checksum)
    return foot + head + b"\xff" * table + bytes(table_len - table) + blobs + foot


def differencing(locators: Sequence[Locator], parent_name: str = "parent.vhd", **args: Any) -> bytes:
    return dynamic(disk_type=DIFFERENCING, parent_name=parent_name, locators=locators, **args)


def demo_differencing() -> bytes:
    """For the demonstration window: a differencing disk whose locators name a parent on the host."""
    return differencing(
        [
            Locator(b"W2ku", "C:\\Users\\Public\\Documents\\base.vhd"),
            Locator(b"W2ru", ".\\base.vhd"),
            Locator(b"MacX", "file://localhost/etc/shadow"),
        ],
        parent_name="base.vhd",
    )
