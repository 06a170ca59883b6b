"""qcow (version 1), qcow2 (versions 2 and 3) and QED images built byte by byte.

The qcow2 builder is the demonstration set's (``workbench/demo/qcow2.py``, re-exported here); snapshot
entries, qcow version 1 and QED are for the tests and the fuzzer only.
"""

from __future__ import annotations

from workbench.demo.qcow2 import (
    AUTOCLEAR_BITMAPS,
    AUTOCLEAR_DATA_FILE_RAW,
    COMPAT_LAZY_REFCOUNTS,
    CRYPT_AES,
    CRYPT_NONE,
    EXT_BACKING_FORMAT,
    EXT_DATA_FILE,
    EXT_FEATURE_TABLE,
    INCOMPAT_COMPRESSION,
    INCOMPAT_CORRUPT,
    INCOMPAT_DATA_FILE,
    INCOMPAT_DIRTY,
    INCOMPAT_EXTENDED_L2,
    QCOW_MAGIC,
    QEMU_FEATURE_NAMES,
    demo_images,
    extension,
    feature_table,
    pad,
    qcow2,
)
from workbench.engine.formats.qcow import (
    CRYPT_LUKS,
    EXT_BITMAPS,
    EXT_CRYPTO,
    SNAPSHOT_EXTRA_LAYOUT,
    SNAPSHOT_LAYOUT,
    V1_HEADER,
    V1_LAYOUT,
)
from workbench.engine.formats.qed import HEADER as QED_HEADER

__all__ = [  # the demonstration set's builder, re-exported, and this module's own
    "AUTOCLEAR_BITMAPS",
    "AUTOCLEAR_DATA_FILE_RAW",
    "COMPAT_LAZY_REFCOUNTS",
    "CRYPT_AES",
    "CRYPT_LUKS",
    "CRYPT_NONE",
    "EXT_BACKING_FORMAT",
    "EXT_BITMAPS",
    "EXT_CRYPTO",
    "EXT_DATA_FILE",
    "EXT_FEATURE_TABLE",
    "INCOMPAT_COMPRESSION",
    "INCOMPAT_CORRUPT",
    "INCOMPAT_DATA_FILE",
    "INCOMPAT_DIRTY",
    "INCOMPAT_EXTENDED_L2",
    "QCOW_MAGIC",
    "QEMU_FEATURE_NAMES",
    "demo_images",
    "extension",
    "feature_table",
    "pad",
    "qcow2",
    "QED_MAGIC",
    "QED_BACKING_FILE",
    "QED_NEED_CHECK",
    "QED_BACKING_RAW",
    "snapshot_entry",
    "qcow1",
    "qed",
]


QED_MAGIC = b"QED\0"
QED_BACKING_FILE, QED_NEED_CHECK, QED_BACKING_RAW = 1, 2, 4


def snapshot_entry(
    snap_id: str,
    name: str,
    *,
    date_sec: int = 0,
    date_nsec: int = 0,
    vm_clock_nsec: int = 0,
    vm_state_size: int = 0,
    disk_size: int | None = None,
    l1_offset: int = 0,
    l1_size: int = 0,
    extra: bytes | None = None,
) -> bytes:
    """One snapshot table entry, padded to 8 bytes; ``extra`` replaces the 16 standard extra bytes."""
    if extra is None:
        extra = SNAPSHOT_EXTRA_LAYOUT.pack(vm_state_size_large=vm_state_size, disk_size=disk_size or 0)[:16]
    ident, label = snap_id.encode(), name.encode()
    head = SNAPSHOT_LAYOUT.pack(
        l1_table_offset=l1_offset,
        l1_size=l1_size,
        id_str_size=len(ident),
        name_size=len(label),
        date_sec=date_sec,
        date_nsec=date_nsec,
        vm_clock_nsec=vm_clock_nsec,
        vm_state_size=min(vm_state_size, 0xFFFFFFFF),
        extra_data_size=len(extra),
    )
    return pad(head + extra + ident + label, 8)


def qcow1(
    virtual_size: int,
    *,
    cluster_bits: int = 12,
    l2_bits: int = 9,
    backing: str | None = None,
    backing_size: int | None = None,
    crypt_method: int = CRYPT_NONE,
    mtime: int = 0,
    l1_offset: int | None = None,
) -> bytes:
    """A qcow version 1 image laid out as qemu's qcow_create does (header, backing name, L1 table)."""
    name = backing.encode() if backing else b""
    l1_at = -(-(V1_HEADER + len(name)) // 8) * 8
    shift = cluster_bits + l2_bits
    l1_bytes = ((virtual_size + (1 << shift) - 1) >> shift) * 8
    header = V1_LAYOUT.pack(
        magic=QCOW_MAGIC,
        version=1,
        backing_file_offset=V1_HEADER if name else 0,
        backing_file_size=len(name) if backing_size is None else backing_size,
        mtime=mtime,
        size=virtual_size,
        cluster_bits=cluster_bits,
        l2_bits=l2_bits,
        crypt_method=crypt_method,
        l1_table_offset=l1_at if l1_offset is None else l1_offset,
    )
    return pad(header + name, 8) + bytes(-(-l1_bytes // 512) * 512)


def qed(
    virtual_size: int,
    *,
    cluster_size: int = 65536,
    table_size: int = 4,
    header_size: int = 1,
    features: int = 0,
    compat_features: int = 0,
    autoclear_features: int = 0,
    backing: str | None = None,
    backing_raw: bool = False,
    backing_offset: int | None = None,
    backing_size: int | None = None,
    l1_offset: int | None = None,
) -> bytes:
    """A QED image as qemu-img create makes it: header cluster(s), then one L1 table.

    ``backing`` sets feature bit 0 and stores the name after the header; ``backing_raw`` sets bit 2.
    """
    name = backing.encode() if backing else b""
    if backing:
        features |= QED_BACKING_FILE
    if backing_raw:
        features |= QED_BACKING_RAW
    l1_at = header_size * cluster_size
    header = QED_HEADER.pack(
        magic=QED_MAGIC,
        cluster_size=cluster_size,
        table_size=table_size,
        header_size=header_size,
        features=features,
        compat_features=compat_features,
        autoclear_features=autoclear_features,
        l1_table_offset=l1_at if l1_offset is None else l1_offset,
        image_size=virtual_size,
        backing_filename_offset=(QED_HEADER.size if name else 0) if backing_offset is None else backing_offset,
        backing_filename_size=len(name) if backing_size is None else backing_size,
    )
    return (header + name).ljust(l1_at, b"\0") + bytes(table_size * cluster_size)
