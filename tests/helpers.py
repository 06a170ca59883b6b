"""Helpers for parser tests: the engine run in-process on a file, and finding checks."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from workbench.engine.inspection import Inspection
from workbench.host.runner import build_in_process as inspect_file  # the parser tests' name for it


def write(tmp_path: Path, data: bytes, name: str) -> Path:
    """``data`` as the file ``tmp_path / name``."""
    path = tmp_path / name
    path.write_bytes(data)
    return path


def finding_ids(rep: dict[str, Any]) -> set[str]:
    return {f["id"] for f in rep["findings"]}


def details_of(rep: dict[str, Any] | Inspection, finding_id: str) -> list[str]:
    """The details of every ``finding_id`` finding of a report (or a parser's Inspection), in order."""
    if isinstance(rep, Inspection):
        return [f.detail for f in rep.findings if f.id == finding_id]
    return [f["detail"] for f in rep["findings"] if f["id"] == finding_id]


def assert_no_parser_error(rep: dict[str, Any]) -> None:
    errors = [f["detail"] for f in rep["findings"] if "internal parser error" in f["detail"]]
    assert not errors, errors


def inspect_bytes(tmp_path: Path, data: bytes, declared: str | None, name: str = "image") -> dict[str, Any]:
    """Write ``data`` to a file, inspect it, and check the invariants every report keeps."""
    rep = inspect_file(write(tmp_path, data, name), declared)
    assert_no_parser_error(rep)
    assert rep["bytes_read"] <= rep["read_budget"]
    return rep


@functools.cache
def documented_checks() -> frozenset[str]:
    """The check ids docs/formats.md lists (its per-format tables)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "formats.md").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^\| `([a-z0-9]+\.[a-z0-9-]+)` \|", text, re.M))


def checks_of(rep: dict[str, Any] | Inspection) -> list[str]:
    """The check ids of the ``malformed`` findings of a report (or a parser's Inspection), in order: tests
    assert on these ids, not on the prose of the details. Every id met must be listed in docs/formats.md."""
    if isinstance(rep, Inspection):
        checks = [f.check or "" for f in rep.findings if f.id == "malformed"]
    else:
        checks = [f["check"] for f in rep["findings"] if f["id"] == "malformed"]
    undocumented = set(checks) - documented_checks()
    assert not undocumented, f"check ids missing from docs/formats.md: {sorted(undocumented)}"
    return checks


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without what differs between two runs on the same image: its (and its guest view's)
    ``elapsed_ms``, and the number the parent happened to pass the image on (the child keeps descriptors 0-3
    either way; a parent without an event loop often passes it as 3 already, so the ``fds`` layer moves none)."""
    fds = re.sub(r"; moved \d+ to 3\b", "", report["sandbox"]["fds"])
    assert isinstance(report["elapsed_ms"], int | float)
    kept = {key: value for key, value in report.items() if key != "elapsed_ms"}
    kept["sandbox"] = {**report["sandbox"], "fds": fds}
    if isinstance(report.get("guest"), dict):
        kept["guest"] = {key: value for key, value in report["guest"].items() if key != "elapsed_ms"}
    return kept


def outside_the_process(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without what depends on the process that made it: its time and its sandbox lines (a fork
    server's child and a fresh one, or a batch child and a child per image, differ there and nowhere else)."""
    return {key: value for key, value in report.items() if key not in ("elapsed_ms", "sandbox")}


def seed_corpus(folder: Path, qemu_img: str) -> dict[str, str | None]:
    """Every fuzz seed image (the test builders' and qemu-img's) written into ``folder/corpus``: path -> the
    format it is declared as."""
    from fuzz.corpus import builder_seeds, qemu_seeds

    (folder / "qemu").mkdir()
    (folder / "corpus").mkdir()
    declared = {}
    for seed in builder_seeds() + qemu_seeds(folder / "qemu", qemu_img):
        path = folder / "corpus" / seed.name
        path.write_bytes(seed.data)
        declared[str(path)] = seed.declared
    return declared
