"""Bounded, positional, read-only access to one image.

Every byte the engine looks at comes through :class:`Reader`. It never seeks, never writes, and stops
at a total budget per image so that no header field can make the engine read (or allocate) without
limit. Repeated reads of a range already fetched are served from a small cache and not counted twice.
"""

from __future__ import annotations

import os

DEFAULT_BUDGET = 1 << 20  # 1 MiB per image
MAX_SINGLE_READ = 1 << 20
_CACHE_PIECES = 64
KEEP_FOR_DISPLAY = 256 << 10  # bytes kept so the hex pane can show what was parsed


class BudgetExceeded(Exception):
    """A structure needed more bytes than the per-image read budget allows."""

    def __init__(self, offset: int, length: int, budget: int) -> None:
        super().__init__(f"reading {length} bytes at offset {offset} would pass the {budget}-byte read budget")
        self.offset = offset
        self.length = length


class Reader:
    """Positional reads from a file descriptor with a byte budget and a record of what was read."""

    def __init__(self, fd: int, size: int, budget: int = DEFAULT_BUDGET) -> None:
        self.fd = fd
        self.size = size
        self.budget = budget
        self.bytes_read = 0
        self._cache: list[tuple[int, bytes]] = []
        self.kept: list[tuple[int, bytes]] = []
        self._kept_size = 0

    def remaining(self) -> int:
        return max(0, self.budget - self.bytes_read)

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; shorter at end of file, empty past it."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        length = end - offset
        for start, data in self._cache:
            if start <= offset and offset + length <= start + len(data):
                return data[offset - start : offset - start + length]
        if length > MAX_SINGLE_READ or self.bytes_read + length > self.budget:
            raise BudgetExceeded(offset, length, self.budget)
        data = os.pread(self.fd, length, offset)
        self.bytes_read += len(data)
        if len(self._cache) >= _CACHE_PIECES:
            self._cache.pop(0)
        self._cache.append((offset, data))
        if self._kept_size + len(data) <= KEEP_FOR_DISPLAY:
            self.kept.append((offset, data))
            self._kept_size += len(data)
        return data

    def regions(self) -> list[tuple[int, bytes]]:
        """The bytes kept for display, merged into sorted non-overlapping regions."""
        merged: list[tuple[int, bytearray]] = []
        for offset, data in sorted(self.kept, key=lambda piece: piece[0]):
            if merged and offset <= merged[-1][0] + len(merged[-1][1]):
                start, buf = merged[-1]
                overlap = start + len(buf) - offset
                buf += data[overlap:]
            else:
                merged.append((offset, bytearray(data)))
        return [(offset, bytes(buf)) for offset, buf in merged]

    def read_tail(self, length: int) -> tuple[int, bytes]:
        """The last ``length`` bytes of the file and their offset."""
        offset = max(0, self.size - length)
        return offset, self.read(offset, length)
