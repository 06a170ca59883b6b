"""What every filesystem module shares: the superblock read and the summary it returns."""

from __future__ import annotations

import datetime
from typing import Any

from ..fields import Field, Spec, decode
from ..guest_disk import View
from ..inspection import Inspection


def superblock(
    view: View, info: Inspection, name: str, offset: int, size: int, specs: list[Spec], endian: str
) -> tuple[dict[str, Any], Field, bytes]:
    """Read and decode one superblock at volume ``offset``; its field group is at guest offsets."""
    data = view.read(offset, size)
    values, group = decode(name, data, view.guest_offset(offset), specs, endian)
    info.fields.append(group)
    return values, group, data


def utc(seconds: int) -> str | None:
    """An on-disk Unix time as ISO 8601 UTC; ``None`` for 0 or out of range."""
    if not seconds:
        return None
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def summary(fs_type: str, **values: Any) -> dict[str, Any]:
    """The report's ``filesystem`` value: ``type`` (blkid's TYPE name) and the facts the format records."""
    keys = ("label", "uuid", "size", "block_size", "state", "features")
    result: dict[str, Any] = {"type": fs_type} | {key: values.pop(key, None) for key in keys}
    result.update(values)
    return result


def names(value: int, table: dict[int, str]) -> list[str]:
    """Feature names of the set bits (unknown bits as ``bit N``), in bit order."""
    return [table.get(1 << bit, f"bit {bit}") for bit in range(64) if value >> bit & 1]
