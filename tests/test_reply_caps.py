"""Reports survive hostile volume: the engine fits every reply to the caps the parent checks.

A hostile image must never turn a reject into "could not inspect" by making the reply too large for
the parent's validator: byte regions, fields, findings, lists and strings are cut in the engine, with a
``report-capped`` finding, and what decides the verdict (critical findings, references) is kept.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.builders import qcow2 as q
from tests.helpers import assert_no_parser_error, inspect_file
from workbench import inspector
from workbench.engine import fit, report
from workbench.engine.fields import Field
from workbench.engine.findings import make
from workbench.engine.formats import BY_NAME
from workbench.engine.inspection import Inspection
from workbench.engine.limits import (
    HEADER_BYTES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_LIST,
    MAX_REGIONS,
    MAX_STRING,
    REGION_BYTES,
    REPLY_BUDGET,
)
from workbench.host.validate import validate
from workbench.policy import policy

BACKING = "/srv/images/parent-SENTINEL.qcow2"


def _fragmented_snapshots(count: int = 1024) -> bytes:
    """A qcow2 with a backing file whose snapshot entries carry 1000 bytes of unread extra data each:
    every entry becomes its own byte region (the image of issue 13)."""
    snaps = [q.snapshot_entry(str(i), f"s{i}", extra=bytes(1000)) for i in range(count)]
    return q.qcow2(1 << 30, backing=BACKING, snapshots=snaps)


def _judged(rep: dict[str, Any]) -> dict[str, Any]:
    """What the parent does with a reply: JSON round trip, validation, policy."""
    clean = validate(json.loads(json.dumps(rep)))
    return policy.apply(clean, policy.Policy())


def _assert_backing_rejected(clean: dict[str, Any]) -> None:
    assert clean["verdict"] == "reject"
    assert clean["backing"]["filename"] == BACKING
    assert any(ref["name"] == BACKING for ref in clean["references"])
    assert any(f["id"] == "backing-file" and f["severity"] == "critical" for f in clean["findings"])


def _capped(clean: dict[str, Any]) -> list[str]:
    return [f["detail"] for f in clean["findings"] if f["id"] == "report-capped"]


def test_fragmented_snapshots_keep_the_report_and_its_backing_file(tmp_path: Path) -> None:
    path = tmp_path / "snaps.qcow2"
    path.write_bytes(_fragmented_snapshots())
    rep = inspect_file(path, "qcow2")
    assert_no_parser_error(rep)
    assert len(rep["byte_regions"]) <= MAX_REGIONS
    assert sum(len(r["hex"]) for r in rep["byte_regions"]) <= 2 * REGION_BYTES
    assert rep["header_bytes"]["offset"] == 0
    clean = _judged(rep)
    _assert_backing_rejected(clean)
    assert any(d.startswith("hex view:") for d in _capped(clean))


def test_fragmented_snapshots_through_the_sandboxed_child(tmp_path: Path) -> None:
    path = tmp_path / "snaps.qcow2"
    path.write_bytes(_fragmented_snapshots())
    rep = asyncio.run(inspector.inspect(inspector.Request(str(path), "qcow2")))
    assert "error" not in rep, rep.get("error")
    _assert_backing_rejected(rep)


def _flood(parse: Any) -> Any:
    """Wrap a real parser: after it, add thousands of fields, findings, references and long strings."""

    def flooded(reader: Any, info: Inspection) -> None:
        parse(reader, info)
        info.fields.append(Field("flood", 0, 1, None, "x" * 50_000, [Field(f"f{i}", i, 1, i) for i in range(30_000)]))
        deep = Field("deep", 0, 1)
        node = deep
        for level in range(200):
            node = node.add(Field(f"level {level}", 0, 1, "v" * 10_000))
        info.fields.append(deep)
        info.findings.extend(make("snapshots", f"info {i}") for i in range(3000))
        info.findings.extend(make("dirty", f"warning {i}") for i in range(3000))
        info.findings.append(make("corrupt", "the one critical finding, added last"))
        for i in range(3000):
            info.reference("extent", f"/extents/{i}-" + "n" * 6000)
        info.extents.extend({"filename": f"e{i}"} for i in range(3000))
        info.snapshots.extend({"id": str(i), "name": "s" * 9000} for i in range(3000))
        info.details.update({f"key{i}": "d" * 9000 for i in range(3000)})

    return flooded


def test_thousands_of_everything_still_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fmt = BY_NAME["qcow2"]
    monkeypatch.setattr(fmt, "parse", _flood(fmt.parse))
    path = tmp_path / "flood.qcow2"
    path.write_bytes(q.qcow2(1 << 30, backing=BACKING))
    rep = inspect_file(path, "qcow2")
    assert len(json.dumps(rep)) <= REPLY_BUDGET
    assert len(rep["findings"]) <= MAX_LIST
    clean = _judged(rep)
    _assert_backing_rejected(clean)
    ids = [f["id"] for f in clean["findings"]]
    assert "corrupt" in ids  # the one critical finding was kept over thousands of earlier ones
    capped = _capped(clean)
    assert any("findings left out" in d for d in capped)
    references_cut = [f for f in clean["findings"] if f["id"] == "report-capped" and "references" in f["detail"]]
    assert references_cut and all(f["severity"] == "critical" for f in references_cut)
    assert len(clean["references"]) == MAX_LIST
    assert all(len(ref["name"]) <= MAX_STRING for ref in clean["references"])


def test_field_tree_is_cut_to_its_node_and_depth_caps() -> None:
    deep = Field("root", 0, 1)
    node = deep
    for level in range(100):
        node = node.add(Field(f"level {level}", 0, 1, "v" * 10_000))
    wide = Field("wide", 0, 1, None, "", [Field(str(i), i, 1) for i in range(MAX_FIELDS + 500)])
    tree, left, _ = fit.field_tree([deep, wide])
    # the first node past the depth cap (its subtree is not walked), and the wide group's nodes past the count cap
    assert left == 1 + (1 + MAX_FIELDS + 500 - (MAX_FIELDS - MAX_DEPTH))
    depth, level = 0, tree[0]
    while level.get("children"):
        depth, level = depth + 1, level["children"][0]
    assert depth + 1 == MAX_DEPTH and len(level["value"]) == MAX_STRING


def test_hex_view_is_cut_to_its_byte_and_region_caps() -> None:
    big = [(i * (300 << 10), bytes(200 << 10)) for i in range(3)]  # 600 KiB read in three regions
    regions, header, left = fit.display_regions(big)
    assert sum(len(r["hex"]) for r in regions) == 2 * REGION_BYTES and left == 0  # the view shows the first bytes
    assert header is not None and len(header["hex"]) == 2 * HEADER_BYTES
    many = [(i * 16, b"x") for i in range(MAX_REGIONS + 10)]
    regions, header, left = fit.display_regions(many)
    assert len(regions) == MAX_REGIONS and left == 10


def test_findings_cap_keeps_critical_then_warning_then_info() -> None:
    found = [make("snapshots", "i") for _ in range(900)]
    found += [make("dirty", "w") for _ in range(200)] + [make("corrupt", "c") for _ in range(5)]
    kept, left = fit.findings(found, limit=1000)
    severities = [f.severity for f in kept]
    assert left == 105 and severities.count("critical") == 5 and severities.count("warning") == 200
    kept_ids = {id(f) for f in kept}
    assert kept == [f for f in found if id(f) in kept_ids]  # original order among those kept


def test_reply_over_budget_drops_hex_then_cuts_fields_then_strings() -> None:
    names = "\x01" * MAX_STRING  # escaped as \u0001 in JSON: six bytes per character
    rep: dict[str, Any] = {
        "references": [{"role": "extent", "name": names} for _ in range(MAX_LIST)],
        "extents": [{"filename": names} for _ in range(MAX_LIST)],
        "byte_regions": [{"offset": 0, "hex": "00" * 1000}],
        "header_bytes": None,
        "fields": [],
        "findings": [],
    }
    fit.within_budget(rep, [Field("f", 0, 1, names) for _ in range(100)])
    assert fit.reply_size(rep) <= REPLY_BUDGET
    assert rep["byte_regions"] == []
    assert rep["findings"][-1]["severity"] == "critical"
    assert all(len(ref["name"]) == fit.SHORT_STRING for ref in rep["references"])


def test_parent_drops_bad_hex_never_the_report(tmp_path: Path) -> None:
    path = tmp_path / "p.qcow2"
    path.write_bytes(q.qcow2(1 << 30, backing=BACKING))
    rep = json.loads(json.dumps(inspect_file(path, "qcow2")))
    rep["byte_regions"] = [{"offset": i, "hex": "00"} for i in range(MAX_REGIONS + 1)]
    rep["header_bytes"] = {"offset": 0, "hex": "abc"}
    clean = policy.apply(validate(rep), policy.Policy())
    assert clean["byte_regions"] == [] and clean["header_bytes"] is None
    assert any(d.startswith("hex view left out") for d in _capped(clean))
    _assert_backing_rejected(clean)


def _without_fields(rep: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rep.items() if key not in ("fields", "elapsed_ms")}


@pytest.mark.parametrize("flood", [True, False], ids=["thousands of everything", "fragmented snapshots"])
def test_a_report_without_its_field_tree_keeps_every_finding_and_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flood: bool
) -> None:
    """A batch that keeps only summaries asks for no field tree; the tree's own cuts (``report-capped``, the reply
    budget) still decide the findings, so everything but ``fields`` is what the full report says."""
    path = tmp_path / "image.qcow2"
    if flood:
        monkeypatch.setattr(BY_NAME["qcow2"], "parse", _flood(BY_NAME["qcow2"].parse))
        path.write_bytes(q.qcow2(1 << 30, backing=BACKING))
    else:
        path.write_bytes(_fragmented_snapshots())
    with path.open("rb") as image:
        full = report.build(image.fileno(), str(path), "qcow2", include_bytes=False)
        summary = report.build(image.fileno(), str(path), "qcow2", include_bytes=False, include_fields=False)
    assert full["fields"] and summary["fields"] == []
    assert any(f["id"] == "report-capped" for f in full["findings"]) is flood
    assert _without_fields(summary) == _without_fields(full)
    _assert_backing_rejected(_judged(summary))
