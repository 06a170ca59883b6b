"""Helpers for parser tests: the engine run in-process on a file, and finding checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.engine import report
from workbench.engine.inspection import Inspection


def inspect_file(path: Path | str, declared: str | None = None) -> dict[str, Any]:
    """The engine's report for ``path``, run in this process (no sandbox): for parser tests."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return report.build(fd, str(path), declared)
    finally:
        os.close(fd)


def finding_ids(rep: dict[str, Any]) -> set[str]:
    return {f["id"] for f in rep["findings"]}


def assert_no_parser_error(rep: dict[str, Any]) -> None:
    errors = [f["detail"] for f in rep["findings"] if "internal parser error" in f["detail"]]
    assert not errors, errors


def inspect_bytes(tmp_path: Path, data: bytes, declared: str | None, name: str = "image") -> dict[str, Any]:
    """Write ``data`` to a file, inspect it, and check the invariants every report keeps."""
    path = tmp_path / name
    path.write_bytes(data)
    rep = inspect_file(path, declared)
    assert_no_parser_error(rep)
    assert rep["bytes_read"] <= rep["read_budget"]
    return rep


def checks_of(rep: dict[str, Any] | Inspection) -> list[str]:
    """The check ids of the ``malformed`` findings of a report (or a parser's Inspection), in order: tests
    assert on these ids (docs/formats.md lists them), not on the prose of the details."""
    if isinstance(rep, Inspection):
        return [f.check or "" for f in rep.findings if f.id == "malformed"]
    return [f["check"] for f in rep["findings"] if f["id"] == "malformed"]
