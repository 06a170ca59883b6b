"""Formats whose guest offsets are file offsets: raw, and ISO read as raw."""

from __future__ import annotations

from ..inspection import Inspection
from ..reader import Reader
from . import LinearMapping, register


@register("raw")
def raw(reader: Reader, info: Inspection) -> LinearMapping:
    return LinearMapping(reader, reader.size)


@register("iso")
def iso(reader: Reader, info: Inspection) -> LinearMapping:
    return LinearMapping(reader, reader.size)
