"""qcow2 images built byte by byte, for the demonstration set (and, through ``tests/builders``, the tests).

:func:`qcow2` lays an image out as ``qemu-img create`` does: header, extensions and backing name in
cluster 0, the refcount table in cluster 1, one refcount block in cluster 2, the L1 table from cluster 3
(the file ends where the L1 table ends), then an optional snapshot table. Semantic arguments
(``backing``, ``data_file``...) make a consistent image; raw header fields (``incompatible``,
``l1_offset``...) are written exactly as given, which is how the hostile variants are made.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.formats.qcow import (
    CRYPT_AES,
    EXT_BACKING_FORMAT,
    EXT_DATA_FILE,
    EXT_FEATURE_TABLE,
    EXTENSION_LAYOUT,
    FEATURE_NAME_LAYOUT,
    HEADER_READ,
    V2_HEADER,
    V2_LAYOUT,
    V3_COMPRESSION_LAYOUT,
    V3_HEADER,
)

QCOW_MAGIC = b"QFI\xfb"

INCOMPAT_DIRTY, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_COMPRESSION, INCOMPAT_EXTENDED_L2 = 1, 2, 4, 8, 16
COMPAT_LAZY_REFCOUNTS = 1
AUTOCLEAR_BITMAPS, AUTOCLEAR_DATA_FILE_RAW = 1, 2
CRYPT_NONE = 0


# The feature name table qemu 7.2 writes into every version 3 image.
QEMU_FEATURE_NAMES = (
    (0, 0, "dirty bit"),
    (0, 1, "corrupt bit"),
    (0, 2, "external data file"),
    (0, 3, "compression type"),
    (0, 4, "extended L2 entries"),
    (1, 0, "lazy refcounts"),
    (2, 0, "bitmaps"),
    (2, 1, "raw external data"),
)


def pad(data: bytes, multiple: int) -> bytes:
    return data + bytes(-len(data) % multiple)


def _clusters(size: int, cluster: int) -> int:
    return max(1, -(-size // cluster))


def extension(magic: int, data: bytes) -> bytes:
    """One qcow2 header extension, padded to 8 bytes."""
    return EXTENSION_LAYOUT.pack(type=magic, length=len(data)) + pad(data, 8)


def feature_table(entries: Sequence[tuple[int, int, str]] = QEMU_FEATURE_NAMES) -> bytes:
    """The data of a feature name table extension: (type, bit, name) entries of 48 bytes."""
    return b"".join(FEATURE_NAME_LAYOUT.pack(type=kind, bit=bit, name=name.encode()) for kind, bit, name in entries)


def _refcount_block(clusters: int, cluster_size: int, order: int) -> bytes:
    """A refcount block giving each of the first ``clusters`` clusters a refcount of 1."""
    block = bytearray(cluster_size)
    width = 1 << order
    if clusters * width > cluster_size * 8:
        raise ValueError("the builder writes a single refcount block; use larger clusters")
    for index in range(clusters):
        bit = index * width
        if width >= 8:
            block[bit // 8 + width // 8 - 1] = 1  # big-endian value 1
        else:
            block[bit // 8] |= 1 << (bit % 8)
    return bytes(block)


def _qcow2_header(values: dict[str, int], version: int, header_length: int) -> bytes:
    """The header from the parser's own layout (the rows of version 2, or of version 3 with compression type)."""
    layout = V3_COMPRESSION_LAYOUT if version >= 3 else V2_LAYOUT
    if version < 3:
        return layout.pack(magic=QCOW_MAGIC, version=version, **{k: v for k, v in values.items() if k in layout.names})
    header = layout.pack(magic=QCOW_MAGIC, version=version, header_length=header_length, **values)
    return header.ljust(header_length, b"\0")[: max(header_length, V3_HEADER)]


def qcow2(
    virtual_size: int,
    *,
    version: int = 3,
    cluster_bits: int = 16,
    backing: str | bytes | None = None,
    backing_format: str | None = None,
    backing_offset: int | None = None,
    backing_size: int | None = None,
    incompatible: int = 0,
    compatible: int = 0,
    autoclear: int = 0,
    crypt_method: int = CRYPT_NONE,
    data_file: str | None = None,
    extensions: Sequence[tuple[int, bytes]] = (),
    extension_area: bytes | None = None,
    feature_names: bool = True,
    header_length: int | None = None,
    refcount_order: int = 4,
    compression_type: int = 0,
    l1_size: int | None = None,
    l1_offset: int | None = None,
    refcount_offset: int | None = None,
    refcount_clusters: int = 1,
    snapshots: Sequence[bytes] = (),
    nb_snapshots: int | None = None,
    snapshots_offset: int | None = None,
) -> bytes:
    """A qcow2 image with no data clusters; qemu-img info and check accept the defaults.

    ``data_file`` adds the external data file extension and sets incompatible bit 2; every other
    feature bit is written as given. ``extension_area`` replaces the generated extensions (end marker
    included). ``snapshots`` are entries from :func:`snapshot_entry`, stored after the L1 table.
    """
    cluster = 1 << cluster_bits
    if header_length is None:
        header_length = HEADER_READ if version >= 3 else V2_HEADER
    if data_file is not None:
        incompatible |= INCOMPAT_DATA_FILE
    name = backing.encode() if isinstance(backing, str) else backing or b""
    if extension_area is None:
        area = b""
        if backing_format:
            area += extension(EXT_BACKING_FORMAT, backing_format.encode())
        if data_file is not None:
            area += extension(EXT_DATA_FILE, data_file.encode())
        if feature_names and version >= 3:
            area += extension(EXT_FEATURE_TABLE, feature_table())
        area += b"".join(extension(magic, data) for magic, data in extensions) + bytes(8)
    else:
        area = extension_area
    head_end = (max(header_length, V3_HEADER) if version >= 3 else V2_HEADER) + len(
        area
    )  # qemu reads v2 headers as 72 bytes
    header_clusters = _clusters(head_end + len(name), cluster)
    entry_bits = 4 if incompatible & INCOMPAT_EXTENDED_L2 else 3
    needed = -(-virtual_size // (1 << (2 * cluster_bits - entry_bits)))
    l1_entries = needed if l1_size is None else l1_size
    refcount_at = header_clusters * cluster
    l1_at = refcount_at + (refcount_clusters + 1) * cluster
    l1_clusters = _clusters(l1_entries * 8, cluster)
    snapshots_at = l1_at + l1_clusters * cluster
    table = b"".join(snapshots)
    values = {
        "backing_file_offset": (head_end if name else 0) if backing_offset is None else backing_offset,
        "backing_file_size": len(name) if backing_size is None else backing_size,
        "cluster_bits": cluster_bits,
        "size": virtual_size,
        "crypt_method": crypt_method,
        "l1_size": l1_entries,
        "l1_table_offset": l1_at if l1_offset is None else l1_offset,
        "refcount_table_offset": refcount_at if refcount_offset is None else refcount_offset,
        "refcount_table_clusters": refcount_clusters,
        "nb_snapshots": len(snapshots) if nb_snapshots is None else nb_snapshots,
        "snapshots_offset": (snapshots_at if snapshots else 0) if snapshots_offset is None else snapshots_offset,
        "incompatible_features": incompatible,
        "compatible_features": compatible,
        "autoclear_features": autoclear,
        "refcount_order": refcount_order,
        "compression_type": compression_type,
    }
    used = header_clusters + refcount_clusters + 1 + l1_clusters + (_clusters(len(table), cluster) if table else 0)
    refcount_block_at = refcount_at + refcount_clusters * cluster
    image = bytearray(_qcow2_header(values, version, header_length) + area)
    image[head_end : head_end + len(name)] = name
    image = image.ljust(refcount_at, b"\0")
    image += refcount_block_at.to_bytes(8, "big").ljust(refcount_clusters * cluster, b"\0")
    image += _refcount_block(used, cluster, refcount_order)
    image += bytes(l1_entries * 8)
    if table:
        image = image.ljust(snapshots_at, b"\0") + table
    return bytes(image)


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of the qcow2 images the ``--demo`` window shows."""
    guest_disk = qcow2(8 << 30, backing="/etc/passwd")  # what a guest can write into its own raw disk
    return [
        ("clean.qcow2", "qcow2", qcow2(1 << 30)),
        ("backing-host-file.qcow2", "qcow2", qcow2(1 << 30, backing="/etc/passwd", backing_format="raw")),
        ("guest-raw-disk.img", "raw", guest_disk.ljust(1 << 20, b"\0")),
        ("claims-16TiB.qcow2", "qcow2", qcow2(16 << 40)),
        ("aes-encrypted.qcow2", "qcow2", qcow2(1 << 30, crypt_method=CRYPT_AES)),
    ]
