"""What every filesystem module shares: the superblock read and the summary it returns."""

from __future__ import annotations

import datetime
from typing import Any

from ..fields import Field, Layout
from ..guest_disk import View
from ..inspection import Inspection


def superblock(
    view: View, info: Inspection, layout: Layout, offset: int = 0, size: int | None = None
) -> tuple[dict[str, Any], Field, bytes]:
    """Read ``size`` bytes (default: the layout's) at volume ``offset`` and unpack ``layout`` from them: the
    typed values (rows past the end of the volume left out), its field group at guest offsets, the bytes."""
    data = view.read(offset, layout.size if size is None else size)
    values, group = layout.read(data, view.guest_offset(offset))
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
