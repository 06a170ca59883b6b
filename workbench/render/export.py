"""Reports written as JSON, Markdown or HTML; every image-derived string is escaped for its target.

JSON keeps the reports whole (``ensure_ascii``, so no control or bidi character survives unescaped).
Markdown and HTML show what a reviewer needs: verdict, formats, sizes, references, findings. Their
strings go through :func:`~workbench.render.textsafe.printable` and then the target's own escaping, so an
image cannot inject markup, links or scripts into a ticket or a page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from ..schema import Deep, MapRun, ReportLike, Verdict
from .sizes import human_size
from .text import deep_line
from .textsafe import printable

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # inline specials; line-start ones are handled in md()
_MD_LINE_START = re.compile(r"^(\s*(?:\d+)?)([#>+\-]|[.)](?=\s))", re.MULTILINE)  # heading, quote, list item
_MD_AUTOLINK = re.compile(r"(?i)://|\bwww\.|@")  # what GitHub's Markdown turns into links without brackets
_FACTS = (
    ("Declared format", lambda r: r.get("declared_format") or "none"),
    ("Detected format", lambda r: r.get("format", "")),
    ("Signature matches", lambda r: ", ".join(r.get("format_matches") or []) or "none (raw)"),
    ("Logical size", lambda r: _size(r.get("virtual_size"))),
    ("File size", lambda r: _size(r.get("file_size"))),
    ("Allocated size", lambda r: _size(r.get("allocated_size"))),
    ("Encryption", lambda r: (r.get("encryption") or {}).get("method", "yes") if r.get("encrypted") else "none"),
    ("Snapshots", lambda r: str(len(r.get("snapshots") or []))),
    ("Dirty / corrupt", lambda r: f"{'yes' if r.get('dirty') else 'no'} / {'yes' if r.get('corrupt') else 'no'}"),
)


def _size(value: int | None) -> str:
    return "unknown" if value is None else f"{human_size(value)} ({value} bytes)"


def md(text: Any, cap: int = 1024) -> str:
    """Image text for Markdown: printable, HTML-escaped (Markdown passes HTML through), specials escaped."""
    shown = _MD_SPECIAL.sub(r"\\\1", html.escape(printable(text, cap), quote=False))
    shown = _MD_AUTOLINK.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], shown)  # no bare URL becomes a link
    return _MD_LINE_START.sub(r"\1\\\2", shown)


def h(text: Any, cap: int = 4096) -> str:
    return html.escape(printable(text, cap), quote=True)


def to_json(reports: Sequence[ReportLike]) -> str:
    return json.dumps(reports, indent=2, ensure_ascii=True) + "\n"


def _facts(report: ReportLike) -> list[tuple[str, str]]:
    if report.get("verdict") == "failed":
        return [("Error", str(report.get("error", "")))]
    return [(name, str(get(report))) for name, get in _FACTS]


DEEP_ROWS = 64  # runs of deep.map shown in an export (the JSON export carries them all)
_DEEP_HEAD = ("Guest start", "Length", "Kind", "File offset")


def _map_kind(run: MapRun) -> str:
    if run.get("invalid"):
        return "invalid"
    if run.get("compressed"):
        return "compressed"
    if run.get("data"):
        return "data"
    return "zero" if run.get("zero") else "unallocated (backing)"


def _deep(report: ReportLike) -> tuple[str, list[tuple[str, ...]]] | None:
    """Deep inspection's one-line summary and its first map runs as rows, or None without ``--deep``."""
    found = report.get("deep")
    if not isinstance(found, dict):
        return None
    deep = cast(Deep, found)  # validated by the parent (``host/validate.py``)
    runs = deep.get("map") or []
    rows: list[tuple[str, ...]] = [
        (str(r.get("start")), str(r.get("length")), _map_kind(r), str(r.get("offset", ""))) for r in runs[:DEEP_ROWS]
    ]
    if len(runs) > DEEP_ROWS:
        rows.append(("...", f"{len(runs) - DEEP_ROWS} more runs", "", ""))
    return deep_line(deep), rows


def _md_report(report: ReportLike) -> list[str]:
    lines = [f"## {md(report['path'])}", "", f"**Verdict: {report['verdict'].upper()}**", ""]
    lines += ["| | |", "|---|---|", *(f"| {name} | {md(value)} |" for name, value in _facts(report)), ""]
    refs = report.get("references") or []
    if refs:
        lines += ["### External references", ""]
        for ref in refs:
            lines.append(f"- {md(ref.get('role', 'reference'))}: {md(ref.get('name', ''))} ({md(ref.get('kind', ''))})")
        lines.append("")
    deep = _deep(report)
    if deep:
        lines += ["### Deep inspection", "", md(deep[0]), ""]
        if deep[1]:
            lines += ["| " + " | ".join(_DEEP_HEAD) + " |", "|---|---|---|---|"]
            lines += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in deep[1]]
            lines.append("")
    findings = report.get("findings") or []
    if findings:
        lines += ["### Findings", "", "| Severity | Finding | Detail |", "|---|---|---|"]
        lines += [f"| {f['severity']} | {md(f['title'])} | {md(f['detail'])} |" for f in findings]
        lines.append("")
    return lines


def to_markdown(reports: Sequence[ReportLike]) -> str:
    lines = ["# Disk Image Workbench report", ""]
    for report in reports:
        lines += _md_report(report)
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#1d1f22}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;word-break:break-all}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f2f4f7}code{word-break:break-all}
.verdict{display:inline-block;padding:.15em .6em;border-radius:.3em;color:#fff;font-weight:bold}
.accept{background:#2e9d4f}.review{background:#a66f00}.reject{background:#c4262e}.failed{background:#6b6f76}
.critical{color:#c4262e;font-weight:bold}.warning{color:#a66f00;font-weight:bold}.info{color:#2e6bc4}
"""


def _html_report(report: ReportLike) -> list[str]:
    verdict = report["verdict"] if report["verdict"] in tuple(Verdict) else Verdict.FAILED
    badge = f'<p><span class="verdict {verdict}">{verdict.upper()}</span></p>'
    parts = [f"<section><h2>{h(report['path'])}</h2>", badge]
    rows = "".join(f"<tr><th>{h(name)}</th><td>{h(value)}</td></tr>" for name, value in _facts(report))
    parts.append(f"<table>{rows}</table>")
    refs = report.get("references") or []
    if refs:
        items = "".join(
            f"<li>{h(r.get('role', 'reference'))}: <code>{h(r.get('name', ''))}</code> ({h(r.get('kind', ''))})</li>"
            for r in refs
        )
        parts.append(f"<h3>External references</h3><ul>{items}</ul>")
    deep = _deep(report)
    if deep:
        head = "".join(f"<th>{name}</th>" for name in _DEEP_HEAD)
        rows = "".join("<tr>" + "".join(f"<td>{h(cell)}</td>" for cell in row) + "</tr>" for row in deep[1])
        parts.append(f"<h3>Deep inspection</h3><p>{h(deep[0])}</p><table><tr>{head}</tr>{rows}</table>")
    findings = report.get("findings") or []
    if findings:
        rows = "".join(
            f'<tr><td class="{h(f["severity"])}">{h(f["severity"])}</td><td>{h(f["title"])}</td>'
            f"<td>{h(f['detail'])}</td><td>{h(f['recommendation'])}</td></tr>"
            for f in findings
        )
        head = "<tr><th>Severity</th><th>Finding</th><th>Detail</th><th>Recommendation</th></tr>"
        parts.append(f"<h3>Findings</h3><table>{head}{rows}</table>")
    parts.append("</section>")
    return parts


def to_html(reports: Sequence[ReportLike]) -> str:
    """One self-contained page; its content security policy forbids scripts and remote loads."""
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Disk Image Workbench report</title><style>{_CSS}</style></head><body>"
        "<h1>Disk Image Workbench report</h1>"
    )
    body = "".join(part for report in reports for part in _html_report(report))
    return f"{head}{body}</body></html>\n"


WRITERS: dict[str, Callable[[Sequence[ReportLike]], str]] = {"json": to_json, "md": to_markdown, "html": to_html}
SUFFIXES = {".json": "json", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}


def export(reports: Sequence[ReportLike], path: Path | str, kind: str | None = None) -> Path:
    """Write ``reports`` to ``path`` in ``kind`` (json, md, html; default: from the suffix)."""
    path = Path(path)
    kind = kind or SUFFIXES.get(path.suffix.lower())
    if kind not in WRITERS:
        raise ValueError(f"unknown export format for {path.name!r}: use .json, .md or .html")
    path.write_text(WRITERS[kind](reports), encoding="utf-8")
    return path
