"""VHD (qemu's ``vpc``): a fixed disk is its data then a 512-byte footer."""

from __future__ import annotations

from ..inspection import Inspection
from ..reader import Reader
from . import LinearMapping, Mapping, Table, Unmappable, register


@register("vpc")
def vpc(reader: Reader, info: Inspection) -> Mapping:
    if info.details.get("disk_type") != "fixed":
        raise Unmappable(f"no mapping reader for {info.details.get('disk_type', 'this')} VHD yet")
    data = max(0, reader.size - 512)
    return LinearMapping(reader, min(info.virtual_size or 0, data), tables=(Table("footer", data, 512),))
