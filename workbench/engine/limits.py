"""Caps of the reply contract, re-exported for the engine's modules: :mod:`workbench.schema` is the one place.

The engine (child) imports these names to cut what an image made too large; the parent's validator
(``workbench.host.validate``) imports the same names from the schema, so the two sides can never disagree.
"""

from __future__ import annotations

from ..schema import (
    HEADER_BYTES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_INT,
    MAX_LIST,
    MAX_REGIONS,
    MAX_STRING,
    REGION_BYTES,
    REPLY_BUDGET,
    REPLY_CAP,
)

__all__ = [
    "HEADER_BYTES",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MAX_INT",
    "MAX_LIST",
    "MAX_REGIONS",
    "MAX_STRING",
    "REGION_BYTES",
    "REPLY_BUDGET",
    "REPLY_CAP",
]
