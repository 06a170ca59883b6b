"""qcow (version 1) and qcow2 (versions 2 and 3).

Layouts follow qemu's docs/interop/qcow2.txt and the version 1 header of block/qcow.c. The limits are
the ones qemu's block/qcow.c and block/qcow2.c enforce when they open an image: a value qemu would refuse
is reported as ``malformed``. Tables (L1, refcount) are only placed against the file size, never loaded;
header extensions are walked as qemu walks them (qcow2_read_extensions: to the backing file name or the
end of the first cluster, whatever their number) and snapshot entries up to qemu's own count limit, both
within the read budget; running out of budget there is a critical finding, since a reference may lie beyond.
"""

from __future__ import annotations

from ..fields import MAX_TEXT, Field, Layout, Spec, bit_flags, clean_text, utc_text
from ..findings import INFO
from ..inspection import MAX_LIST, Inspection
from ..reader import BudgetExceeded, Reader
from ..record import Record
from ._qemu import check_extent, no_backing_offset, read_backing_name
from .luks import LUKS1

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("qcow", "qcow2")
PRIORITY = 50

MAGIC = b"QFI\xfb"
HEADER_READ = 112  # the largest header qemu knows (version 3 with compression type and padding)

MIN_CLUSTER_BITS, MAX_CLUSTER_BITS = 9, 21  # qcow2.h MIN_CLUSTER_BITS / MAX_CLUSTER_BITS
V1_CLUSTER_BITS, V1_L2_BITS = (9, 16), (6, 13)  # qcow.c: clusters and L2 tables of 512 bytes .. 64 KiB
MAX_BACKING_NAME = 1023  # qemu refuses longer backing file names
MAX_L1_BYTES = 32 << 20  # QCOW_MAX_L1_SIZE
MAX_REFTABLE_BYTES = 8 << 20  # QCOW_MAX_REFTABLE_SIZE
MAX_SNAPSHOTS = 65536  # QCOW_MAX_SNAPSHOTS
MAX_SNAPSHOT_EXTRA = 1024  # QCOW_MAX_SNAPSHOT_EXTRA_DATA
MAX_BITMAPS = 65535  # QCOW2_MAX_BITMAPS
MAX_BITMAP_DIRECTORY = 1024 * MAX_BITMAPS
MIN_EXTENDED_L2_BITS = 14  # 32 subclusters of at least 512 bytes
INT_MAX = (1 << 31) - 1

FIRST_WINDOW, EXTENSION_WINDOW = 4096, 64 << 10  # extension bytes fetched in one read: the first, the most
MAX_FEATURE_NAMES = 192  # three feature bitmaps of 64 bits each
NAME_CAP = 256  # bytes read of one snapshot id or name
SHOWN_UNKNOWN = 64  # unknown extension types listed in details

V1_LAYOUT = Layout(
    "qcow header",
    [
        Spec("magic", 0, "4s", "QFI\\xfb", "bytes"),
        Spec("version", 4, "I", "1 for qcow"),
        Spec("backing_file_offset", 8, "Q", "offset of the backing file name, 0 for none"),
        Spec("backing_file_size", 16, "I", "length of the backing file name"),
        Spec("mtime", 20, "I", "modification time of the backing file"),
        Spec("size", 24, "Q", "virtual disk size in bytes"),
        Spec("cluster_bits", 32, "B", "log2 of the cluster size"),
        Spec("l2_bits", 33, "B", "log2 of the number of L2 table entries"),
        Spec("padding", 34, "H", "unused"),
        Spec("crypt_method", 36, "I", "0 none, 1 AES"),
        Spec("l1_table_offset", 40, "Q", "offset of the L1 table", "hex"),
    ],
    ">",
    "qcow version 1 header",
)

V2_LAYOUT = Layout(
    "qcow2 header",
    [
        Spec("magic", 0, "4s", "QFI\\xfb", "bytes"),
        Spec("version", 4, "I", "2 or 3"),
        Spec("backing_file_offset", 8, "Q", "offset of the backing file name, 0 for none"),
        Spec("backing_file_size", 16, "I", "length of the backing file name (at most 1023)"),
        Spec("cluster_bits", 20, "I", "log2 of the cluster size (9..21)"),
        Spec("size", 24, "Q", "virtual disk size in bytes"),
        Spec("crypt_method", 32, "I", "0 none, 1 AES (legacy), 2 LUKS"),
        Spec("l1_size", 36, "I", "entries in the active L1 table"),
        Spec("l1_table_offset", 40, "Q", "offset of the active L1 table", "hex"),
        Spec("refcount_table_offset", 48, "Q", "offset of the refcount table", "hex"),
        Spec("refcount_table_clusters", 56, "I", "clusters of the refcount table"),
        Spec("nb_snapshots", 60, "I", "internal snapshots"),
        Spec("snapshots_offset", 64, "Q", "offset of the snapshot table", "hex"),
    ],
    ">",
    "qcow2 version 2 header",
)

V3_LAYOUT = V2_LAYOUT.extended(
    Spec("incompatible_features", 72, "Q", "a reader must refuse unknown bits", "hex"),
    Spec("compatible_features", 80, "Q", "unknown bits may be ignored", "hex"),
    Spec("autoclear_features", 88, "Q", "unknown bits are cleared by a writer", "hex"),
    Spec("refcount_order", 96, "I", "refcount width is 2^order bits (at most 6)"),
    Spec("header_length", 100, "I", "header size in bytes (at least 104)"),
    description="qcow2 version 3 header",
)
V3_COMPRESSION_LAYOUT = V3_LAYOUT.extended(Spec("compression_type", 104, "B", "0 zlib, 1 zstd"))
V1_HEADER, V2_HEADER, V3_HEADER = V1_LAYOUT.size, V2_LAYOUT.size, V3_LAYOUT.size
COMPRESSION_OFFSET = V3_COMPRESSION_LAYOUT.offset_of("compression_type")
# what a version 2 header means for the rows only version 3 has
V2_DEFAULTS = {
    "incompatible_features": 0,
    "compatible_features": 0,
    "autoclear_features": 0,
    "refcount_order": 4,
    "header_length": V2_HEADER,
    "compression_type": 0,
}

SNAPSHOT_LAYOUT = Layout(
    "snapshot",
    [
        Spec("l1_table_offset", 0, "Q", "offset of the snapshot's L1 table", "hex"),
        Spec("l1_size", 8, "I", "entries in the snapshot's L1 table"),
        Spec("id_str_size", 12, "H", "length of the id"),
        Spec("name_size", 14, "H", "length of the name"),
        Spec("date_sec", 16, "I", "creation time, seconds since the epoch"),
        Spec("date_nsec", 20, "I", "creation time, nanoseconds"),
        Spec("vm_clock_nsec", 24, "Q", "guest run time in nanoseconds"),
        Spec("vm_state_size", 32, "I", "VM state size in bytes (32 bits)"),
        Spec("extra_data_size", 36, "I", "bytes of extra data (at most 1024)"),
    ],
)
SNAPSHOT_HEADER = SNAPSHOT_LAYOUT.size
SNAPSHOT_EXTRA_LAYOUT = Layout(
    "extra data",
    [
        Spec("vm_state_size_large", 0, "Q", "VM state size in bytes (64 bits)"),
        Spec("disk_size", 8, "Q", "virtual disk size of the snapshot"),
        Spec("icount", 16, "q", "instructions executed in icount mode, -1 if not recorded"),
    ],
)
SNAPSHOT_EXTRA_KNOWN = SNAPSHOT_EXTRA_LAYOUT.size

BITMAPS_LAYOUT = Layout(
    "bitmaps",
    [
        Spec("nb_bitmaps", 0, "I", "number of bitmaps (1..65535)"),
        Spec("reserved", 4, "I", "must be zero"),
        Spec("bitmap_directory_size", 8, "Q", "bytes of the bitmap directory"),
        Spec("bitmap_directory_offset", 16, "Q", "offset of the bitmap directory", "hex"),
    ],
)
BITMAP_ENTRY_LAYOUT = Layout(
    "bitmap directory entry",
    [
        Spec("bitmap_table_offset", 0, "Q", "offset of the bitmap table", "hex"),
        Spec("bitmap_table_size", 8, "I", "entries in the bitmap table"),
        Spec("flags", 12, "I", "bit 0 in use, 1 auto, 2 extra data compatible", "hex"),
        Spec("type", 16, "B", "1: dirty tracking bitmap"),
        Spec("granularity_bits", 17, "B", "log2 of the bytes one bit covers"),
        Spec("name_size", 18, "H", "length of the name"),
        Spec("extra_data_size", 20, "I", "bytes of extra data before the name"),
    ],
)
FEATURE_NAME_LAYOUT = Layout(
    "feature name",
    [
        Spec("type", 0, "B", "0 incompatible, 1 compatible, 2 autoclear"),
        Spec("bit", 1, "B"),
        Spec("name", 2, "46s", "", "text"),
    ],
)
EXTENSION_LAYOUT = Layout(
    "header extension", [Spec("type", 0, "I", "extension type, 0 ends the list", "hex"), Spec("length", 4, "I")]
)
CRYPTO_LAYOUT = Layout(
    "encryption header",
    [
        Spec("offset", 0, "Q", "offset of the LUKS header", "hex"),
        Spec("length", 8, "Q", "length of the LUKS header"),
    ],
)
LUKS_MAGIC = b"LUKS\xba\xbe"
# magic, version, cipher, mode, hash: the same in LUKS1 and LUKS2
LUKS_PEEK_LAYOUT = Layout("LUKS header", LUKS1.specs[:5], ">", "the qcow2 image's key material")

DIRTY, CORRUPT, DATA_FILE, COMPRESSION_BIT, EXTENDED_L2 = 1, 2, 4, 8, 16  # incompatible feature bits
LAZY_REFCOUNTS = 1  # compatible feature bit
BITMAPS, DATA_FILE_RAW = 1, 2  # autoclear feature bits
INCOMPATIBLE = {0: "dirty", 1: "corrupt", 2: "external data file", 3: "compression type", 4: "extended L2 entries"}
COMPATIBLE = {0: "lazy refcounts"}
AUTOCLEAR = {0: "bitmaps", 1: "raw external data"}
FEATURE_TYPES = {0: "incompatible", 1: "compatible", 2: "autoclear"}
COMPRESSION = {0: "zlib", 1: "zstd"}
CRYPT_AES, CRYPT_LUKS = 1, 2

EXT_END = 0
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_BITMAPS = 0x23852875
EXT_CRYPTO = 0x0537BE77
EXT_DATA_FILE = 0x44415441
EXTENSION_NAMES = {
    EXT_BACKING_FORMAT: "backing format",
    EXT_FEATURE_TABLE: "feature name table",
    EXT_BITMAPS: "bitmaps",
    EXT_CRYPTO: "full disk encryption header",
    EXT_DATA_FILE: "external data file",
}


def probe(reader: Reader) -> str | None:
    head = reader.read(0, 8)
    if head[:4] != MAGIC:
        return None
    return "qcow" if head[4:8] == b"\0\0\0\1" else "qcow2"


def parse(reader: Reader, info: Inspection) -> None:
    head = reader.read(0, HEADER_READ)
    if head[4:8] == b"\0\0\0\1":
        _parse_v1(reader, info, head)
    else:
        _parse_v2(reader, info, head)


# --- shared by qcow, qcow2 (and qed) -------------------------------------------------------------------------


def _align8(value: int) -> int:
    return (value + 7) & ~7


def _child(group: Field, name: str) -> Field | None:
    return next((c for c in group.children if c.name == name), None)


def _truncated(info: Inspection, fmt: str, have: int, need: int) -> bool:
    if have >= need:
        return False
    info.malformed(
        f"{info.format}.header-truncated", f"{fmt} header truncated: the file has {have} of its {need} bytes", 0
    )
    return True


def _set_encryption(info: Inspection, method: int, known: tuple[int, ...], field_offset: int) -> None:
    """crypt_method: 1 AES-CBC (qcow and qcow2), 2 LUKS (qcow2 only; its details come from an extension)."""
    if method == 0:
        return
    info.encrypted = True
    if method not in known:
        info.encryption = {"method": f"unknown ({method})"}
        info.malformed(
            f"{info.format}.crypt-method-unknown",
            f"crypt_method {method} is not a known {info.format} encryption method",
            field_offset,
        )
    elif method == CRYPT_AES:
        info.encryption = {
            "method": "aes",
            "cipher": "aes-128-cbc",
            "ivgen": "plain64",
            "key": "the first 16 bytes of a passphrase, no key derivation",
        }
        info.add(
            "weak-encryption",
            "AES-CBC with a plain64 IV and the passphrase used directly as the key (crypt_method 1)",
            field_offset,
        )
    else:
        info.encryption = {"method": "luks"}


# --- qcow version 1 ------------------------------------------------------------------------------------------


def _parse_v1(reader: Reader, info: Inspection, head: bytes) -> None:
    values, group = V1_LAYOUT.read(head[:V1_HEADER], 0)
    info.fields.append(group)
    if _truncated(info, "qcow", len(head), V1_HEADER):
        return
    size, bits, l2_bits = values["size"], values["cluster_bits"], values["l2_bits"]
    info.virtual_size = size
    info.details = {"version": 1, "l2_bits": l2_bits}
    if size <= 1:
        info.malformed(
            "qcow.size-too-small",
            f"virtual size {size} is too small (qemu needs at least 2 bytes)",
            V1_LAYOUT.offset_of("size"),
        )
    bits_ok = V1_CLUSTER_BITS[0] <= bits <= V1_CLUSTER_BITS[1]
    if bits_ok:
        info.cluster_size = 1 << bits
    else:
        info.malformed(
            "qcow.cluster-bits-range", f"cluster_bits {bits} outside {V1_CLUSTER_BITS[0]}..{V1_CLUSTER_BITS[1]}", 32
        )
    l2_ok = V1_L2_BITS[0] <= l2_bits <= V1_L2_BITS[1]
    if not l2_ok:
        info.malformed(
            "qcow.l2-bits-range",
            f"l2_bits {l2_bits} outside {V1_L2_BITS[0]}..{V1_L2_BITS[1]}",
            V1_LAYOUT.offset_of("l2_bits"),
        )
    _set_encryption(info, values["crypt_method"], (CRYPT_AES,), V1_LAYOUT.offset_of("crypt_method"))
    if bits_ok and l2_ok:
        shift = bits + l2_bits
        entries = (size + (1 << shift) - 1) >> shift
        if entries > INT_MAX // 8:
            info.malformed(
                "qcow.size-too-large", f"virtual size {size} needs {entries} L1 entries: too large for qemu", 24
            )
        else:
            info.fields.append(
                check_extent(reader, info, "qcow.l1", "L1 table", values["l1_table_offset"], entries * 8, None, None)
            )
    if values["backing_file_offset"]:
        read_backing_name(
            reader,
            info,
            values["backing_file_offset"],
            values["backing_file_size"],
            max_length=MAX_BACKING_NAME,
            region_end=None,
            fmt=None,
            field_offset=V1_LAYOUT.offset_of("backing_file_offset"),
        )
    else:
        no_backing_offset(info, values["backing_file_size"], V1_LAYOUT.offset_of("backing_file_size"))


# --- qcow2 ---------------------------------------------------------------------------------------------------


class Header:
    """The qcow2 header's typed values (the rows of its layout; version 2 gets V2_DEFAULTS for the rest)."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = {**V2_DEFAULTS, **values}
        self.version = self.values["version"]
        # cluster_bits clamped to the range qemu accepts, for bounds
        self.bounds_bits = min(max(self.values["cluster_bits"], MIN_CLUSTER_BITS), MAX_CLUSTER_BITS)
        self.cluster_size = 1 << self.bounds_bits

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    @property
    def extended_l2(self) -> bool:
        return bool(self.values["incompatible_features"] & EXTENDED_L2)

    @property
    def extensions_start(self) -> int:
        return max(self.values["header_length"], V3_HEADER) if self.version >= 3 else V2_HEADER

    @property
    def extensions_end(self) -> int:
        """qemu reads extensions up to the backing file name, or to the end of the first cluster."""
        return (
            min(self.values["backing_file_offset"], self.cluster_size)
            if self.values["backing_file_offset"]
            else self.cluster_size
        )


class _Extensions(Record):
    __slots__ = ("backing_format", "data_files", "feature_names", "crypto", "bitmaps", "found", "unknown")

    def __init__(self) -> None:
        self.backing_format: str | None = None
        self.data_files: list[tuple[str, int]] = []  # qemu uses the last one
        self.feature_names: dict[tuple[int, int], str] = {}
        self.crypto: tuple[int, int, int] | None = None  # LUKS header offset, length, extension offset
        self.bitmaps = 0
        self.found: list[str] = []
        self.unknown: list[str] = []


def header_layout(head: bytes) -> Layout:
    """The layout qemu reads the qcow2 header ``head`` with: version 2, 3, or 3 with the compression type."""
    if V2_LAYOUT.unpack(head).get("version", 0) < 3:
        return V2_LAYOUT
    long_header = V3_LAYOUT.unpack(head).get("header_length", 0) > COMPRESSION_OFFSET
    return V3_COMPRESSION_LAYOUT if long_header else V3_LAYOUT


def _parse_v2(reader: Reader, info: Inspection, head: bytes) -> None:
    version = V2_LAYOUT.unpack(head).get("version", 0)
    v3 = version >= 3
    values, group = header_layout(head).read(head, 0)
    group.description = f"qcow2 version {version} header"
    info.fields.append(group)
    if _truncated(info, "qcow2", len(head), V3_HEADER if v3 else V2_HEADER):
        return
    if version not in (2, 3):
        info.malformed(
            "qcow2.version", f"qcow2 version {version} is not 2 or 3 (qemu refuses it)", V3_LAYOUT.offset_of("version")
        )
    hdr = Header(values)
    info.virtual_size = hdr["size"]
    _check_header(reader, info, hdr)
    if hdr["backing_file_offset"]:  # read (and cached) first: extensions that use up the budget cannot hide it
        reader.read(hdr["backing_file_offset"], min(hdr["backing_file_size"], MAX_TEXT))
    exts, ext_group = _read_extensions(reader, info, hdr)
    info.fields.append(ext_group)
    _features(info, hdr, exts, group)
    _compression(info, hdr)
    _set_encryption(info, hdr["crypt_method"], (CRYPT_AES, CRYPT_LUKS), V3_LAYOUT.offset_of("crypt_method"))
    _luks(reader, info, hdr, exts)
    _data_file(info, hdr, exts)
    if hdr["backing_file_offset"]:
        read_backing_name(
            reader,
            info,
            hdr["backing_file_offset"],
            hdr["backing_file_size"],
            max_length=MAX_BACKING_NAME,
            region_end=hdr.cluster_size,
            fmt=exts.backing_format,
            field_offset=V3_LAYOUT.offset_of("backing_file_offset"),
        )
    else:
        no_backing_offset(info, hdr["backing_file_size"], V3_LAYOUT.offset_of("backing_file_size"))
    if exts.backing_format and not info.backing:
        info.malformed(
            "qcow2.backing-format-without-name",
            f"backing format {exts.backing_format!r} recorded, but no backing file name",
            V3_LAYOUT.offset_of("incompatible_features"),
        )
    _tables(reader, info, hdr)
    _snapshots(reader, info, hdr)
    info.details = _details(hdr, exts)


def _check_header(reader: Reader, info: Inspection, hdr: Header) -> None:
    if MIN_CLUSTER_BITS <= hdr["cluster_bits"] <= MAX_CLUSTER_BITS:
        info.cluster_size = hdr.cluster_size
    else:
        info.malformed(
            "qcow2.cluster-bits-range",
            f"cluster_bits {hdr['cluster_bits']} outside {MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS}",
            V3_LAYOUT.offset_of("cluster_bits"),
        )
    if hdr.version < 3:
        return
    length = hdr["header_length"]
    if length < V3_HEADER:
        info.malformed(
            "qcow2.header-length-too-small",
            f"header_length {length} is below the {V3_HEADER} bytes of a version 3 header",
            V3_LAYOUT.offset_of("header_length"),
        )
    elif length > hdr.cluster_size:
        info.malformed(
            "qcow2.header-length-past-cluster",
            f"header_length {length} exceeds the cluster size {hdr.cluster_size}",
            V3_LAYOUT.offset_of("header_length"),
        )
    elif length > reader.size:
        info.malformed(
            "qcow2.header-length-past-eof",
            f"header_length {length} runs past the end of the file ({reader.size} bytes)",
            V3_LAYOUT.offset_of("header_length"),
        )
    if length % 8:
        info.malformed(
            "qcow2.header-length-unaligned",
            f"header_length {length} is not a multiple of 8",
            V3_LAYOUT.offset_of("header_length"),
        )
    if hdr["refcount_order"] > 6:
        info.malformed(
            "qcow2.refcount-order-range",
            f"refcount_order {hdr['refcount_order']} above 6 (refcounts wider than 64 bits)",
            V3_LAYOUT.offset_of("refcount_order"),
        )
    if hdr.extended_l2 and hdr["cluster_bits"] < MIN_EXTENDED_L2_BITS:
        info.malformed(
            "qcow2.extended-l2-small-cluster",
            f"extended L2 entries need clusters of at least 16 KiB, not 2^{hdr['cluster_bits']}",
            V3_LAYOUT.offset_of("cluster_bits"),
        )


# --- header extensions ---------------------------------------------------------------------------------------


def _read_extensions(reader: Reader, info: Inspection, hdr: Header) -> tuple[_Extensions, Field]:
    """Walk the extensions between the header and ``extensions_end`` (qemu's qcow2_read_extensions).

    Running out of read budget here stops the walk only, so the backing file and tables are still read.
    """
    exts = _Extensions()
    group = Field("header extensions", hdr.extensions_start, 0, None, f"up to offset {hdr.extensions_end}")
    try:
        _walk_extensions(reader, info, hdr, exts, group)
    except BudgetExceeded as exc:
        info.cap(f"header extensions: {exc}; those up to offset {hdr.extensions_end} were not examined", exc.offset)
    return exts, group


class _Window:
    """A region read in growing chunks and served locally: walking many small entries costs one reader
    call per chunk, not one per entry (the read budget still counts every byte)."""

    def __init__(self, reader: Reader, end: int) -> None:
        self.reader, self.end = reader, end
        self.start, self.data, self.chunk = 0, b"", FIRST_WINDOW

    def get(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; past the end of the file, fewer."""
        if not self.start <= offset <= offset + length <= self.start + len(self.data):
            self.start = offset
            self.data = self.reader.read(offset, max(length, min(self.chunk, self.end - offset)))
            self.chunk = min(2 * self.chunk, EXTENSION_WINDOW)
        return self.data[offset - self.start : offset - self.start + length]


def _walk_extensions(reader: Reader, info: Inspection, hdr: Header, exts: _Extensions, group: Field) -> None:
    """Like qemu: every 8-byte extension header up to ``end``, whatever their number; bytes past the end of
    the file read as zeros (so an end marker). Every extension takes 8 bytes at least, which bounds the loop.

    Past MAX_LIST of one type only the last is handled, after the walk: qemu keeps the last of each."""
    start, end = hdr.extensions_start, hdr.extensions_end
    window = _Window(reader, end)
    offset = start
    counts: dict[int, int] = {}
    deferred: dict[int, tuple[int, int, Field]] = {}
    for index in range(max(0, end - start) // 8 + 1):
        group.size = offset - start
        if offset + 8 > end:
            break
        ext = EXTENSION_LAYOUT.unpack(window.get(offset, V3_LAYOUT.offset_of("backing_file_offset")).ljust(8, b"\0"))
        magic, length = ext["type"], ext["length"]
        data = offset + 8
        if length > end - data:
            info.malformed(
                "qcow2.extension-past-area",
                f"header extension 0x{magic:08x} at {offset}: {length} bytes run past {end}",
                offset,
            )
            break
        if magic == EXT_END:
            group.add(Field("end of extensions", offset, 8, "0x00000000"))
            group.size += 8
            break
        counts[magic] = seen = counts.get(magic, 0) + 1
        name = EXTENSION_NAMES.get(magic, "unknown")
        if seen == 2:
            info.malformed(
                "qcow2.extension-duplicate", f"header extension 0x{magic:08x} ({name}) appears more than once", offset
            )
        node = Field(f"{name} extension", offset, 8 + length, f"0x{magic:08x}", f"{length} bytes of data")
        if index < MAX_LIST:  # the tree keeps the first ones; every one is still read
            group.add(node)
        if seen == 1 and magic in EXTENSION_NAMES:
            exts.found.append(name)
        elif magic not in EXTENSION_NAMES and len(exts.unknown) < SHOWN_UNKNOWN:
            exts.unknown.append(f"0x{magic:08x}")
        if data + length > reader.size:  # qemu reads the missing bytes as zeros
            info.malformed(
                "qcow2.extension-past-eof",
                f"header extension 0x{magic:08x} at {offset} runs past the end of the file",
                offset,
            )
        if magic in _HANDLERS and seen <= MAX_LIST:
            _HANDLERS[magic](reader, info, hdr, exts, data, length, node)
        elif magic in _HANDLERS:
            deferred[magic] = (data, length, node)
        offset = data + _align8(length)
    for magic, (data, length, node) in deferred.items():
        _HANDLERS[magic](reader, info, hdr, exts, data, length, node)


def _ext_backing_format(
    reader: Reader, info: Inspection, hdr: Header, exts: _Extensions, data: int, length: int, node: Field
) -> None:
    if length >= 16:
        info.malformed(
            "qcow2.backing-format-too-long", f"backing format name of {length} bytes (qemu accepts at most 15)", data
        )
    exts.backing_format = clean_text(reader.read(data, min(length, V3_LAYOUT.offset_of("snapshots_offset")))) or None
    node.value = exts.backing_format


def _ext_feature_table(
    reader: Reader, info: Inspection, hdr: Header, exts: _Extensions, data: int, length: int, node: Field
) -> None:
    entry = FEATURE_NAME_LAYOUT.size
    count = min(length // entry, MAX_FEATURE_NAMES)
    raw = reader.read(data, count * entry)
    for index in range(len(raw) // entry):
        values = FEATURE_NAME_LAYOUT.unpack(raw[index * entry : (index + 1) * entry])
        kind, bit, name = values["type"], values["bit"], clean_text(values["name"])
        if not name:
            continue
        exts.feature_names[(kind, bit)] = name
        label = f"{FEATURE_TYPES.get(kind, f'type {kind}')} bit {bit}"
        node.add(Field(label, data + index * entry, entry, name, "feature name"))


def _ext_bitmaps(
    reader: Reader, info: Inspection, hdr: Header, exts: _Extensions, data: int, length: int, node: Field
) -> None:
    if length != 24:
        info.malformed("qcow2.bitmaps-extension-size", f"bitmaps extension of {length} bytes (must be 24)", data)
        return
    values, group = BITMAPS_LAYOUT.read(reader.read(data, BITMAPS_LAYOUT.size), data)
    node.children.extend(group.children)
    if not hdr["autoclear_features"] & BITMAPS:
        return  # qemu treats the bitmaps as inconsistent and ignores the extension
    count, dir_size, dir_offset = (
        values["nb_bitmaps"],
        values["bitmap_directory_size"],
        values["bitmap_directory_offset"],
    )
    problems = []
    if values["reserved"]:
        problems.append("reserved field is not zero")
    if not 1 <= count <= MAX_BITMAPS:
        problems.append(f"{count} bitmaps (1..{MAX_BITMAPS} allowed)")
    if dir_offset % hdr.cluster_size:
        problems.append(f"directory offset {dir_offset} is not cluster aligned")
    if dir_size > MAX_BITMAP_DIRECTORY:
        problems.append(f"directory of {dir_size} bytes is larger than {MAX_BITMAP_DIRECTORY}")
    elif dir_offset + dir_size > reader.size:
        problems.append(f"directory at {dir_offset} ({dir_size} bytes) runs past the end of the file")
    for problem in problems:
        info.malformed("qcow2.bitmaps-extension-field", f"bitmaps extension: {problem}", data)
    exts.bitmaps = count


def _ext_crypto(
    reader: Reader, info: Inspection, hdr: Header, exts: _Extensions, data: int, length: int, node: Field
) -> None:
    if hdr["crypt_method"] != CRYPT_LUKS:
        info.malformed(
            "qcow2.crypto-extension-without-luks",
            f"encryption header extension with crypt_method {hdr['crypt_method']} (not LUKS)",
            data,
        )
    if length != 16:
        info.malformed(
            "qcow2.crypto-extension-size", f"encryption header extension of {length} bytes (must be 16)", data
        )
        return
    # past the end of the file qemu reads zeros, as in the rest of the extension walk
    values, group = CRYPTO_LAYOUT.read(reader.read(data, CRYPTO_LAYOUT.size).ljust(CRYPTO_LAYOUT.size, b"\0"), data)
    node.children.extend(group.children)
    exts.crypto = (values["offset"], values["length"], data)


def _ext_data_file(
    reader: Reader, info: Inspection, hdr: Header, exts: _Extensions, data: int, length: int, node: Field
) -> None:
    name = clean_text(reader.read(data, min(length, MAX_TEXT)), "utf-8")
    node.value = name
    if len(exts.data_files) < MAX_LIST:
        exts.data_files.append((name, data))
    else:
        exts.data_files[-1] = (name, data)


_HANDLERS = {
    EXT_BACKING_FORMAT: _ext_backing_format,
    EXT_FEATURE_TABLE: _ext_feature_table,
    EXT_BITMAPS: _ext_bitmaps,
    EXT_CRYPTO: _ext_crypto,
    EXT_DATA_FILE: _ext_data_file,
}


# --- features, encryption, data file ----------------------------------------------------------------------


def _bit_names(value: int, known: dict[int, str], names: dict[tuple[int, int], str], kind: int) -> list[str]:
    return [known.get(bit) or names.get((kind, bit)) or f"bit {bit}" for bit in range(64) if value >> bit & 1]


def _features(info: Inspection, hdr: Header, exts: _Extensions, group: Field) -> None:
    for name, value, known, offset in (
        (
            "incompatible_features",
            hdr["incompatible_features"],
            INCOMPATIBLE,
            V3_LAYOUT.offset_of("incompatible_features"),
        ),
        ("compatible_features", hdr["compatible_features"], COMPATIBLE, V3_LAYOUT.offset_of("compatible_features")),
        ("autoclear_features", hdr["autoclear_features"], AUTOCLEAR, V3_LAYOUT.offset_of("autoclear_features")),
    ):
        node = _child(group, name)
        if node is not None:
            node.children = bit_flags(value, known, offset, V3_LAYOUT.offset_of("backing_file_offset"))
    if hdr["incompatible_features"] & DIRTY:
        info.dirty = True
        info.add(
            "dirty",
            "incompatible feature bit 0 (dirty): refcounts may be inconsistent",
            V3_LAYOUT.offset_of("incompatible_features"),
        )
    if hdr["incompatible_features"] & CORRUPT:
        info.corrupt = True
        info.add(
            "corrupt",
            "incompatible feature bit 1 (corrupt): metadata may be corrupt",
            V3_LAYOUT.offset_of("incompatible_features"),
        )
    for value, known, kind, offset, severity in (
        (hdr["incompatible_features"], INCOMPATIBLE, 0, V3_LAYOUT.offset_of("incompatible_features"), None),
        (hdr["compatible_features"], COMPATIBLE, 1, V3_LAYOUT.offset_of("compatible_features"), INFO),
        (hdr["autoclear_features"], AUTOCLEAR, 2, V3_LAYOUT.offset_of("autoclear_features"), INFO),
    ):
        unknown = value & ~sum(1 << bit for bit in known)
        if unknown:
            names = ", ".join(_bit_names(unknown, {}, exts.feature_names, kind))
            detail = f"unknown {FEATURE_TYPES[kind]} feature bits 0x{unknown:x}: {names}"
            info.add("unknown-features", detail, offset, severity)
    if hdr["autoclear_features"] & DATA_FILE_RAW and not hdr["incompatible_features"] & DATA_FILE:
        info.malformed(
            "qcow2.raw-data-without-data-file", "autoclear bit 1 (raw external data) without an external data file", 88
        )


def _compression(info: Inspection, hdr: Header) -> None:
    kind = hdr["compression_type"]
    if kind not in COMPRESSION:
        info.malformed(
            "qcow2.compression-type-unknown",
            f"compression_type {kind} is neither 0 (zlib) nor 1 (zstd)",
            COMPRESSION_OFFSET,
        )
    elif kind and not hdr["incompatible_features"] & COMPRESSION_BIT:
        info.malformed(
            "qcow2.compression-type-without-bit",
            f"compression_type {kind} without incompatible feature bit 3",
            COMPRESSION_OFFSET,
        )
    elif not kind and hdr["incompatible_features"] & COMPRESSION_BIT:
        info.malformed(
            "qcow2.compression-bit-with-zlib",
            "incompatible feature bit 3 (compression type) set, but the type is zlib",
            V3_LAYOUT.offset_of("incompatible_features"),
        )


def _luks(reader: Reader, info: Inspection, hdr: Header, exts: _Extensions) -> None:
    if hdr["crypt_method"] != CRYPT_LUKS:
        return
    if exts.crypto is None:
        info.malformed(
            "qcow2.luks-without-crypto-extension", "LUKS encryption without a full disk encryption header extension", 32
        )
        return
    offset, length, ext_offset = exts.crypto
    encryption: dict[str, Any] = {"method": "luks", "header_offset": offset, "header_length": length}
    info.encryption = encryption
    if offset % hdr.cluster_size:
        info.malformed("qcow2.luks-header-unaligned", f"LUKS header offset {offset} is not cluster aligned", ext_offset)
    if offset + length > reader.size:
        info.malformed(
            "qcow2.luks-header-past-eof",
            f"LUKS header at {offset} ({length} bytes) runs past the end of the file",
            ext_offset,
        )
    peek = reader.read(offset, 104)
    if len(peek) < 104 or not peek.startswith(LUKS_MAGIC):
        info.malformed("qcow2.luks-header-missing", f"no LUKS header at offset {offset}", ext_offset)
        return
    values, group = LUKS_PEEK_LAYOUT.read(peek, offset)
    info.fields.append(group)
    encryption.update(
        luks_version=values["version"],
        cipher=clean_text(values["cipher_name"]),
        cipher_mode=clean_text(values["cipher_mode"]),
        hash=clean_text(values["hash_spec"]),
    )


def _data_file(info: Inspection, hdr: Header, exts: _Extensions) -> None:
    """qemu opens the name of the last data file extension when incompatible bit 2 is set; every name is
    reported, since a reader that takes the first one (or ignores the bit) opens another."""
    raw = bool(hdr["autoclear_features"] & DATA_FILE_RAW)
    if not hdr["incompatible_features"] & DATA_FILE:
        for name, offset in exts.data_files:
            info.reference("data file (ignored by qemu)", name, offset, raw=raw)
            info.malformed(
                "qcow2.data-file-without-bit",
                f"external data file name {name!r} without incompatible feature bit 2",
                offset,
            )
        return
    if not exts.data_files:
        info.data_file = {"filename": None, "kind": None, "raw": raw}
        info.add(
            "external-data-file",
            "incompatible bit 2: data in an external file whose name the user supplies",
            V3_LAYOUT.offset_of("incompatible_features"),
        )
        return
    for name, offset in exts.data_files[:-1]:
        info.reference("data file (earlier extension)", name, offset, raw=raw)
        info.add("external-data-file", f"an earlier data file extension names {name!r} (qemu uses the last)", offset)
    name, offset = exts.data_files[-1]
    ref = info.reference("data file", name, offset, raw=raw)
    info.data_file = {"filename": ref["name"], "kind": ref["kind"], "raw": raw}
    info.add("external-data-file", f"guest data stored in {name!r}{' (raw)' if raw else ''}", offset)


# --- tables and snapshots ------------------------------------------------------------------------------------


def _tables(reader: Reader, info: Inspection, hdr: Header) -> None:
    cluster = hdr.cluster_size
    group = Field("tables", 0, 0, None, "metadata tables placed against the file size")
    group.add(
        check_extent(
            reader,
            info,
            "qcow2.l1",
            "active L1 table",
            hdr["l1_table_offset"],
            hdr["l1_size"] * 8,
            cluster,
            MAX_L1_BYTES,
        )
    )
    shift = 2 * hdr.bounds_bits - (4 if hdr.extended_l2 else 3)  # bytes mapped by one L1 entry: 2^shift
    needed = (hdr["size"] + (1 << shift) - 1) >> shift
    if needed > INT_MAX:
        info.malformed(
            "qcow2.size-too-large",
            f"virtual size {hdr['size']} needs {needed} L1 entries: too big for qemu",
            V3_LAYOUT.offset_of("size"),
        )
    elif hdr["l1_size"] < needed:
        info.malformed(
            "qcow2.l1-too-small",
            f"L1 table has {hdr['l1_size']} entries; the virtual size needs {needed}",
            V3_LAYOUT.offset_of("l1_size"),
        )
    if not hdr["refcount_table_clusters"]:
        info.malformed(
            "qcow2.refcount-table-empty", "refcount_table_clusters is 0: the image has no refcount table", 56
        )
    refcount_bytes = hdr["refcount_table_clusters"] * cluster
    group.add(
        check_extent(
            reader,
            info,
            "qcow2.refcount-table",
            "refcount table",
            hdr["refcount_table_offset"],
            refcount_bytes,
            cluster,
            MAX_REFTABLE_BYTES,
        )
    )
    info.fields.append(group)


def _snapshots(reader: Reader, info: Inspection, hdr: Header) -> None:
    count, offset = hdr["nb_snapshots"], hdr["snapshots_offset"]
    if count > MAX_SNAPSHOTS:
        info.malformed(
            "qcow2.snapshot-count",
            f"{count} snapshots (qemu accepts at most {MAX_SNAPSHOTS})",
            V3_LAYOUT.offset_of("nb_snapshots"),
        )
    if offset % hdr.cluster_size:
        info.malformed(
            "qcow2.snapshot-table-unaligned",
            f"snapshot table offset {offset} is not cluster aligned",
            V3_LAYOUT.offset_of("snapshots_offset"),
        )
    if not count:
        return
    group = Field("snapshot table", offset, 0, count, f"{count} entries declared")
    info.fields.append(group)
    position = offset
    index = 0
    window = _Window(reader, reader.size)
    try:
        for index in range(min(count, MAX_SNAPSHOTS)):  # qemu refuses more; the first MAX_LIST are kept
            if index < MAX_LIST:
                following = _snapshot(reader, info, index, position, group)
            else:
                following = _snapshot_checked(window, info, index, position)
            if following is None:
                return
            position = following
    except BudgetExceeded as exc:
        info.cap(f"snapshot table: {exc}; snapshots {index} to {count - 1} were not examined", exc.offset)
        return
    group.size = position - offset


def _snapshot_checked(window: _Window, info: Inspection, index: int, position: int) -> int | None:
    """An entry past those kept in the report: only what qemu checks (extra data size, end of file)."""
    head = window.get(position, SNAPSHOT_HEADER)
    if len(head) < SNAPSHOT_HEADER:
        info.malformed(
            "qcow2.snapshot-past-eof", f"snapshot {index} at {position} is cut by the end of the file", position
        )
        return None
    values = SNAPSHOT_LAYOUT.unpack(head)
    id_size, name_size, extra_size = values["id_str_size"], values["name_size"], values["extra_data_size"]
    end = position + SNAPSHOT_HEADER + extra_size + id_size + name_size
    if extra_size > MAX_SNAPSHOT_EXTRA or end > window.reader.size:
        info.malformed(
            "qcow2.snapshot-past-limits",
            f"snapshot {index} at {position}: extra data or names past qemu's limits",
            position,
        )
        return None
    return _align8(end)


def _snapshot(reader: Reader, info: Inspection, index: int, position: int, group: Field) -> int | None:
    """Read one snapshot entry at ``position``; the next entry's offset, or None when the table ends here."""
    head = reader.read(position, SNAPSHOT_HEADER)
    if len(head) < SNAPSHOT_HEADER:
        info.malformed(
            "qcow2.snapshot-past-eof", f"snapshot {index} at {position} is cut by the end of the file", position
        )
        return None
    values, node = SNAPSHOT_LAYOUT.read(head, position, f"snapshot {index}")
    group.add(node)
    extra_size, id_size, name_size = values["extra_data_size"], values["id_str_size"], values["name_size"]
    if extra_size > MAX_SNAPSHOT_EXTRA:
        info.malformed(
            "qcow2.snapshot-extra-too-large",
            f"snapshot {index}: {extra_size} bytes of extra data (qemu accepts {MAX_SNAPSHOT_EXTRA})",
            position,
        )
        return None
    extra, extra_node = SNAPSHOT_EXTRA_LAYOUT.read(
        reader.read(position + SNAPSHOT_HEADER, min(extra_size, SNAPSHOT_EXTRA_KNOWN)), position + SNAPSHOT_HEADER
    )
    node.add(extra_node)
    id_offset = position + SNAPSHOT_HEADER + extra_size
    name_offset = id_offset + id_size
    end = name_offset + name_size
    if end > reader.size:
        info.malformed(
            "qcow2.snapshot-past-eof",
            f"snapshot {index} at {position} ({end - position} bytes) runs past the end of the file",
            position,
        )
        return None
    snap_id = clean_text(reader.read(id_offset, min(id_size, NAME_CAP)))
    name = clean_text(reader.read(name_offset, min(name_size, NAME_CAP)))
    node.add(Field("id", id_offset, id_size, snap_id))
    node.add(Field("name", name_offset, name_size, name))
    node.size = end - position
    info.snapshots.append(
        {
            "id": snap_id,
            "name": name,
            "date": utc_text(values["date_sec"]),
            "date_sec": values["date_sec"],
            "date_nsec": values["date_nsec"],
            "vm_clock_nsec": values["vm_clock_nsec"],
            "vm_state_size": extra.get("vm_state_size_large", values["vm_state_size"]),
            "virtual_size": extra.get("disk_size"),
            "icount": extra.get("icount"),
            "l1_table_offset": values["l1_table_offset"],
            "l1_size": values["l1_size"],
        }
    )
    return _align8(end)


def _details(hdr: Header, exts: _Extensions) -> dict[str, Any]:
    names = exts.feature_names
    return {
        "version": hdr.version,
        "compat": {2: "0.10", 3: "1.1"}.get(hdr.version),
        "header_length": hdr["header_length"],
        "lazy_refcounts": bool(hdr["compatible_features"] & LAZY_REFCOUNTS),
        "refcount_bits": 1 << hdr["refcount_order"] if hdr["refcount_order"] <= 6 else None,
        "extended_l2": hdr.extended_l2,
        "compression_type": COMPRESSION.get(hdr["compression_type"], f"unknown ({hdr['compression_type']})"),
        "data_file_raw": bool(hdr["autoclear_features"] & DATA_FILE_RAW),
        "bitmaps": exts.bitmaps,
        "incompatible_features": _bit_names(hdr["incompatible_features"], INCOMPATIBLE, names, 0),
        "compatible_features": _bit_names(hdr["compatible_features"], COMPATIBLE, names, 1),
        "autoclear_features": _bit_names(hdr["autoclear_features"], AUTOCLEAR, names, 2),
        "header_extensions": exts.found,
        "unknown_extensions": exts.unknown[:SHOWN_UNKNOWN],
        "feature_names": [
            {"type": FEATURE_TYPES.get(kind, str(kind)), "bit": bit, "name": name}
            for (kind, bit), name in list(names.items())[:MAX_FEATURE_NAMES]
        ],
    }
