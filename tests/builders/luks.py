"""LUKS1 and LUKS2 volumes built byte by byte (headers only; the "encrypted" payload is zeros).

LUKS2 is the demonstration set's builder (``workbench/demo/luks.py``, re-exported here); LUKS1 is for the
tests and the fuzzer only.
"""

from __future__ import annotations

import hashlib

from workbench.demo.luks import (
    STRIPES,
    UUID,
    luks2,
    luks2_header,
    luks2_metadata,
    padded,
)
from workbench.engine.formats.luks import LUKS1, SLOT

__all__ = [  # the demonstration set's builder, re-exported, and this module's own
    "STRIPES",
    "UUID",
    "luks2",
    "luks2_header",
    "luks2_metadata",
    "padded",
    "SECTOR",
    "SLOT_ACTIVE",
    "SLOT_INACTIVE",
    "luks1",
    "demo_images",
]


SECTOR = 512
SLOT_ACTIVE = 0x00AC71F3
SLOT_INACTIVE = 0x0000DEAD


def luks1(
    *,
    key_bytes: int = 64,
    active: tuple[int, ...] = (0,),
    cipher: str = "aes",
    mode: str = "xts-plain64",
    hash_spec: str = "sha256",
    uuid: str = UUID,
    payload_sectors: int | None = None,
    data_size: int = 64 * 1024,
) -> bytes:
    """A LUKS1 volume: 592-byte header, key slots laid out as cryptsetup does, then the payload."""
    slot_sectors = -(-key_bytes * STRIPES // SECTOR)
    slot_sectors = -(-slot_sectors // 8) * 8  # aligned to 4 KiB like cryptsetup and qemu
    if payload_sectors is None:
        payload_sectors = 8 + 8 * slot_sectors
    header = LUKS1.pack(
        magic=b"LUKS\xba\xbe",
        version=1,
        cipher_name=cipher.encode(),
        cipher_mode=mode.encode(),
        hash_spec=hash_spec.encode(),
        payload_offset=payload_sectors,
        key_bytes=key_bytes,
        mk_digest=hashlib.sha1(b"master key digest").digest(),
        mk_digest_salt=bytes(range(32)),
        mk_digest_iterations=1000,
        uuid=uuid.encode(),
    )
    for index in range(8):
        on = index in active
        header += SLOT.pack(
            active=SLOT_ACTIVE if on else SLOT_INACTIVE,
            iterations=2000 if on else 0,
            salt=bytes([index + 1]) * 32 if on else bytes(32),
            key_material_offset=8 + index * slot_sectors,
            stripes=STRIPES,
        )
    return header.ljust(payload_sectors * SECTOR + data_size, b"\0")


def demo_images() -> list[tuple[str, str, bytes]]:
    """(file name, declared format, bytes) of the LUKS1 and LUKS2 demonstration volumes."""
    return [
        ("encrypted-luks1.luks", "luks", luks1()),
        ("encrypted-luks2.luks", "luks", luks2(label="demo", metadata=luks2_metadata(kdf="argon2id"))),
    ]
