"""Raw: no container; the logical size is the file size. Partition tables are parsed as layouts."""

from __future__ import annotations

from ..fields import Field
from ..inspection import Inspection
from ..reader import Reader

NAMES = ("raw",)
PRIORITY = 0
GUEST_DATA_AT_ZERO = True  # an MBR/GPT at offset 0 is the guest's own table


def probe(reader: Reader) -> str | None:
    """Raw has no signature: it is what an image is when nothing else matched."""
    return None


def parse(reader: Reader, info: Inspection) -> None:
    info.virtual_size = reader.size
    info.fields.append(
        Field("raw image", 0, 0, reader.size, "no container header: every byte is guest data, never interpreted")
    )
