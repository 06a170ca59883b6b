"""A report as readable text: the terminal summary and the ticket summary share it.

Every string that came from an image goes through :func:`~workbench.render.textsafe.printable`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..schema import VERDICTS_SHOWN, Deep, Reference, ReportLike
from .sizes import human_size
from .textsafe import printable

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from typing import Any

_MARK = {"critical": "CRITICAL", "warning": "WARNING ", "info": "info    "}


def _size(value: int | None) -> str:
    return "unknown" if value is None else f"{human_size(value)} ({value} bytes)"


def _reference(ref: Reference) -> str:
    extra = f", format {printable(ref['format'], 40)}" if ref.get("format") else ""
    return f"{printable(ref.get('role', 'reference'), 40)}: {printable(ref.get('name', ''))} ({ref.get('kind')}{extra})"


def volume_contents(volume: dict[str, Any]) -> str:
    """A guest volume's filesystem (or container) type and label, ``ext4 'rootfs'``; empty when unknown."""
    inner = volume.get("filesystem") or volume.get("container")
    if not isinstance(inner, dict):
        return ""
    label = f" '{printable(inner['label'], 80)}'" if inner.get("label") else ""
    return f"{printable(inner.get('type') or '?', 40)}{label}"


def _guest_volume(volume: dict[str, Any]) -> str:
    """One volume: index, start, length, type and name, filesystem (or container) type and label, OS name."""
    kind = printable(volume.get("type") or "?", 60)
    name = f" '{printable(volume['name'], 80)}'" if volume.get("name") else ""
    where = f"start {volume.get('start')}  length {_size(volume.get('length'))}"
    line = f"    {volume.get('index')!s:>3}  {where}  {kind}{name}"
    contents = volume_contents(volume)
    if contents:
        line += f"  [{contents}]"
    if isinstance(volume.get("os"), dict) and volume["os"].get("name"):
        line += f"  {printable(volume['os']['name'], 120)}"
    return line


def _guest(guest: dict[str, Any]) -> list[str]:
    """The guest layout: the table and one line per volume."""
    if "unavailable" in guest:
        return [f"  guest       unavailable: {printable(guest['unavailable'], 200)}"]
    table = guest.get("partition_table") or {}
    volumes = guest.get("volumes") or []
    head = f"{printable(table.get('type') or 'no partition table', 40)}, {len(volumes)} volume(s)"
    lines = [f"  guest       {head}, read {guest.get('bytes_read')} of {guest.get('budget')} guest bytes"]
    lines.extend(_guest_volume(volume) for volume in volumes if isinstance(volume, dict))
    return lines


def deep_line(deep: Deep) -> str:
    """Deep inspection in one line: guest data allocated, map runs, check counters, completeness."""
    if "unavailable" in deep:
        return f"unavailable: {printable(deep['unavailable'], 200)}"
    counters = ", ".join(f"{printable(name, 40)} {value}" for name, value in (deep.get("check") or {}).items())
    parts = [
        f"{_size(deep.get('allocated_virtual'))} of guest data allocated",
        f"{len(deep.get('map') or [])} map runs",
        *([counters] if counters else []),
        f"read {deep.get('bytes_read')} of {deep.get('budget')} metadata bytes",
        *([] if deep.get("complete") else ["INCOMPLETE"]),
    ]
    return "; ".join(parts)


def summary(report: ReportLike, verbose: bool = False) -> str:
    """Several lines: verdict, format, sizes, references, encryption, findings."""
    path = printable(report["path"], 1024)
    if report.get("verdict") == "failed":
        return f"{path}: FAILED: {printable(report.get('error', ''), 1024)}"
    declared = report.get("declared_format") or "none"
    source = report.get("declared_source", "argument")
    matches = ", ".join(report["format_matches"]) or "none (raw)"
    lines = [
        f"{path}: {report['verdict'].upper()}",
        f"  format      {report['format']} (declared {declared} by {source}; signatures: {printable(matches)})",
        f"  logical     {_size(report['virtual_size'])}",
        f"  file        {_size(report['file_size'])}, allocated {_size(report['allocated_size'])}",
    ]
    if report.get("size_ratio"):
        lines.append(f"  ratio       logical/file {report['size_ratio']:g}")
    encryption = report.get("encryption") or {}
    lines.append(f"  encryption  {printable(encryption.get('method', 'yes')) if report['encrypted'] else 'none'}")
    refs = report.get("references") or []
    lines.append(f"  references  {len(refs) or 'none'}")
    lines.extend(f"    - {_reference(ref)}" for ref in refs[: None if verbose else 20])
    if report.get("snapshots"):
        lines.append(f"  snapshots   {len(report['snapshots'])}")
    flags = [name for name in ("dirty", "corrupt") if report.get(name)]
    if flags:
        lines.append(f"  state       {', '.join(flags)}")
    if isinstance(report.get("guest"), dict):
        lines.extend(_guest(report["guest"]))
    if isinstance(report.get("deep"), dict):
        lines.append(f"  deep        {deep_line(report['deep'])}")
    shown = [f for f in report["findings"] if verbose or f["severity"] != "info"]
    lines.append(f"  findings    {len(shown) or 'none'}" + ("" if verbose else " (info hidden; -v shows them)"))
    for finding in shown:
        lines.append(f"    {_MARK[finding['severity']]} {finding['id']}: {finding['title']}")
        lines.append(f"             {printable(finding['detail'], 1024)}")
        if verbose:
            lines.append(f"             -> {finding['recommendation']}")
    lines.append(f"  engine      read {report['bytes_read']} bytes in {report.get('elapsed_ms', 0):g} ms")
    return "\n".join(lines)


def summary_counts(counts: Mapping[str, int]) -> str:
    """``reject 2, review 1, accept 7, failed 0`` in that order."""
    return ", ".join(f"{verdict} {counts.get(verdict, 0)}" for verdict in VERDICTS_SHOWN)
