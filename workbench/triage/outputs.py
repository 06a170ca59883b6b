"""Triage outputs, written as results arrive so an interrupted run leaves valid, partial files.

JSON: one array of full reports (closed on exit, even on Ctrl-C); JSON Lines: one report a line, flushed
each time; CSV: one row a file; HTML: one self-contained page with the table and each file's findings.
"""

from __future__ import annotations

import csv
import html
import json
from typing import IO, Any

from ..render.sizes import human_size
from ..render.textsafe import printable
from ..schema import ReportLike

CSV_COLUMNS = (
    "path",
    "verdict",
    "format",
    "declared_format",
    "virtual_size",
    "file_size",
    "encrypted",
    "top_finding",
    "sandbox_degraded",
    "guest_os",  # with --guest (docs/guest.md), else empty
    "guest_filesystems",
)


class Output:
    """One output file; ``write`` takes each full report with its summary, ``close`` finishes the file."""

    def __init__(self, path: str, append: bool = False) -> None:
        mode = "a" if append else "w"
        self.file: IO[str] = open(path, mode, encoding="utf-8", newline="")  # noqa: SIM115 (closed in close())
        self.count = 0

    def write(self, report: ReportLike, summary: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.file.close()


class JsonOutput(Output):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.file.write("[")

    def write(self, report: ReportLike, summary: dict[str, Any]) -> None:
        self.file.write(("," if self.count else "") + "\n" + json.dumps(report, ensure_ascii=True))
        self.count += 1

    def close(self) -> None:
        self.file.write("\n]\n")
        super().close()


class JsonLinesOutput(Output):
    """With ``append`` (``triage --resume``), new lines go after an earlier run's; a torn last line is ended first
    so that it stays one unreadable line (skipped on resume) instead of swallowing the next report."""

    def __init__(self, path: str, append: bool = False) -> None:
        super().__init__(path, append)
        if append and self.file.tell() > 0 and not _ends_with_newline(path):
            self.file.write("\n")

    def write(self, report: ReportLike, summary: dict[str, Any]) -> None:
        self.file.write(json.dumps(report, ensure_ascii=True) + "\n")
        self.file.flush()
        self.count += 1


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as stream:
        stream.seek(-1, 2)
        return stream.read(1) == b"\n"


class CsvOutput(Output):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.writer = csv.writer(self.file)
        self.writer.writerow(CSV_COLUMNS)

    def write(self, report: ReportLike, summary: dict[str, Any]) -> None:
        # A cell starting with = + - @ would be a formula in a spreadsheet: escape image-derived text.
        row = []
        for column in CSV_COLUMNS:
            value = summary.get(column)
            text = "" if value is None else printable(value, 1024)
            row.append("'" + text if text[:1] in ("=", "+", "-", "@") else text)
        self.writer.writerow(row)
        self.count += 1


_HTML_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Disk Image Workbench triage</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d1d1f}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left}
th{background:#f0f0f3}.reject{color:#b00020;font-weight:bold}.review{color:#9a6700;font-weight:bold}
.accept{color:#1a7f37}.failed{color:#6e6e73;font-weight:bold}code{font-size:90%}details{margin:.2em 0}
</style></head><body>
<h1>Disk Image Workbench triage</h1>
<table><thead><tr><th>file</th><th>verdict</th><th>format</th><th>declared</th><th>logical</th><th>file size</th>
<th>encrypted</th><th>findings</th><th>guest OS</th><th>guest filesystems</th></tr></thead><tbody>
"""


def _h(value: Any, cap: int = 1024) -> str:
    return html.escape(printable("" if value is None else value, cap))


class HtmlOutput(Output):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.file.write(_HTML_HEAD)

    def write(self, report: ReportLike, summary: dict[str, Any]) -> None:
        findings = report.get("findings", [])
        items = "".join(
            f"<li><b>{_h(f['severity'])}</b> <code>{_h(f['id'])}</code>: {_h(f['detail'])}</li>"
            for f in findings
            if f["severity"] != "info"
        )
        top = _h(summary["top_finding"])
        body = f"<details><summary>{top or 'none'}</summary><ul>{items}</ul></details>" if items else top
        verdict = summary["verdict"]
        cells = (
            f"<td><code>{_h(summary['path'])}</code></td><td class='{_h(verdict)}'>{_h(verdict)}</td>"
            f"<td>{_h(summary['format'])}</td><td>{_h(summary['declared_format'])}</td>"
            f"<td>{_h(human_size(summary['virtual_size']))}</td><td>{_h(human_size(summary['file_size']))}</td>"
            f"<td>{'yes' if summary['encrypted'] else 'no'}</td><td>{body}</td>"
            f"<td>{_h(summary['guest_os'])}</td><td>{_h(summary['guest_filesystems'])}</td>"
        )
        self.file.write(f"<tr>{cells}</tr>\n")
        self.count += 1

    def close(self) -> None:
        self.file.write(f"</tbody></table><p>{self.count} file(s).</p></body></html>\n")
        super().close()


KINDS: dict[str, type[Output]] = {
    "json": JsonOutput,
    "jsonl": JsonLinesOutput,
    "csv": CsvOutput,
    "html": HtmlOutput,
}
