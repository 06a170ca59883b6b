"""Caps of the reply contract, in one place: the engine fits its report to them, the parent checks them.

The engine (child) imports this module to cut what an image made too large; the parent's validator
(``workbench.host.validate``) imports the same names, so the two sides can never disagree on a cap.
"""

from __future__ import annotations

MAX_STRING = 4096  # characters of any string in a report (image text, details, finding details)
MAX_LIST = 1024  # items of a list (references, extents, snapshots, findings) and keys of an object
MAX_FIELDS = 20_000  # nodes of the field tree
MAX_DEPTH = 32  # levels of the field tree
MAX_INT = 1 << 64  # integers lie strictly between -MAX_INT and MAX_INT
REGION_BYTES = 256 << 10  # bytes of hex, all regions together, offered to the hex view
MAX_REGIONS = 1024  # separate regions offered to the hex view
HEADER_BYTES = 64 << 10  # bytes of the file's first region shown as its header
REPLY_CAP = 16 << 20  # bytes of JSON the parent reads from a child before it kills it
REPLY_BUDGET = REPLY_CAP // 2  # what the engine aims below, leaving room for escaping and the sandbox table
