"""MBR (with its extended chain) and GPT on the guest disk, read by engine/formats/partitions.py.

The container-level parser does the reading and checking (bounded EBR chain, GPT CRCs, the 128-entry
cap); here its findings become guest findings (a malformed or mismatching guest table is a suspicious
layout, not a malformed image file), GPT names are taken from its fields, and the two GPT header
copies are compared.
"""

from __future__ import annotations

from typing import Any

from ..fields import Field
from ..formats import partitions
from ..guest_disk import View
from ..inspection import Inspection

COMPARED = ("disk_guid", "first_usable_lba", "last_usable_lba", "entry_count", "entry_size", "entries_crc32")
CONTAINER_TYPES = partitions.EXTENDED | {partitions.PROTECTIVE}


def probe(view: View) -> str | None:
    return partitions.probe(view)  # type: ignore[arg-type]  # a View reads like a Reader


def _compare_headers(view: View, info: Inspection, sector: int) -> None:
    primary = view.read(sector, partitions.GPT_MIN_HEADER)
    first = partitions.GPT_HEADER.unpack(primary)
    alternate = first.get("alternate_lba", 0)
    if alternate < 2 or alternate * sector >= view.size:
        return
    backup = view.read(alternate * sector, partitions.GPT_MIN_HEADER)
    if backup[:8] != partitions.GPT_SIGNATURE:
        return
    second = partitions.GPT_HEADER.unpack(backup)
    differing = [key for key in COMPARED if first.get(key) != second.get(key)]
    if second.get("alternate_lba") != first.get("my_lba"):
        differing.append("alternate_lba")
    if differing:
        info.add(
            "guest-layout",
            f"the primary and backup GPT headers disagree on {', '.join(differing)}",
            alternate * sector,
        )


def read(view: View, info: Inspection, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The table summary and its partitions (``index``, ``start``, ``length``, ``type``, ``name``)."""
    table = Inspection(kind)
    found = partitions.entries(view, table)  # type: ignore[arg-type]
    for finding in table.findings:
        new_id = "guest-budget" if finding.id == "read-budget" else "guest-layout"
        info.add(new_id, f"guest {kind.upper()}: {finding.detail}", finding.offset)
    info.fields.append(Field(f"guest {kind.upper()} partition table", 0, 0, kind, "", table.fields))
    details = table.details
    summary: dict[str, Any] = {"type": kind}
    for key in ("sector_size", "disk_guid", "mbr"):
        if key in details:
            summary[key] = details[key]
    if kind == "gpt":
        _compare_headers(view, info, details.get("sector_size", 512))
        if details.get("mbr") == "hybrid":
            info.add("guest-layout", "hybrid MBR: the MBR lists partitions beside the GPT; tools may read either", 446)
    volumes = []
    for part in found:
        if part["code"] in CONTAINER_TYPES:
            continue
        volumes.append(
            {
                "index": part["index"],
                "start": part["start"],
                "length": part["size"],
                "type": part["type"],
                "name": part["name"],
            }
        )
    summary["partitions"] = len(found)
    return summary, volumes
