"""QED, the QEMU Enhanced Disk format: a 64-byte little-endian header, an L1 table and a backing file.

Layout and rules from qemu's docs/interop/qed_spec.rst; the checks are those of block/qed.c when it
opens an image (cluster and table sizes, image size, L1 table placement, backing name bounds).
"""

from __future__ import annotations

from ..checks import is_power_of_two
from ..fields import MAX_TEXT, Field, Layout, Spec, bit_flags, clean_text
from ..findings import INFO
from ..inspection import Inspection
from ..reader import Reader
from ._qemu import check_extent, read_backing_name

NAMES = ("qed",)
PRIORITY = 50

MAGIC = b"QED\0"
MIN_CLUSTER, MAX_CLUSTER = 4096, 64 << 20
MIN_TABLE, MAX_TABLE = 1, 16
MAX_BACKING_NAME = 4095  # qed_read_string into a PATH_MAX buffer
SECTOR = 512

F_BACKING_FILE, F_NEED_CHECK, F_BACKING_RAW = 1, 2, 4
FEATURES = {0: "backing file", 1: "needs check", 2: "backing format is raw (no probing)"}

HEADER = Layout(
    "qed header",
    [
        Spec("magic", 0, "4s", "QED\\0", "bytes"),
        Spec("cluster_size", 4, "I", "bytes per cluster (power of 2, 4 KiB .. 64 MiB)"),
        Spec("table_size", 8, "I", "clusters per L1/L2 table (power of 2, 1..16)"),
        Spec("header_size", 12, "I", "clusters used by the header"),
        Spec("features", 16, "Q", "a reader must refuse unknown bits", "hex"),
        Spec("compat_features", 24, "Q", "unknown bits may be ignored", "hex"),
        Spec("autoclear_features", 32, "Q", "unknown bits are cleared by a writer", "hex"),
        Spec("l1_table_offset", 40, "Q", "offset of the L1 table", "hex"),
        Spec("image_size", 48, "Q", "virtual disk size in bytes"),
        Spec("backing_filename_offset", 56, "I", "offset of the backing file name"),
        Spec("backing_filename_size", 60, "I", "length of the backing file name"),
    ],
    "<",
    "QED header (little-endian)",
)


def probe(reader: Reader) -> str | None:
    return "qed" if reader.read(0, HEADER.offset_of("cluster_size")) == MAGIC else None


def _power_of_two_in(value: int, low: int, high: int) -> bool:
    return low <= value <= high and is_power_of_two(value)


def parse(reader: Reader, info: Inspection) -> None:
    head = reader.read(0, HEADER.size)
    values, group = HEADER.read(head, 0)
    info.fields.append(group)
    if len(head) < HEADER.size:
        info.malformed(
            "qed.header-truncated", f"qed header truncated: the file has {len(head)} of its {HEADER.size} bytes", 0
        )
        return
    cluster, table, header_clusters = values["cluster_size"], values["table_size"], values["header_size"]
    features, size = values["features"], values["image_size"]
    info.virtual_size = size
    info.details = {"table_size": table, "header_size": header_clusters, "features": []}
    if _power_of_two_in(cluster, MIN_CLUSTER, MAX_CLUSTER):
        info.cluster_size = cluster
    else:
        info.malformed(
            "qed.cluster-size", f"cluster_size {cluster} is not a power of 2 in {MIN_CLUSTER}..{MAX_CLUSTER}", 4
        )
    table_ok = _power_of_two_in(table, MIN_TABLE, MAX_TABLE)
    if not table_ok:
        info.malformed(
            "qed.table-size",
            f"table_size {table} is not a power of 2 in {MIN_TABLE}..{MAX_TABLE}",
            HEADER.offset_of("table_size"),
        )
    if not header_clusters:
        info.malformed("qed.header-size-zero", "header_size is 0 clusters", HEADER.offset_of("header_size"))
    _features(info, values, group)
    if info.cluster_size and table_ok:
        _geometry(reader, info, values)
    if features & F_BACKING_FILE:
        read_backing_name(
            reader,
            info,
            values["backing_filename_offset"],
            values["backing_filename_size"],
            max_length=MAX_BACKING_NAME,
            region_end=cluster * header_clusters,
            fmt="raw" if features & F_BACKING_RAW else None,
            field_offset=HEADER.offset_of("backing_filename_offset"),
        )
    else:
        _unflagged_backing(reader, info, values)


def _unflagged_backing(reader: Reader, info: Inspection, values: dict[str, int]) -> None:
    """Backing name fields (or the raw-backing bit) without feature bit 0: qemu ignores them, but the name
    is reported, since a reader that looks at the fields rather than the bit would open it."""
    offset, size = values["backing_filename_offset"], values["backing_filename_size"]
    if values["features"] & F_BACKING_RAW:
        info.malformed(
            "qed.raw-backing-without-backing",
            "feature bit 2 (raw backing file) without feature bit 0 (backing file)",
            HEADER.offset_of("features"),
        )
    if not offset and not size:
        return
    info.malformed(
        "qed.backing-name-without-bit", f"backing file name fields ({offset}, {size} bytes) without feature bit 0", 56
    )
    name = clean_text(reader.read(offset, min(size, MAX_TEXT)), "utf-8") if offset else ""
    if name:
        info.reference("backing file (feature bit clear)", name, offset)


def _features(info: Inspection, values: dict[str, int], group: Field) -> None:
    features = values["features"]
    node = next(c for c in group.children if c.name == "features")
    node.children = bit_flags(features, FEATURES, 16, HEADER.offset_of("table_size"))
    info.details["features"] = [FEATURES.get(bit, f"bit {bit}") for bit in range(64) if features >> bit & 1]
    unknown = features & ~(F_BACKING_FILE | F_NEED_CHECK | F_BACKING_RAW)
    if unknown:
        info.add("unknown-features", f"unknown qed feature bits 0x{unknown:x}", HEADER.offset_of("features"))
    for name, offset in (
        ("compat_features", HEADER.offset_of("compat_features")),
        ("autoclear_features", HEADER.offset_of("autoclear_features")),
    ):
        if values[name]:
            info.add("unknown-features", f"unknown qed {name} 0x{values[name]:x} (safe to ignore)", offset, INFO)
    if features & F_NEED_CHECK:
        info.dirty = True
        info.add("dirty", "feature bit 1 (needs check): the image was not closed cleanly", HEADER.offset_of("features"))


def _geometry(reader: Reader, info: Inspection, values: dict[str, int]) -> None:
    cluster, table, size = values["cluster_size"], values["table_size"], values["image_size"]
    entries = table * cluster // 8
    largest = entries * entries * cluster
    if size % SECTOR:
        info.malformed(
            "qed.image-size-unaligned",
            f"image_size {size} is not a multiple of {SECTOR}",
            HEADER.offset_of("image_size"),
        )
    if size > largest:
        info.malformed(
            "qed.image-size-too-large", f"image_size {size} is larger than the {largest} bytes the tables can map", 48
        )
    l1_offset = values["l1_table_offset"]
    header_end = values["header_size"] * cluster
    if 0 < l1_offset < header_end:
        info.malformed(
            "qed.l1-inside-header", f"L1 table offset {l1_offset} lies inside the {header_end}-byte header", 40
        )
    info.fields.append(check_extent(reader, info, "qed.l1", "L1 table", l1_offset, table * cluster, cluster, None))
