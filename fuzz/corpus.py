"""Seed images for fuzzing: every builder in tests/builders (stdlib only) and, where qemu-img exists, qemu's own images.

Each seed may carry a ``fix`` that recomputes the checksums of its format after an edit, so that a mutation
can reach past the checksum test into the structures behind it.

``python -m fuzz.corpus OUT [--no-qemu]`` writes the seeds for the coverage-guided target: each file is one
selector byte (the declared format, see :data:`DECLARED`) followed by the image.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.qemu_create import qemu_img_create  # noqa: E402
from tests.builders import luks, misc, partitions, qcow2, vdi, vhdx, vmdk, vpc  # noqa: E402
from workbench.engine.formats import KNOWN_NAMES  # noqa: E402
from workbench.engine.formats import vpc as vpc_format  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
SECTOR = 512
# The first byte of a fuzz input picks the declared format: None (probe only) or any known name.
DECLARED: tuple[str | None, ...] = (None, *KNOWN_NAMES)
FIX_CAP = 4 * MIB  # a fixer never hashes more than this, whatever a mutated size field says


@dataclass(frozen=True)
class Seed:
    name: str
    declared: str | None
    data: bytes
    fix: Callable[[bytearray], None] | None = None


def declared_for(selector: int) -> str | None:
    return DECLARED[selector % len(DECLARED)]


def fuzz_input(seed: Seed) -> bytes:
    """The seed as the coverage-guided target reads it: selector byte, then the image."""
    return bytes([DECLARED.index(seed.declared)]) + seed.data


# --- checksum fixers: each reads sizes from the (possibly mutated) image, clamped to the file ------------


def _u32be(image: bytearray, offset: int) -> int:
    return struct.unpack_from(">I", image, offset)[0] if offset + 4 <= len(image) else 0


def _fix_vpc_sector(image: bytearray, offset: int, length: int, field_at: int) -> None:
    block = image[offset : offset + length]
    if len(block) == length:
        struct.pack_into(">I", image, offset + field_at, vpc_format.checksum(bytes(block), field_at))


def fix_vpc(image: bytearray) -> None:
    """Footer (at EOF-512, and its copy at 0 when there is one), then the dynamic header it points to."""
    tail = max(0, len(image) - SECTOR)
    for offset in (0, tail):
        if image[offset : offset + 8] == b"conectix":
            _fix_vpc_sector(image, offset, SECTOR, 64)
    header_at = struct.unpack_from(">Q", image, tail + 16)[0] if tail + 24 <= len(image) else 0
    if header_at + 1024 <= len(image):
        _fix_vpc_sector(image, header_at, 1024, 36)
        if tail:
            _fix_vpc_sector(image, tail, SECTOR, 64)


def fix_gpt(image: bytearray) -> None:
    """The entry array's CRC32, then the header's (header at LBA 1 of 512-byte sectors)."""
    header = SECTOR
    if image[header : header + 8] != b"EFI PART" or len(image) < header + 92:
        return
    size = min(max(struct.unpack_from("<I", image, header + 12)[0], 92), SECTOR)
    lba, count, entry = struct.unpack_from("<QII", image, header + 72)
    start, length = lba * SECTOR, count * entry
    if length <= FIX_CAP and start + length <= len(image):
        struct.pack_into("<I", image, header + 88, zlib.crc32(image[start : start + length]))
    body = bytearray(image[header : header + size])
    body[16:20] = bytes(4)
    struct.pack_into("<I", image, header + 16, zlib.crc32(body))


def fix_luks2(image: bytearray) -> None:
    """SHA-256 of both header copies (binary header and JSON area), the checksum field counted as zero."""
    if len(image) < 16:
        return
    size = struct.unpack_from(">Q", image, 8)[0]
    for offset in (0, size):
        if size > FIX_CAP or offset + size > len(image) or image[offset + 6 : offset + 8] != b"\x00\x02" or size < 512:
            continue
        block = bytearray(image[offset : offset + size])
        block[448:512] = bytes(64)
        image[offset + 448 : offset + 512] = hashlib.sha256(block).digest().ljust(64, b"\0")


# --- the builders' seeds ------------------------------------------------------------------------------


def _qcow_seeds() -> list[Seed]:
    return [
        *(Seed(name, fmt, data) for name, fmt, data in qcow2.demo_images()),
        Seed("v2.qcow2", "qcow2", qcow2.qcow2(64 * MIB, version=2, backing="base.raw")),
        Seed("small-clusters.qcow2", "qcow2", qcow2.qcow2(64 * MIB, cluster_bits=9, compatible=1)),
        Seed("extended-l2.qcow2", "qcow2", qcow2.qcow2(64 * MIB, incompatible=qcow2.INCOMPAT_EXTENDED_L2)),
        Seed("data-file.qcow2", "qcow2", qcow2.qcow2(64 * MIB, data_file="data.raw", autoclear=2)),
        Seed("dirty-zstd.qcow2", "qcow2", qcow2.qcow2(64 * MIB, incompatible=9, compression_type=1, header_length=112)),
        Seed(
            "snapshots.qcow2",
            "qcow2",
            qcow2.qcow2(
                64 * MIB,
                snapshots=[qcow2.snapshot_entry("1", "first", vm_state_size=4096), qcow2.snapshot_entry("2", "two")],
            ),
        ),
        Seed(
            "bitmaps.qcow2",
            "qcow2",
            qcow2.qcow2(64 * MIB, autoclear=1, extensions=[(qcow2.EXT_BITMAPS, struct.pack(">IIQQ", 1, 0, 24, 0))]),
        ),
        Seed("backing.qcow", "qcow", qcow2.qcow1(64 * MIB, backing="base.img")),
        Seed("aes.qcow", "qcow", qcow2.qcow1(64 * MIB, crypt_method=qcow2.CRYPT_AES)),
        Seed("plain.qed", "qed", qcow2.qed(64 * MIB)),
        Seed("backing.qed", "qed", qcow2.qed(64 * MIB, backing="base.raw", backing_raw=True)),
    ]


def _luks_seeds() -> list[Seed]:
    return [
        Seed("luks1.luks", "luks", luks.luks1(active=(0, 3, 7))),
        Seed("luks2.luks", "luks", luks.luks2(label="demo", metadata=luks.luks2_metadata(kdf="argon2id")), fix_luks2),
        Seed(
            "luks2-slots.luks",
            "luks",
            luks.luks2(subsystem="sub", metadata=luks.luks2_metadata(keyslots=3)),
            fix_luks2,
        ),
    ]


def _misc_seeds() -> list[Seed]:
    return [
        *(Seed(name, fmt, data) for name, fmt, data in misc.demo_images()),
        Seed("plain.hdd", "parallels", misc.parallels(ext=False, inuse=0x746F6E59)),
        Seed("plain.iso", "iso", misc.iso(udf=True)),
        Seed("qcow2-in-system-area.iso", "iso", misc.iso(system_area=qcow2.qcow2(MIB, backing="/etc/passwd"))),
        Seed("udf-only.iso", "raw", misc.pure_udf()),
        Seed("encrypted.dmg", "dmg", misc.encrypted_dmg()),
        Seed("v1.bochs", "bochs", misc.bochs(version=0x00010000)),
    ]


def _partition_seeds() -> list[Seed]:
    layout = [(partitions.EFI_SYSTEM, 40, 1000, "EFI system"), (partitions.LINUX_FS, 1001, 2000, "root")]
    return [
        Seed("gpt.img", "raw", partitions.gpt(layout, size=MIB + 64 * KIB, entry_count=32), fix_gpt),
        Seed("mbr.img", "raw", partitions.mbr([(0x80, 0x83, 64, 1000), (0, 0x82, 1064, 900)], size=MIB)),
        Seed("mbr-extended.img", "raw", partitions.mbr_extended([(0x83, 64), (0x82, 64)], size=3 * MIB, ext_start=64)),
        Seed("mbr-chain.img", "raw", partitions.mbr_chain(6, ext_start=64)),
        Seed("fat.img", "raw", partitions.fat_boot_sector(size=64 * KIB)),
    ]


def _vmdk_seeds() -> list[Seed]:
    child = vmdk.descriptor(
        "monolithicSparse", (("RW", 2048, "SPARSE", "child.vmdk", None),), parent_cid=0x1234, parent_hint="base.vmdk"
    )
    extents = [
        ("RW", 2048, "FLAT", "flat-a.raw", 0),
        ("RDONLY", 4096, "SPARSE", "b.vmdk", None),
        ("NOACCESS", 8, "ZERO"),
    ]
    return [
        Seed("sparse.vmdk", "vmdk", vmdk.sparse()),
        Seed("child.vmdk", "vmdk", vmdk.sparse(desc=child)),
        Seed("stream.vmdk", "vmdk", vmdk.stream_optimized()),
        Seed("cowd.vmdk", "vmdk", vmdk.cowd(parent="parent.vmdk")),
        Seed("descriptor.vmdk", "vmdk", vmdk.descriptor_file(extents, "twoGbMaxExtentFlat")),
        Seed("host-extent.vmdk", "vmdk", vmdk.demo_host_file()),
    ]


def _vpc_seeds() -> list[Seed]:
    locators = [vpc.Locator(code, f"..\\base-{code.decode()}.vhd") for code in (b"W2ku", b"W2ru", b"Wi2k", b"Wi2r")]
    locators.append(vpc.Locator(b"MacX", "file://localhost/base.vhd"))
    return [
        Seed("fixed.vhd", "vpc", vpc.fixed(64 * KIB), fix_vpc),
        Seed("dynamic.vhd", "vpc", vpc.dynamic(), fix_vpc),
        Seed("differencing.vhd", "vpc", vpc.differencing(locators), fix_vpc),
        Seed("demo-differencing.vhd", "vpc", vpc.demo_differencing(), fix_vpc),
    ]


def _other_seeds() -> list[Seed]:
    return [
        *(Seed(name, fmt, data) for name, fmt, data in vdi.demo_images()),
        Seed("static.vdi", "vdi", vdi.vdi(image_type=2, disk_size=2 * MIB, description="static disk")),
        *(Seed(name, fmt, data, vhdx.fix_checksums) for name, fmt, data in vhdx.demo_images()),
        Seed("fixed.vhdx", "vhdx", vhdx.vhdx(fixed=True), vhdx.fix_checksums),
        Seed("zeros.raw", "raw", bytes(64 * KIB)),
        Seed("probe-only.bin", None, qcow2.qcow2(MIB)),
    ]


def builder_seeds() -> list[Seed]:
    """Seeds from every builder in :mod:`tests.builders`: stdlib only, a few MiB in all."""
    return [
        *_qcow_seeds(),
        *_luks_seeds(),
        *_misc_seeds(),
        *_partition_seeds(),
        *_vmdk_seeds(),
        *_vpc_seeds(),
        *_other_seeds(),
    ]


# --- qemu-img's images --------------------------------------------------------------------------------

_SECRET = ["--object", "secret,id=sec0,data=fuzz"]
# (file name, qemu format, declared format, extra arguments of qemu-img create)
QEMU_IMAGES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("qemu-v3.qcow2", "qcow2", "qcow2", ("-b", "base.raw", "-F", "raw", "-u")),
    ("qemu-v2.qcow2", "qcow2", "qcow2", ("-o", "compat=0.10")),
    ("qemu-l2.qcow2", "qcow2", "qcow2", ("-o", "extended_l2=on,lazy_refcounts=on,compression_type=zstd")),
    (
        "qemu-luks.qcow2",
        "qcow2",
        "qcow2",
        (*_SECRET, "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"),
    ),
    ("qemu.qcow", "qcow", "qcow", ()),
    ("qemu.qed", "qed", "qed", ("-b", "base.raw", "-F", "raw", "-u")),
    ("qemu.luks", "luks", "luks", (*_SECRET, "-o", "key-secret=sec0,iter-time=10")),
    ("qemu-sparse.vmdk", "vmdk", "vmdk", ()),
    ("qemu-stream.vmdk", "vmdk", "vmdk", ("-o", "subformat=streamOptimized")),
    ("qemu-dynamic.vhd", "vpc", "vpc", ()),
    ("qemu-fixed.vhd", "vpc", "vpc", ("-o", "subformat=fixed")),
    ("qemu.vhdx", "vhdx", "vhdx", ("-o", "log_size=1M,block_size=1M")),
    ("qemu.vdi", "vdi", "vdi", ()),
    ("qemu-static.vdi", "vdi", "vdi", ("-o", "static=on")),
    ("qemu.hdd", "parallels", "parallels", ()),
)
_FIXES = {"vpc": fix_vpc, "vhdx": vhdx.fix_checksums}


def qemu_seeds(folder: Path, qemu_img: str = "qemu-img", size: str = "1M") -> list[Seed]:
    """Images made by ``qemu-img create`` in ``folder`` (they are read back as bytes; LUKS with a fast KDF)."""
    seeds = []
    for name, fmt, declared, extra in QEMU_IMAGES:
        path = folder / name
        cmd = [qemu_img, "create", "-q", "-f", fmt, *extra, str(path), size]
        qemu_img_create(cmd, folder)
        seeds.append(Seed(name, declared, path.read_bytes(), _FIXES.get(fmt)))
    return seeds


def write_corpus(out: Path, seeds: Iterable[Seed]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in seeds:
        (out / f"seed-{seed.name}").write_bytes(fuzz_input(seed))
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the seed files into")
    parser.add_argument("--no-qemu", action="store_true", help="builder seeds only, even when qemu-img exists")
    args = parser.parse_args(argv)
    seeds = builder_seeds()
    qemu_img = None if args.no_qemu else shutil.which("qemu-img")
    if qemu_img:
        with tempfile.TemporaryDirectory() as folder:
            seeds += qemu_seeds(Path(folder), qemu_img)
    print(f"{write_corpus(args.out, seeds)} seeds in {args.out}" + ("" if qemu_img else " (no qemu-img images)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
