"""Hand-built Parallels, ISO 9660, DMG, Bochs and cloop images (qemu-img creates only the first).

Each builder returns a small but complete file that qemu's read-only driver for the format opens
(ISO: read as raw); keyword arguments make the hostile variants the tests need.
"""

from __future__ import annotations

import struct
import zlib

from workbench.engine.formats.bochs import HEADER as BOCHS
from workbench.engine.formats.bochs import VERSIONS as BOCHS_SIZE_AT
from workbench.engine.formats.cloop import HEADER as CLOOP
from workbench.engine.formats.dmg import ENCRYPTED_HEADER, KOLY_TRAILER, TRAILER
from workbench.engine.formats.parallels import HEADER as PARALLELS

SECTOR = 512
ISO_SECTOR = 2048
KIB = 1024
MIB = 1024 * KIB


# --- Parallels --------------------------------------------------------------------------------------


def parallels(
    *, disk_size: int = 16 * MIB, cluster: int = 64 * KIB, ext: bool = True, inuse: int = 0, ext_off: int = 0
) -> bytes:
    """Header, BAT (nothing allocated), padding to the cluster-aligned data area."""
    tracks = cluster // SECTOR
    entries = -(-disk_size // cluster)
    bat_end = PARALLELS.size + 4 * entries
    data_off = -(-bat_end // cluster) * cluster
    magic = b"WithouFreSpacExt" if ext else b"WithoutFreeSpace"
    header = PARALLELS.pack(
        magic=magic,
        version=2,
        heads=16,
        cylinders=disk_size // SECTOR // 16 // 32,
        tracks=tracks,
        bat_entries=entries,
        nb_sectors=disk_size // SECTOR,
        inuse=inuse,
        data_off=data_off // SECTOR,
        ext_off=ext_off,
    )
    return header.ljust(data_off, b"\0")


# --- ISO 9660 ---------------------------------------------------------------------------------------


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _a_chars(text: str, size: int) -> bytes:
    return text.encode("ascii").ljust(size, b" ")


def volume_descriptor(kind: int, blocks: int, *, volume_id: str = "WORKBENCH", escapes: bytes = b"") -> bytes:
    """A primary (1) or supplementary (2) volume descriptor."""
    vd = bytearray(ISO_SECTOR)
    vd[0:7] = bytes([kind]) + b"CD001\x01"
    vd[8:40] = _a_chars("LINUX", 32)
    vd[40:72] = _a_chars(volume_id, 32)
    vd[80:88] = _both32(blocks)
    vd[88 : 88 + len(escapes)] = escapes
    vd[120:124] = _both16(1)
    vd[124:128] = _both16(1)
    vd[128:132] = _both16(ISO_SECTOR)
    vd[190:318] = _a_chars("", 128)
    vd[318:446] = _a_chars("DISK IMAGE WORKBENCH", 128)
    vd[446:574] = _a_chars("", 128)
    vd[574:702] = _a_chars("WORKBENCH SAMPLES", 128)
    vd[813:830] = b"2024010112000000\0"
    vd[881] = 1
    return bytes(vd)


def _descriptor(kind: int, ident: bytes, body: bytes = b"") -> bytes:
    return (bytes([kind]) + ident + b"\x01" + body).ljust(ISO_SECTOR, b"\0")


def boot_catalog(load_rba: int) -> bytes:
    """El Torito validation entry (x86, checksummed) and a bootable no-emulation default entry."""
    entry = bytearray(32)
    entry[0] = 1
    entry[4:28] = b"WORKBENCH".ljust(24, b"\0")
    entry[30:32] = b"\x55\xaa"
    total = sum(struct.unpack("<16H", bytes(entry))) & 0xFFFF
    struct.pack_into("<H", entry, 28, (-total) & 0xFFFF)
    default = struct.pack("<BBHBBHI20x", 0x88, 0, 0, 0, 0, 4, load_rba)
    return (bytes(entry) + default).ljust(ISO_SECTOR, b"\0")


def iso(
    *,
    system_area: bytes = b"",
    el_torito: bool = False,
    joliet: bool = False,
    udf: bool = False,
    volume_id: str = "WORKBENCH",
    blocks: int | None = None,
) -> bytes:
    """An ISO 9660 image: system area, descriptor set from sector 16, optional UDF recognition sequence.

    No directory tree: the workbench reads descriptors only, and qemu reads the file as raw data.
    """
    descriptors = []
    catalog_sector = 16 + 8
    total = catalog_sector + 2 if blocks is None else blocks
    descriptors.append(volume_descriptor(1, total, volume_id=volume_id))
    if el_torito:
        body = b"EL TORITO SPECIFICATION".ljust(32, b"\0") + bytes(32) + struct.pack("<I", catalog_sector)
        descriptors.append(_descriptor(0, b"CD001", body))
    if joliet:
        descriptors.append(volume_descriptor(2, total, volume_id=volume_id, escapes=b"%/E"))
    descriptors.append(_descriptor(255, b"CD001"))
    if udf:
        descriptors += [_descriptor(0, ident) for ident in (b"BEA01", b"NSR02", b"TEA01")]
    image = bytearray(system_area[: 16 * ISO_SECTOR].ljust(16 * ISO_SECTOR, b"\0"))
    for descriptor in descriptors:
        image += descriptor
    image = image.ljust(catalog_sector * ISO_SECTOR, b"\0")
    image += boot_catalog(catalog_sector + 1) if el_torito else bytes(ISO_SECTOR)
    return bytes(image.ljust(max(total, catalog_sector + 2) * ISO_SECTOR, b"\0"))


def pure_udf() -> bytes:
    """Only a UDF volume recognition sequence at sector 16 (no ISO 9660 descriptors)."""
    image = bytearray(16 * ISO_SECTOR)
    for ident in (b"BEA01", b"NSR02", b"TEA01"):
        image += _descriptor(0, ident)
    return bytes(image.ljust(32 * ISO_SECTOR, b"\0"))


# --- DMG --------------------------------------------------------------------------------------------

PLIST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
    b'<plist version="1.0">\n<dict>\n\t<key>resource-fork</key>\n\t<dict/>\n</dict>\n</plist>\n'
)


def koly(
    *,
    data_length: int,
    xml_offset: int,
    xml_length: int,
    sectors: int,
    rsrc: tuple[int, int] = (0, 0),
    header_size: int = 512,
) -> bytes:
    return KOLY_TRAILER.pack(
        signature=b"koly",
        version=4,
        header_size=header_size,
        flags=1,
        data_fork_length=data_length,
        rsrc_fork_offset=rsrc[0],
        rsrc_fork_length=rsrc[1],
        segment_number=1,
        segment_count=1,
        xml_offset=xml_offset,
        xml_length=xml_length,
        image_variant=1,
        sector_count=sectors,
    ).ljust(TRAILER, b"\0")


def dmg(*, sectors: int = 2048, plist: bytes = PLIST, **trailer: int) -> bytes:
    """A data fork of zeros, the XML plist, then the koly trailer; ``trailer`` overrides its fields."""
    data = bytes(4096)
    values = {"data_length": len(data), "xml_offset": len(data), "xml_length": len(plist), "sectors": sectors}
    values.update(trailer)
    return data + plist + koly(**values)  # type: ignore[arg-type]  # rsrc is never among the overrides


def encrypted_dmg() -> bytes:
    return ENCRYPTED_HEADER.pack(signature=b"encrcdsa", version=2).ljust(4096, b"\0")


# --- Bochs ------------------------------------------------------------------------------------------


def bochs(
    *,
    disk_size: int = 16 * MIB,
    extent: int = 64 * KIB,
    catalog: int | None = None,
    version: int = 0x00020000,
    subtype: bytes = b"Growing",
) -> bytes:
    """A growing redolog with every catalog entry unallocated (0xffffffff)."""
    entries = -(-disk_size // extent) if catalog is None else catalog
    header = bytearray(
        BOCHS.pack(
            magic=b"Bochs Virtual HD Image",
            type=b"Redolog",
            subtype=subtype,
            version=version,
            header=512,
            catalog=entries,
            bitmap=SECTOR,
            extent=extent,
        ).ljust(512, b"\0")
    )
    at = BOCHS_SIZE_AT.get(version, BOCHS_SIZE_AT[0x00010000])  # where the version puts the disk size
    header[at : at + 8] = disk_size.to_bytes(8, "little")
    return bytes(header) + b"\xff" * (4 * entries)


# --- cloop ------------------------------------------------------------------------------------------

CLOOP_PREAMBLE = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"


def cloop(*, block_size: int = 64 * KIB, n_blocks: int = 4, offsets: list[int] | None = None) -> bytes:
    """Preamble, header, offsets and zlib-compressed zero blocks."""
    block = zlib.compress(bytes(block_size))
    start = CLOOP.size + 8 * (n_blocks + 1)
    if offsets is None:
        offsets = [start + index * len(block) for index in range(n_blocks + 1)]
    head = CLOOP_PREAMBLE.ljust(128, b"\0") + CLOOP.pack(block_size=block_size, n_blocks=n_blocks)[128:]
    return head + b"".join(struct.pack(">Q", offset) for offset in offsets) + block * n_blocks


def mutated(data: bytes, edits: list[tuple[int, bytes]]) -> bytearray:
    """``data`` with each ``(offset, bytes)`` edit written over it (never growing the file): fuzzing input."""
    image = bytearray(data)
    for offset, value in edits:
        piece = value[: max(0, len(image) - offset)]
        image[offset : offset + len(piece)] = piece
    return image


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of the Parallels, ISO, DMG, Bochs and cloop demonstration images."""
    return [
        ("expandable.hds", "parallels", parallels()),
        ("bootable.iso", "iso", iso(el_torito=True, joliet=True)),
        ("udif.dmg", "dmg", dmg()),
        ("growing.bochs", "bochs", bochs()),
        ("compressed.cloop", "cloop", cloop()),
    ]
