"""Checks that several formats make: a power of two, alignment, a range inside the file, overlapping ranges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def is_power_of_two(value: int) -> bool:
    """1, 2, 4, 8...; 0 and negative numbers are not."""
    return value > 0 and value & (value - 1) == 0


def aligned(value: int, alignment: int) -> bool:
    """``value`` is a multiple of ``alignment`` (any value is, for an alignment of 0 or 1)."""
    return alignment <= 1 or value % alignment == 0


def align_up(value: int, alignment: int) -> int:
    """The next multiple of ``alignment`` (a power of two) at or above ``value``."""
    return (value + alignment - 1) & ~(alignment - 1)


def ends_past(offset: int, length: int, end: int) -> bool:
    """The range ``offset`` + ``length`` reaches past ``end`` (the file size, a region's end)."""
    return offset + length > end


def overlaps(ranges: Iterable[tuple[int, int, T]], limit: int = 1024) -> list[tuple[T, T]]:
    """Every pair of ``(start, end, key)`` ranges (end exclusive) that share a byte, as ``(key, key)``.

    One sweep in start order: each range is compared with every earlier one still open, so a long range
    that covers several later ones is paired with each of them (comparing neighbours only misses that).
    Empty ranges overlap nothing. The pairs come in start order, at most ``limit`` of them.
    """
    ordered: Sequence[tuple[int, int, T]] = sorted((r for r in ranges if r[1] > r[0]), key=lambda r: (r[0], r[1]))
    pairs: list[tuple[T, T]] = []
    open_ranges: list[tuple[int, int, T]] = []
    for start, end, key in ordered:
        open_ranges = [r for r in open_ranges if r[1] > start]
        pairs.extend((other, key) for _, _, other in open_ranges[: limit - len(pairs)])
        if len(pairs) >= limit:
            break
        open_ranges.append((start, end, key))
    return pairs
