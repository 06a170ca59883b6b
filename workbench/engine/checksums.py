"""CRC-32C (Castagnoli), the checksum of VHDX headers, ext4 metadata_csum, Btrfs and XFS v5 metadata.

One pure-Python implementation for the whole engine: the engine imports the standard library only (it
runs in the sandboxed child), and the guest view checksums a few superblocks (a few KiB), so a C
extension would not change what the user waits for (docs/guest.md has the measurement).
"""

from __future__ import annotations

from functools import cache

ZERO_RUN = 64
_ZEROS = bytes(ZERO_RUN)


# The tables are built on first use (0.6 ms that an engine child with no VHDX or guest view never needs).
@cache
def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def _through_zeros(crc: int) -> int:
    table = _crc32c_table()
    for _ in range(ZERO_RUN):
        crc = table[crc & 0xFF] ^ (crc >> 8)
    return crc


@cache
def _zero_run_tables() -> tuple[tuple[int, ...], ...]:
    """Feeding ZERO_RUN zero bytes is linear in the CRC register: one lookup table per register byte.

    By linearity an entry is the XOR of its set bits' entries, so only the 32 one-bit registers are run
    through the zeros (a thirtieth of the work of running every entry, which cost 6 ms at import)."""
    tables = []
    for shift in (0, 8, 16, 24):
        bits = [_through_zeros(1 << (shift + bit)) for bit in range(8)]
        row = [0] * 256
        for value in range(1, 256):
            low = value & -value
            row[value] = row[value ^ low] ^ bits[low.bit_length() - 1]
        tables.append(tuple(row))
    return tuple(tables)


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from the CRC ``crc`` of what came before (as zlib.crc32).

    Table-driven, byte by byte, except that each aligned run of 64 zero bytes (most of a 64 KiB VHDX
    region table, or the padding of a filesystem superblock) costs four lookups.
    """
    crc ^= 0xFFFFFFFF
    table = _crc32c_table()
    t0, t1, t2, t3 = _zero_run_tables()
    for start in range(0, len(data), ZERO_RUN):
        chunk = data[start : start + ZERO_RUN]
        if chunk == _ZEROS:
            crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24]
            continue
        for byte in chunk:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
