"""Apple UDIF disk image (.dmg): the big-endian 512-byte ``koly`` trailer at the end of the file.

Trailer layout from Apple's UDIFResourceFile (as documented at newosxbook.com/DMG.html); checks follow
qemu's block/dmg.c, which takes the virtual size from the trailer's sector count and its block map from
the resource fork or, when that is empty, from the XML property list. The plist is never parsed here
(hostile XML); only its range and first bytes are reported. Encrypted images (``encrcdsa`` at offset 0)
have no readable trailer: they are reported as encrypted.
"""

from __future__ import annotations

from ..fields import Layout, Spec, clean_text
from ..inspection import Inspection
from ..reader import Reader

NAMES = ("dmg",)
PRIORITY = 30

TRAILER = 512
KOLY = b"koly"
ENCRYPTED = b"encrcdsa"
SECTOR = 512
MAX_PLIST = 16 << 20  # qemu refuses a larger XML plist
PLIST_PEEK = 64

KOLY_TRAILER = Layout(
    "koly trailer",
    [
        Spec("signature", 0, "4s", "koly", "text"),
        Spec("version", 4, "I", "4"),
        Spec("header_size", 8, "I", "512"),
        Spec("flags", 12, "I", "bit 0 flattened, bit 2 internet-enabled", "hex"),
        Spec("running_data_fork_offset", 16, "Q"),
        Spec("data_fork_offset", 24, "Q", "start of the (compressed) data"),
        Spec("data_fork_length", 32, "Q"),
        Spec("rsrc_fork_offset", 40, "Q", "resource fork (block map of old images)"),
        Spec("rsrc_fork_length", 48, "Q"),
        Spec("segment_number", 56, "I"),
        Spec("segment_count", 60, "I"),
        Spec("segment_id", 64, "16s", "", "uuid"),
        Spec("data_checksum_type", 80, "I"),
        Spec("data_checksum_size", 84, "I", "bits"),
        Spec("data_checksum", 88, "128s", "", "bytes"),
        Spec("xml_offset", 216, "Q", "XML property list with the block map (blkx)"),
        Spec("xml_length", 224, "Q"),
        Spec("checksum_type", 352, "I"),
        Spec("checksum_size", 356, "I", "bits"),
        Spec("checksum", 360, "128s", "master checksum", "bytes"),
        Spec("image_variant", 488, "I"),
        Spec("sector_count", 492, "Q", "virtual size in 512-byte sectors"),
    ],
    ">",
)

ENCRYPTED_HEADER = Layout(
    "encrypted image header",
    [
        Spec("signature", 0, "8s", "encrcdsa", "text"),
        Spec("version", 8, "I", "2"),
    ],
    ">",
)


def probe(reader: Reader) -> str | None:
    if reader.size >= TRAILER and reader.read(reader.size - TRAILER, 4) == KOLY:
        return "dmg"
    return "dmg" if reader.read(0, 8) == ENCRYPTED else None


def parse(reader: Reader, info: Inspection) -> None:
    base = reader.size - TRAILER
    if base < 0 or reader.read(base, 4) != KOLY:
        _encrypted(reader, info)
        return
    data = reader.read(base, TRAILER)
    values, group = KOLY_TRAILER.read(data, base)
    info.fields.append(group)
    if values["header_size"] != TRAILER:
        info.malformed(
            "dmg.trailer-size",
            f"trailer header size {values['header_size']}, expected 512",
            KOLY_TRAILER.offset_of("header_size", base),
        )
    count = values["sector_count"]
    if count >> 63:
        info.malformed(
            "dmg.sector-count-negative",
            f"sector count 0x{count:x} is negative as a signed number (qemu refuses)",
            KOLY_TRAILER.offset_of("sector_count", base),
        )
    else:
        info.virtual_size = count * SECTOR
    info.details.update({"version": values["version"], "segments": values["segment_count"]})
    _check_ranges(reader, info, values, base)


def _check_ranges(reader: Reader, info: Inspection, v: dict[str, int], base: int) -> None:
    """Data fork, resource fork and plist must lie before the trailer; one of the two block maps is needed."""
    for label, field, start, length in (
        ("data fork", "data_fork_offset", v["data_fork_offset"], v["data_fork_length"]),
        ("resource fork", "rsrc_fork_offset", v["rsrc_fork_offset"], v["rsrc_fork_length"]),
        ("XML plist", "xml_offset", v["xml_offset"], v["xml_length"]),
    ):
        if start > base or length > base - start:
            info.malformed(
                "dmg.fork-placement",
                f"{label} {start}+{length} does not end before the trailer at {base}",
                KOLY_TRAILER.offset_of(field, base),
            )
    xml_offset, xml_length = v["xml_offset"], v["xml_length"]
    info.details["plist"] = {"offset": xml_offset, "length": xml_length}
    if v["rsrc_fork_length"] == 0 and xml_length == 0:
        info.malformed(
            "dmg.no-block-map",
            "neither a resource fork nor an XML plist: the image has no block map",
            KOLY_TRAILER.offset_of("xml_offset", base),
        )
    if xml_length > MAX_PLIST:
        info.malformed(
            "dmg.plist-too-large",
            f"XML plist of {xml_length} bytes exceeds qemu's 16 MiB limit",
            KOLY_TRAILER.offset_of("xml_length", base),
        )
    if xml_length and xml_offset < base:
        peek = reader.read(xml_offset, min(PLIST_PEEK, xml_length))
        info.details["plist"]["starts_with"] = clean_text(peek, cap=PLIST_PEEK)
        if not peek.lstrip().startswith((b"<?xml", b"<plist", b"<!DOCTYPE")):
            info.malformed(
                "dmg.plist-not-xml",
                f"XML plist at {xml_offset} does not start like XML",
                KOLY_TRAILER.offset_of("xml_offset", base),
            )


def _encrypted(reader: Reader, info: Inspection) -> None:
    data = reader.read(0, 12)
    values, group = ENCRYPTED_HEADER.read(data, 0)
    info.fields.append(group)
    info.encrypted = True
    info.encryption = {"method": "Apple encrypted disk image (encrcdsa)", "version": values.get("version")}
    info.details["note"] = "the UDIF trailer is inside the encrypted payload; qemu cannot open this image"
