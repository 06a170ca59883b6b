"""Fit a report to the reply contract (``limits``), whatever the image holds.

The parent refuses a reply that breaks a cap, and a refused reply is "could not inspect": a hostile
image must never get there. So every list, object, string, the field tree and the hex regions are cut
here, in the engine, and each cut becomes a ``report-capped`` finding. Cuts keep what decides the
verdict: critical findings before warnings before informational ones, and references are never cut
without a critical finding.
"""

from __future__ import annotations

import json

from ..schema import MAX_MAP_RUNS, most_severe_first
from .fields import Field
from .findings import CRITICAL, INFO, Finding, make
from .limits import (
    HEADER_BYTES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_INT,
    MAX_LIST,
    MAX_REGIONS,
    MAX_STRING,
    REGION_BYTES,
    REPLY_BUDGET,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

RESERVED = 10  # room kept in the findings list for the cut findings themselves
SHORT_STRING = 256  # the last resort of a reply over budget: every string cut to this
SHOWN_KEYS = 16  # names of capped keys quoted in one finding
_TREE_KEYS = ("fields", "findings", "byte_regions", "header_bytes")  # fitted by their own functions
_REFERENCE_KEYS = ("references", "extents")
_RUN_LISTS = ("deep.map", "deep.file_map")  # capped at MAX_MAP_RUNS, not MAX_LIST (schema.py)


def field_tree(fields: list[Field], limit: int = MAX_FIELDS) -> tuple[list[dict[str, Any]], int, bool]:
    """Serialise the field tree (iteratively) within ``limit`` nodes and MAX_DEPTH levels.

    Returns the tree, the number of nodes left out (a node past the depth cap counts once, with its
    subtree), and whether a value in it is not a plain integer within 64 bits, string or None (so the report's
    number check must look in the tree: most trees spare it the walk). Strings are capped to MAX_STRING.
    """
    kept = left = 0
    odd = False
    out: list[dict[str, Any]] = []
    stack: list[tuple[Field, list[dict[str, Any]], int]] = [(f, out, 1) for f in reversed(fields)]
    while stack:
        node, sink, depth = stack.pop()
        if kept >= limit or depth > MAX_DEPTH:
            left += 1
            continue
        kept += 1
        value = node.value
        if isinstance(value, str):
            value = _text(value)
        elif not odd and value is not None:
            odd = not _plain(value)
        if not odd:
            odd = not (_plain(node.offset) and _plain(node.size))
        item = {
            "name": _text(node.name),
            "offset": node.offset,
            "size": node.size,
            "value": value,
            "description": _text(node.description),
        }
        sink.append(item)
        if node.children:
            children: list[dict[str, Any]] = []
            item["children"] = children
            stack.extend((child, children, depth + 1) for child in reversed(node.children))
    return out, left, odd


def _plain(value: object) -> bool:
    """An int (not a bool or another subclass) within 64 bits: what the report's number check leaves alone."""
    return type(value) is int and -MAX_INT < value < MAX_INT


def _text(value: str) -> str:
    return value[:MAX_STRING]


def display_regions(regions: list[tuple[int, bytes]]) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
    """Hex for the view: at most MAX_REGIONS regions and REGION_BYTES bytes; the header region apart.

    Returns the regions, the header region (the one at offset 0, up to HEADER_BYTES) and how many
    regions the region cap left out. The view always shows the first REGION_BYTES read, so what the
    byte cap leaves out is not counted: only a file read in more pieces than the view takes is.
    """
    out: list[dict[str, Any]] = []
    room = REGION_BYTES
    for index, (offset, data) in enumerate(regions):
        if room <= 0:
            break
        if len(out) == MAX_REGIONS:
            return out, _header(regions), len(regions) - index
        out.append({"offset": offset, "hex": data[:room].hex()})
        room -= min(room, len(data))
    return out, _header(regions), 0


def _header(regions: list[tuple[int, bytes]]) -> dict[str, Any] | None:
    return next(({"offset": 0, "hex": data[:HEADER_BYTES].hex()} for offset, data in regions if offset == 0), None)


def findings(found: list[Finding], limit: int = MAX_LIST - RESERVED) -> tuple[list[Finding], int]:
    """At most ``limit`` findings, the most severe kept, in their original order; and how many were left."""
    if len(found) <= limit:
        return found, 0
    order = sorted(range(len(found)), key=lambda i: (most_severe_first(found[i].severity), i))
    keep = sorted(order[:limit])
    return [found[i] for i in keep], len(found) - limit


def containers(report: dict[str, Any], max_string: int = MAX_STRING) -> tuple[list[str], list[str]]:
    """Cut lists, objects and strings outside the field tree to the caps, in place (iteratively).

    Returns the keys cut, split in two: references or extents (a reference or a part of its name may be
    among what was cut) and the rest.
    """
    references: list[str] = []
    other: list[str] = []
    stack: list[tuple[Any, str]] = [(report, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            if len(node) > MAX_LIST:
                for key in list(node)[MAX_LIST:]:
                    del node[key]
                other.append(where.rstrip(".") or "report")
            items = [(k, v) for k, v in node.items() if not (node is report and k in _TREE_KEYS)]
        else:
            items = list(enumerate(node))
        for key, value in items:
            path = f"{where}{key}"
            if isinstance(value, str) and len(value) > max_string:
                node[key] = value[:max_string]
                (references if path.startswith(_REFERENCE_KEYS) else other).append(path)
            elif isinstance(value, list | dict):
                cap = MAX_MAP_RUNS if path in _RUN_LISTS else MAX_LIST
                if isinstance(value, list) and len(value) > cap:
                    del value[cap:]
                    (references if node is report and key in _REFERENCE_KEYS else other).append(path)
                stack.append((value, f"{path}."))
    return references, other


def cut_finding(what: str, names: list[str], severity: str | None = None) -> dict[str, Any]:
    shown = ", ".join(names[:SHOWN_KEYS]) + (f" and {len(names) - SHOWN_KEYS} more" if len(names) > SHOWN_KEYS else "")
    return make("report-capped", f"{what}: {shown}"[:MAX_STRING], None, severity).to_json()


def reply_size(report: dict[str, Any]) -> int:
    return len(json.dumps(report, separators=(",", ":")))


def within_budget(report: dict[str, Any], fields: list[Field]) -> None:
    """Keep the whole reply below REPLY_BUDGET: drop the hex first, then halve the field tree."""
    if reply_size(report) <= REPLY_BUDGET:
        return
    dropped = len(report["byte_regions"])
    report["byte_regions"], report["header_bytes"] = [], None
    report["findings"].append(cut_finding("reply too large, hex view left out", [f"{dropped} regions"], INFO))
    limit = MAX_FIELDS
    while reply_size(report) > REPLY_BUDGET and limit > 1:
        limit //= 2
        report["fields"], left, _ = field_tree(fields, limit)
        note = cut_finding("reply too large, field tree cut", [f"{limit} nodes kept, {left} left out"])
        if report["findings"][-1]["detail"].startswith("reply too large, field tree cut"):
            report["findings"][-1] = note
        else:
            report["findings"].append(note)
    if reply_size(report) > REPLY_BUDGET:
        references, other = containers(report, SHORT_STRING)
        what = f"reply too large, strings cut to {SHORT_STRING} characters"
        report["findings"].append(cut_finding(what, references + other, CRITICAL if references else None))
