"""One audited file as a report dict (``workbench-audit/1``), and that report as text for a terminal.

:func:`audit_path` is what the command line and the window call; it never raises for a bad file: a file
that cannot be read or parsed gives verdict ``failed`` and a one-line ``error``.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from typing import Any

from ..policy.policy import verdict_of
from ..render.textsafe import printable
from ..schema import most_severe_first
from . import KINDS, AuditError, domain_xml, qemu_conf
from .findings import AuditFinding

SCHEMA = "workbench-audit/1"
MAX_FILE = 1 << 20  # a domain XML or qemu.conf is a few tens of KiB
MAX_FINDINGS = 200
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_capped(path: str) -> bytes:
    """The file's bytes; a FIFO or device is refused (it could block or never end), as is a file over MAX_FILE."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise AuditError(f"cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuditError("not a regular file")
        if info.st_size > MAX_FILE:
            raise AuditError(f"not audited: {info.st_size} bytes, more than the limit of {MAX_FILE}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise AuditError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE:
        raise AuditError(f"not audited: the file grew past the limit of {MAX_FILE} bytes while being read")
    return data


def detect_kind(data: bytes) -> str:
    """Domain XML starts with ``<`` (after an optional UTF-8 byte order mark); anything else is qemu.conf."""
    return "domain-xml" if data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<") else "qemu-conf"


def _findings(data: bytes, kind: str, roots: tuple[str, ...]) -> tuple[list[AuditFinding], dict[str, Any]]:
    if kind == "domain-xml":
        findings, summary = domain_xml.audit(data, roots)
        summary["image_roots"] = list(roots)
        return findings, summary
    if kind == "qemu-conf":
        return qemu_conf.audit(data)
    raise ValueError(f"unknown audit kind {kind!r}; one of {', '.join(KINDS)}")


def _capped(findings: list[AuditFinding]) -> list[AuditFinding]:
    if len(findings) <= MAX_FINDINGS:
        return findings
    order = sorted(findings, key=lambda finding: most_severe_first(finding.severity))
    dropped = len(findings) - MAX_FINDINGS
    note = AuditFinding("audit-truncated", f"{len(findings)} findings; the {dropped} least severe are not listed")
    return [note, *order[:MAX_FINDINGS]]


def audit_path(path: str, kind: str | None = None, image_roots: Sequence[str] = ()) -> dict[str, Any]:
    """Audit one file. ``kind``: one of KINDS, or ``None`` to tell by the first byte.

    ``image_roots`` adds absolute folders to domain_xml.DEFAULT_IMAGE_ROOTS for the disk location check.
    Pure: reads the one file named, nothing it names; no Qt.
    """
    report: dict[str, Any] = {"schema": SCHEMA, "path": str(path), "kind": kind, "findings": [], "verdict": "failed"}
    roots = domain_xml.DEFAULT_IMAGE_ROOTS + tuple(posixpath.normpath(root) for root in image_roots)
    try:
        data = read_capped(path)
        report["kind"] = kind = kind or detect_kind(data)
        findings, summary = _findings(data, kind, roots)
    except AuditError as exc:
        report["error"] = str(exc)
        return report
    rows = [finding.to_json() for finding in _capped(findings)]
    rows.sort(key=lambda row: most_severe_first(row["severity"]))
    report.update(summary=summary, findings=rows, verdict=verdict_of(rows))
    return report


def _headline(report: dict[str, Any]) -> str:
    summary = report["summary"]
    if report["kind"] == "domain-xml":
        name = printable(summary["name"], 120) or "(no name)"
        return f"  domain      {name}, {summary['disks']} disk(s)"
    return (
        f"  qemu.conf   {summary['settings']} setting(s) in {summary['lines']} line(s), "
        f"{summary['syntax_errors']} syntax error(s)"
    )


def summary(report: dict[str, Any], verbose: bool = False) -> str:
    """Several lines: verdict, what the file is, each finding with its detail and recommendation."""
    path = printable(report["path"], 1024)
    if report["verdict"] == "failed":
        return f"{path}: FAILED: {printable(report.get('error', ''), 1024)}"
    shown = [f for f in report["findings"] if verbose or f["severity"] != "info"]
    hidden = len(report["findings"]) - len(shown)
    lines = [f"{path}: {report['verdict'].upper()} ({report['kind']})", _headline(report)]
    lines.append(
        f"  findings    {len(shown) or 'none'}" + (f" ({hidden} info hidden; -v shows them)" if hidden else "")
    )
    for finding in shown:
        where = f" at {printable(finding['location'], 200)}" if finding["location"] else ""
        lines.append(f"    {finding['severity'].upper():8} {finding['id']}: {finding['title']}{where}")
        lines.append(f"             {printable(finding['detail'], 1024)}")
        lines.append(f"             -> {finding['recommendation']}")
    return "\n".join(lines)
