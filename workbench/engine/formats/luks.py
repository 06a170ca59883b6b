"""LUKS1 and LUKS2 encrypted volumes (cryptsetup's on-disk formats; qemu reads LUKS1 as ``luks``).

LUKS1 (LUKS On-Disk Format Specification 1.2.3): one 592-byte big-endian header with the cipher, the
payload offset in 512-byte sectors and 8 key slots of 48 bytes. LUKS2 (LUKS2 On-Disk Format
Specification): a 4096-byte binary header followed by a NUL-terminated JSON area up to ``hdr_size``,
then a secondary copy (magic ``SKUL\\xba\\xbe``) at offset ``hdr_size``. The keys, slots and data
segments live in the JSON, which is parsed with hard caps on size and item counts.
"""

from __future__ import annotations

import itertools
import json

# The five header checksums LUKS2 allows, from CPython's builtin hash modules (what hashlib falls back to):
# hashlib itself loads OpenSSL, ~3 ms of every engine child's start for digests these compute alike.
from _sha1 import sha1  # type: ignore[import-not-found]
from _sha256 import sha224, sha256  # type: ignore[import-not-found]
from _sha512 import sha384, sha512  # type: ignore[import-not-found]

from ..checks import overlaps
from ..fields import MAX_TEXT, Field, Layout, Spec, clean_text
from ..findings import WARNING
from ..inspection import Inspection
from ..reader import Reader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of the engine child's start)
if TYPE_CHECKING:
    from typing import Any

NAMES = ("luks",)
PRIORITY = 50

MAGIC = b"LUKS\xba\xbe"
SECONDARY_MAGIC = b"SKUL\xba\xbe"
SECTOR = 512

SLOT_ACTIVE = 0x00AC71F3
SLOT_INACTIVE = 0x0000DEAD

BINARY_SIZE = 4096
HEADER_SIZES = frozenset(16384 << n for n in range(9))  # 16 KiB .. 4 MiB (LUKS2 spec, hdr_size)
HEADER_CAP = 256 * 1024  # a whole header up to this size is read and its checksum verified
MAX_ITEMS = 32  # LUKS2 allows 32 keyslots, tokens and segments; more are listed as a count only
SHORT_TEXT = 256
CHECKSUMS = {"sha1": sha1, "sha224": sha224, "sha256": sha256, "sha384": sha384, "sha512": sha512}
KNOWN_REQUIREMENTS = {"online-reencrypt", "online-reencrypt-v2", "online-reencrypt-v3", "offline-reencrypt"}

LUKS1 = Layout(
    "LUKS1 header",
    [
        Spec("magic", 0, "6s", "LUKS\\xba\\xbe", "bytes"),
        Spec("version", 6, "H", "1 for LUKS1"),
        Spec("cipher_name", 8, "32s", "cipher, e.g. aes", "text"),
        Spec("cipher_mode", 40, "32s", "mode and IV generator, e.g. xts-plain64", "text"),
        Spec("hash_spec", 72, "32s", "hash for PBKDF2 and the anti-forensic splitter", "text"),
        Spec("payload_offset", 104, "I", "start of the encrypted data, in 512-byte sectors"),
        Spec("key_bytes", 108, "I", "master key length in bytes"),
        Spec("mk_digest", 112, "20s", "PBKDF2 digest of the master key", "bytes"),
        Spec("mk_digest_salt", 132, "32s", "salt of the master key digest", "bytes"),
        Spec("mk_digest_iterations", 164, "I", "PBKDF2 iterations of the master key digest"),
        Spec("uuid", 168, "40s", "volume UUID (text)", "text"),
    ],
    ">",
    "LUKS1 phdr (big-endian)",
)

SLOT = Layout(
    "key slot",
    [
        Spec("active", 0, "I", "0x00AC71F3 active, 0x0000DEAD inactive", "hex"),
        Spec("iterations", 4, "I", "PBKDF2 iterations"),
        Spec("salt", 8, "32s", "PBKDF2 salt", "bytes"),
        Spec("key_material_offset", 40, "I", "start of the split key, in sectors"),
        Spec("stripes", 44, "I", "anti-forensic stripes (4000)"),
    ],
    ">",
)

LUKS2 = Layout(
    "LUKS2 primary header",
    [
        Spec("magic", 0, "6s", "LUKS\\xba\\xbe (primary) or SKUL\\xba\\xbe (secondary)", "bytes"),
        Spec("version", 6, "H", "2 for LUKS2"),
        Spec("hdr_size", 8, "Q", "binary header plus JSON area, in bytes"),
        Spec("seqid", 16, "Q", "sequence id, increased on every update"),
        Spec("label", 24, "48s", "label", "text"),
        Spec("checksum_alg", 72, "32s", "checksum algorithm", "text"),
        Spec("salt", 104, "64s", "salt", "bytes"),
        Spec("uuid", 168, "40s", "volume UUID (text)", "text"),
        Spec("subsystem", 208, "48s", "owner subsystem label", "text"),
        Spec("hdr_offset", 256, "Q", "offset of this header copy from the device start"),
        Spec("checksum", 448, "64s", "checksum of the header with this field zeroed", "bytes"),
    ],
    ">",
    "binary header (big-endian)",
)


SLOTS_AT = LUKS1.size  # eight key slots follow the header
LUKS1_HEADER_SIZE = SLOTS_AT + 8 * SLOT.size


def probe(reader: Reader) -> str | None:
    return "luks" if reader.read(0, 6) == MAGIC else None


def parse(reader: Reader, info: Inspection) -> None:
    head = reader.read(0, 8)
    enc: dict[str, Any] = {"method": "luks"}
    info.encrypted = True
    info.encryption = enc
    if len(head) < 8:
        info.malformed("luks.header-truncated", f"LUKS header is {len(head)} bytes long, too short for a version", 0)
        return
    version = LUKS1.unpack(head)["version"]  # the same place in LUKS1 and LUKS2
    enc["version"] = version
    if version == 1:
        _parse_luks1(reader, info, enc)
    elif version == 2:
        _parse_luks2(reader, info, enc)
    else:
        info.malformed("luks.version", f"LUKS version {version} is neither 1 nor 2", LUKS1.offset_of("version"))


def _split_mode(encryption: str) -> tuple[str, str]:
    """``aes-xts-plain64`` -> (``aes``, ``xts-plain64``)."""
    cipher, _, mode = encryption.partition("-")
    return cipher, mode


def _set_payload(
    reader: Reader, info: Inspection, enc: dict[str, Any], offset: int, where: int, size: int | None = None
) -> None:
    """Logical size from the data offset: the rest of the file (qemu's luks driver) or a fixed size."""
    enc["payload_offset"] = offset
    if offset == 0:
        info.malformed(
            "luks.detached-header",
            "payload offset 0: a detached LUKS header, the encrypted data is not in this file (qemu refuses it)",
            where,
            WARNING,
        )
    elif offset + (size or 0) > reader.size:
        what = f"payload offset {offset}" if size is None else f"data segment {offset}+{size}"
        info.malformed("luks.payload-past-eof", f"{what} reaches past the end of the file ({reader.size} bytes)", where)
    info.virtual_size = max(0, reader.size - offset) if size is None else size


# ---------------------------------------------------------------- LUKS1


def _parse_luks1(reader: Reader, info: Inspection, enc: dict[str, Any]) -> None:
    data = reader.read(0, LUKS1_HEADER_SIZE)
    values, group = LUKS1.read(data, 0)
    info.fields.append(group)
    if len(data) < LUKS1_HEADER_SIZE:
        info.malformed(
            "luks1.header-truncated", f"LUKS1 header is {len(data)} bytes long, needs {LUKS1_HEADER_SIZE}", len(data)
        )
        return
    slots = []
    for index in range(8):
        base = SLOTS_AT + SLOT.size * index
        slot, slot_group = SLOT.read(data[base : base + SLOT.size], base, f"key slot {index}")
        group.add(slot_group)
        slots.append(slot)
    _check_luks1_slots(info, slots, values["key_bytes"], values["payload_offset"])
    enc.update(
        {
            "cipher": clean_text(values["cipher_name"]),
            "mode": clean_text(values["cipher_mode"]),
            "hash": clean_text(values["hash_spec"]),
            "key_size": values["key_bytes"] * 8,
            "key_slots_active": sum(1 for slot in slots if slot["active"] == SLOT_ACTIVE),
            "key_slots": [
                {
                    "index": index,
                    "active": slot["active"] == SLOT_ACTIVE,
                    "iterations": slot["iterations"],
                    "key_offset": slot["key_material_offset"] * SECTOR,
                    "stripes": slot["stripes"],
                }
                for index, slot in enumerate(slots)
            ],
            "uuid": clean_text(values["uuid"]),
        }
    )
    _set_payload(reader, info, enc, values["payload_offset"] * SECTOR, LUKS1.offset_of("payload_offset"))


def _check_luks1_slots(info: Inspection, slots: list[dict[str, Any]], key_bytes: int, payload: int) -> None:
    """The checks qemu (crypto/block-luks.c) and cryptsetup make before trusting the slot table.

    A slot's split key takes ``key_bytes * stripes`` bytes from its key material offset (in sectors).
    """
    if key_bytes == 0:
        info.malformed("luks1.key-length-zero", "LUKS1 master key length is 0", LUKS1.offset_of("key_bytes"))
    spans = []
    for index, slot in enumerate(slots):
        where = SLOTS_AT + SLOT.size * index
        start, stripes = slot["key_material_offset"], slot["stripes"]
        end = start - (-key_bytes * stripes // SECTOR)
        spans.append((start, end, index))
        if slot["active"] not in (SLOT_ACTIVE, SLOT_INACTIVE):
            info.malformed(
                "luks1.key-slot-state",
                f"key slot {index} state 0x{slot['active']:08x} is neither active nor inactive",
                where,
            )
        if stripes == 0:
            info.malformed(
                "luks1.key-slot-stripes",
                f"key slot {index} has 0 anti-forensic stripes",
                SLOT.offset_of("stripes", where),
            )
        if start * SECTOR < LUKS1_HEADER_SIZE:
            info.malformed(
                "luks1.key-slot-overlaps-header",
                f"key slot {index} key material at sector {start} overlaps the header",
                SLOT.offset_of("key_material_offset", where),
            )
        elif payload and end > payload:
            info.malformed(
                "luks1.key-slot-overlaps-payload",
                f"key slot {index} key material (sectors {start}..{end}) overlaps the payload at sector {payload}",
                SLOT.offset_of("key_material_offset", where),
            )
    for first, second in overlaps(spans):
        info.malformed(
            "luks1.key-slots-overlap", f"key slots {first} and {second} have overlapping key material", SLOTS_AT
        )


# ---------------------------------------------------------------- LUKS2


def _parse_luks2(reader: Reader, info: Inspection, enc: dict[str, Any]) -> None:
    binary = reader.read(0, BINARY_SIZE)
    values, group = LUKS2.read(binary, 0)
    info.fields.append(group)
    if len(binary) < BINARY_SIZE:
        info.malformed(
            "luks2.header-truncated",
            f"LUKS2 binary header is {len(binary)} bytes long, needs {BINARY_SIZE}",
            len(binary),
        )
        return
    enc.update({name: clean_text(values[name]) for name in ("uuid", "label", "subsystem")} | {"seqid": values["seqid"]})
    hdr_size = values["hdr_size"]
    if hdr_size not in HEADER_SIZES:
        info.malformed(
            "luks2.header-size",
            f"LUKS2 hdr_size {hdr_size} is not a power of two from 16 KiB to 4 MiB",
            LUKS2.offset_of("hdr_size"),
        )
        if not BINARY_SIZE < hdr_size <= max(HEADER_SIZES):
            return
    if values["hdr_offset"] != 0:
        info.malformed(
            "luks2.header-offset",
            f"primary LUKS2 header says it is at offset {values['hdr_offset']}, not 0",
            LUKS2.offset_of("hdr_offset"),
        )
    header = reader.read(0, min(hdr_size, HEADER_CAP))
    complete = len(header) == hdr_size
    if len(header) < min(hdr_size, HEADER_CAP):
        info.malformed(
            "luks2.header-past-eof",
            f"LUKS2 header is cut by the end of file: {len(header)} of {hdr_size} bytes",
            len(header),
        )
    elif not complete:
        info.add(
            "read-budget",
            f"LUKS2 header is {hdr_size} bytes; read only the first {len(header)}, checksums not verified",
            HEADER_CAP,
        )
    _verify_checksum(info, header, values, complete, "primary", 0)
    metadata = _load_json(info, header[BINARY_SIZE:], complete)
    if metadata is not None:
        _interpret(reader, info, enc, metadata, hdr_size)
    if hdr_size in HEADER_SIZES:
        _check_secondary(reader, info, values, hdr_size)


def _verify_checksum(
    info: Inspection, header: bytes, values: dict[str, Any], complete: bool, which: str, base: int
) -> None:
    alg = clean_text(values["checksum_alg"])
    if alg not in CHECKSUMS:
        info.malformed(
            "luks2.checksum-algorithm",
            f"{which} LUKS2 header checksum algorithm {alg!r} is not known here",
            LUKS2.offset_of("checksum_alg", base),
        )
        return
    if not complete:
        return
    at, size = LUKS2.offset_of("checksum"), LUKS2.size_of("checksum")
    digest = CHECKSUMS[alg](header[:at] + bytes(size) + header[at + size :]).digest()
    stored = header[at : at + size]
    if stored != digest + bytes(size - len(digest)):
        info.add(
            "checksum-mismatch",
            f"{which} LUKS2 header {alg} is {stored[: len(digest)].hex()}, computed {digest.hex()}",
            LUKS2.offset_of("checksum", base),
        )


def _load_json(info: Inspection, area: bytes, complete: bool) -> dict[str, Any] | None:
    """The metadata object from the JSON area (NUL-terminated text, zero padding after it)."""
    text, nul, _ = area.partition(b"\0")
    if not nul and not complete:
        info.add("read-budget", f"LUKS2 JSON text runs past the {len(area)} bytes read; not parsed", BINARY_SIZE)
        return None
    try:
        metadata = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the interpreter allows
        problem = f"{type(exc).__name__}: {exc}"[:SHORT_TEXT]
        info.malformed(
            "luks2.json-invalid", f"LUKS2 JSON area ({len(text)} bytes) is not valid JSON: {problem}", BINARY_SIZE
        )
        return None
    if not isinstance(metadata, dict):
        info.malformed(
            "luks2.json-not-object", f"LUKS2 JSON metadata is a {type(metadata).__name__}, not an object", BINARY_SIZE
        )
        return None
    return metadata


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _text(value: Any) -> str | None:
    return value[:SHORT_TEXT] if isinstance(value, str) else None


def _number(value: Any) -> int | None:
    """LUKS2 writes 64-bit values as decimal strings and small ones as JSON numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _is_decimal(value) and len(value) <= 20:
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < 1 << 64 else None


def _object(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _items(info: Inspection, metadata: dict[str, Any], section: str) -> list[tuple[str, dict[str, Any]]]:
    """The first MAX_ITEMS entries of a JSON section, sorted by id; more are a finding, not a loop."""
    entries = _object(metadata, section)
    if len(entries) > MAX_ITEMS:
        info.malformed(
            "luks2.json-too-many", f"LUKS2 JSON has {len(entries)} {section} (at most {MAX_ITEMS})", BINARY_SIZE
        )
    kept = [(str(key)[:SHORT_TEXT], value) for key, value in itertools.islice(entries.items(), MAX_ITEMS)]
    kept.sort(key=lambda item: (not _is_decimal(item[0]), int(item[0]) if _is_decimal(item[0]) else 0, item[0]))
    return [(key, value if isinstance(value, dict) else {}) for key, value in kept]


def _keyslot(slot_id: str, slot: dict[str, Any]) -> dict[str, Any]:
    kdf, area, af = _object(slot, "kdf"), _object(slot, "area"), _object(slot, "af")
    summary = {
        "id": slot_id,
        "type": _text(slot.get("type")),
        "key_size": _number(slot.get("key_size")),
        "priority": _number(slot.get("priority")),
        "area_type": _text(area.get("type")),
        "area_offset": _number(area.get("offset")),
        "area_size": _number(area.get("size")),
        "area_encryption": _text(area.get("encryption")),
        "af_stripes": _number(af.get("stripes")),
        "af_hash": _text(af.get("hash")),
        "kdf": _text(kdf.get("type")),
        "kdf_hash": _text(kdf.get("hash")),
        "kdf_iterations": _number(kdf.get("iterations")),
        "kdf_time": _number(kdf.get("time")),
        "kdf_memory": _number(kdf.get("memory")),
        "kdf_cpus": _number(kdf.get("cpus")),
    }
    return {key: value for key, value in summary.items() if value is not None}


def _segment(seg_id: str, seg: dict[str, Any]) -> dict[str, Any]:
    size = seg.get("size")
    summary = {
        "id": seg_id,
        "type": _text(seg.get("type")),
        "offset": _number(seg.get("offset")),
        "size": "dynamic" if size == "dynamic" else _number(size),
        "encryption": _text(seg.get("encryption")),
        "sector_size": _number(seg.get("sector_size")),
    }
    return {key: value for key, value in summary.items() if value is not None}


def _digest(digest_id: str, digest: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "id": digest_id,
        "type": _text(digest.get("type")),
        "hash": _text(digest.get("hash")),
        "iterations": _number(digest.get("iterations")),
    }
    for key in ("keyslots", "segments"):
        refs = digest.get(key)
        if isinstance(refs, list):
            summary[key] = [_text(ref) for ref in refs[:MAX_ITEMS]]
    return {key: value for key, value in summary.items() if value is not None}


def _summary_group(name: str, offset: int, size: int, items: list[dict[str, Any]]) -> Field:
    group = Field(name, offset, size, len(items), "from the JSON area (offsets are of the whole area)")
    for item in items:
        node = group.add(Field(f"{name[:-1]} {item['id']}", offset, size, item.get("type")))
        for key, value in item.items():
            shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
            node.add(Field(key, offset, size, shown))
    return group


def _interpret(reader: Reader, info: Inspection, enc: dict[str, Any], metadata: dict[str, Any], hdr_size: int) -> None:
    json_size = hdr_size - BINARY_SIZE
    keyslots = [_keyslot(k, v) for k, v in _items(info, metadata, "keyslots")]
    segments = [_segment(k, v) for k, v in _items(info, metadata, "segments")]
    digests = [_digest(k, v) for k, v in _items(info, metadata, "digests")]
    tokens = [{"id": k, "type": _text(v.get("type"))} for k, v in _items(info, metadata, "tokens")]
    config = _object(metadata, "config")
    area = Field("JSON area", BINARY_SIZE, json_size, None, "LUKS2 metadata")
    for name, items in (("keyslots", keyslots), ("segments", segments), ("digests", digests), ("tokens", tokens)):
        area.add(_summary_group(name, BINARY_SIZE, json_size, items))
    info.fields.append(area)
    _check_config(info, enc, config, json_size)
    crypt = next((seg for seg in segments if seg.get("type") == "crypt"), segments[0] if segments else {})
    cipher, mode = _split_mode(crypt.get("encryption", ""))
    enc.update(
        {
            "cipher": cipher,
            "mode": mode,
            "hash": digests[0].get("hash") if digests else None,
            "key_size": _number(keyslots[0]["key_size"] * 8) if keyslots and "key_size" in keyslots[0] else None,
            "sector_size": crypt.get("sector_size"),
            "key_slots_active": len(_object(metadata, "keyslots")),
            "key_slots": keyslots,
            "segments": segments,
            "tokens": len(_object(metadata, "tokens")),
        }
    )
    if not segments:
        info.malformed("luks2.no-segment", "LUKS2 JSON has no data segment", BINARY_SIZE)
        return
    offset = crypt.get("offset")
    if not isinstance(offset, int):
        info.malformed("luks2.segment-offset", f"LUKS2 segment {crypt['id']} has no valid offset", BINARY_SIZE)
        return
    _check_areas(info, keyslots, hdr_size, offset)
    size = crypt.get("size")
    _set_payload(reader, info, enc, offset, BINARY_SIZE, size if isinstance(size, int) else None)


def _check_config(info: Inspection, enc: dict[str, Any], config: dict[str, Any], json_size: int) -> None:
    declared = _number(config.get("json_size"))
    if declared != json_size:
        info.malformed(
            "luks2.json-size",
            f"LUKS2 config json_size {declared} differs from hdr_size - 4096 = {json_size}",
            BINARY_SIZE,
        )
    requirements = _object(config, "requirements").get("mandatory")
    if isinstance(requirements, list):
        names = [_text(r) or repr(r)[:SHORT_TEXT] for r in requirements[:MAX_ITEMS]]
        enc["requirements"] = names
        unknown = [name for name in names if name not in KNOWN_REQUIREMENTS]
        if unknown:
            info.add("unknown-features", f"LUKS2 mandatory requirements not known: {', '.join(unknown)}"[:MAX_TEXT])


def _check_areas(info: Inspection, keyslots: list[dict[str, Any]], hdr_size: int, data_offset: int) -> None:
    """Keyslot areas sit between the two header copies and the data segment."""
    for slot in keyslots:
        start, size = slot.get("area_offset"), slot.get("area_size")
        if start is None or size is None:
            info.malformed(
                "luks2.keyslot-area", f"LUKS2 keyslot {slot['id']} has no valid area offset and size", BINARY_SIZE
            )
        elif start < 2 * hdr_size or (data_offset and start + size > data_offset):
            info.malformed(
                "luks2.keyslot-overlaps-headers",
                f"LUKS2 keyslot {slot['id']} area {start}+{size} overlaps the headers (0..{2 * hdr_size}) "
                f"or the data at {data_offset}",
                BINARY_SIZE,
            )


def _check_secondary(reader: Reader, info: Inspection, primary: dict[str, Any], hdr_size: int) -> None:
    header = reader.read(hdr_size, hdr_size if hdr_size <= HEADER_CAP else BINARY_SIZE)
    complete = len(header) == hdr_size
    values, group = LUKS2.read(header[:BINARY_SIZE], hdr_size, "LUKS2 secondary header")
    if len(header) < BINARY_SIZE or header[:6] != SECONDARY_MAGIC:
        info.malformed(
            "luks2.secondary-missing",
            f"no LUKS2 secondary header (SKUL\\xba\\xbe) at offset {hdr_size}",
            hdr_size,
            WARNING,
        )
        return
    info.fields.append(group)
    if values["hdr_size"] != hdr_size or values["hdr_offset"] != hdr_size:
        info.malformed(
            "luks2.secondary-placement",
            f"secondary LUKS2 header has hdr_size {values['hdr_size']} and hdr_offset {values['hdr_offset']}, "
            f"expected {hdr_size} for both",
            LUKS2.offset_of("hdr_size", hdr_size),
        )
    if values["seqid"] != primary["seqid"]:
        info.malformed(
            "luks2.copies-disagree",
            f"LUKS2 header copies disagree: primary seqid {primary['seqid']}, secondary {values['seqid']} "
            "(an interrupted update; cryptsetup takes the newer one)",
            LUKS2.offset_of("seqid", hdr_size),
            WARNING,
        )
    _verify_checksum(info, header, values, complete, "secondary", hdr_size)
