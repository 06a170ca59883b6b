"""LUKS2 volumes built byte by byte, for the demonstration set (headers only; the payload is zeros).

The defaults mirror what cryptsetup writes (aes-xts-plain64, sha256, 4000 anti-forensic stripes), with
a small data offset so the images stay small. Keyword arguments make the hostile variants the tests use
(through ``tests/builders/luks.py``, which adds LUKS1).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..engine.formats.luks import BINARY_SIZE, LUKS2

STRIPES = 4000
UUID = "0b5c6a2e-8a4f-4d2e-9a57-3f1c2d4e5f60"


def padded(value: str | bytes, size: int) -> bytes:
    """A text field of ``size`` bytes: cut, NUL-padded."""
    raw = value.encode() if isinstance(value, str) else value
    return raw[:size].ljust(size, b"\0")


def luks2_metadata(
    *, data_offset: int = 1 << 20, hdr_size: int = 16384, kdf: str = "pbkdf2", keyslots: int = 1
) -> dict[str, Any]:
    """The JSON metadata of a LUKS2 volume as cryptsetup 2.6 writes it (one data segment)."""
    kdfs = {
        "pbkdf2": {"type": "pbkdf2", "hash": "sha256", "iterations": 1000, "salt": "c2FsdA=="},
        "argon2id": {"type": "argon2id", "time": 4, "memory": 32, "cpus": 2, "salt": "c2FsdA=="},
    }
    area_size = 258048
    slots = {
        str(index): {
            "type": "luks2",
            "key_size": 64,
            "af": {"type": "luks1", "stripes": STRIPES, "hash": "sha256"},
            "area": {
                "type": "raw",
                "offset": str(2 * hdr_size + index * area_size),
                "size": str(area_size),
                "encryption": "aes-xts-plain64",
                "key_size": 64,
            },
            "kdf": kdfs[kdf],
        }
        for index in range(keyslots)
    }
    return {
        "keyslots": slots,
        "tokens": {},
        "segments": {
            "0": {
                "type": "crypt",
                "offset": str(data_offset),
                "size": "dynamic",
                "iv_tweak": "0",
                "encryption": "aes-xts-plain64",
                "sector_size": 4096,
            }
        },
        "digests": {
            "0": {
                "type": "pbkdf2",
                "keyslots": list(slots),
                "segments": ["0"],
                "hash": "sha256",
                "iterations": 1000,
                "salt": "c2FsdA==",
                "digest": "ZGlnZXN0",
            }
        },
        "config": {"json_size": str(hdr_size - 4096), "keyslots_size": str(data_offset - 2 * hdr_size)},
    }


def luks2_header(
    json_area: bytes,
    *,
    hdr_size: int = 16384,
    seqid: int = 1,
    secondary: bool = False,
    label: str | bytes = "",
    subsystem: str | bytes = "",
    uuid: str = UUID,
    checksum: bool = True,
) -> bytes:
    """One header copy: the 4096-byte binary header, then ``json_area`` padded to ``hdr_size``."""
    binary = LUKS2.pack(
        magic=b"SKUL\xba\xbe" if secondary else b"LUKS\xba\xbe",
        version=2,
        hdr_size=hdr_size,
        seqid=seqid,
        label=padded(label, 48),
        checksum_alg=b"sha256",
        salt=bytes([0x5A if secondary else 0xA5]) * 64,
        uuid=uuid.encode(),
        subsystem=padded(subsystem, 48),
        hdr_offset=hdr_size if secondary else 0,
    ).ljust(BINARY_SIZE, b"\0")
    header = binary + json_area[: max(0, hdr_size - BINARY_SIZE)].ljust(hdr_size - BINARY_SIZE, b"\0")
    if checksum:
        at, size = LUKS2.offset_of("checksum"), LUKS2.size_of("checksum")
        header = header[:at] + hashlib.sha256(header).digest().ljust(size, b"\0") + header[at + size :]
    return header


def luks2(
    *,
    metadata: dict[str, Any] | None = None,
    json_area: bytes | None = None,
    hdr_size: int = 16384,
    data_offset: int = 1 << 20,
    data_size: int = 64 * 1024,
    seqids: tuple[int, int] = (1, 1),
    **header: Any,
) -> bytes:
    """A LUKS2 volume: primary and secondary header copies, keyslot area, then the payload.

    ``json_area`` replaces the JSON text (for malformed metadata); ``header`` goes to :func:`luks2_header`.
    """
    if json_area is None:
        meta = metadata if metadata is not None else luks2_metadata(data_offset=data_offset, hdr_size=hdr_size)
        json_area = json.dumps(meta).encode()
    primary = luks2_header(json_area, hdr_size=hdr_size, seqid=seqids[0], **header)
    backup = luks2_header(json_area, hdr_size=hdr_size, seqid=seqids[1], secondary=True, **header)
    return (primary + backup).ljust(data_offset + data_size, b"\0")
