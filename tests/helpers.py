"""Helpers for parser tests: the engine run in-process on a file, and finding checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.host.runner import build_in_process as inspect_file  # the parser tests' name for it


def finding_ids(rep: dict[str, Any]) -> set[str]:
    return {f["id"] for f in rep["findings"]}


def details_of(rep: dict[str, Any], finding_id: str) -> list[str]:
    """The details of every ``finding_id`` finding of a report, in order."""
    return [f["detail"] for f in rep["findings"] if f["id"] == finding_id]


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
