"""The contract is written once (workbench/schema.py) and a runner travels beside the request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.builders import qcow2
from workbench import inspector, schema
from workbench.engine import limits
from workbench.engine.child import sandbox, winjob
from workbench.host import runner, validate
from workbench.policy import policy
from workbench.schema import Severity, Verdict


def test_severities_and_verdicts_compare_by_their_declared_order() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.CRITICAL
    assert Verdict.ACCEPT < Verdict.REVIEW < Verdict.REJECT < Verdict.FAILED
    assert Severity.WARNING > "info" and Verdict.REVIEW <= "review"  # plain strings compare as their member
    assert Verdict.worst(["accept", "failed", "reject"], default=Verdict.ACCEPT) == "failed"
    assert Severity.worst([], default=Severity.INFO) == "info"
    with pytest.raises(ValueError):
        _ = Severity.INFO < "fatal"


def test_the_findings_order_and_the_policy_follow_the_enums() -> None:
    assert sorted(["info", "critical", "warning"], key=schema.most_severe_first) == ["critical", "warning", "info"]
    assert schema.most_severe_first("unknown") > schema.most_severe_first("info")
    assert policy.worst(["review", "accept"]) == "review"
    assert policy.verdict_of([{"severity": "warning"}, {"severity": "info"}]) == "review"


def test_each_contract_constant_has_one_definition() -> None:
    for name in ("MAX_STRING", "MAX_LIST", "MAX_FIELDS", "MAX_DEPTH", "MAX_INT", "REPLY_CAP", "HEADER_BYTES"):
        assert getattr(limits, name) is getattr(schema, name), name
    assert validate.SCHEMA is schema.SCHEMA
    assert sandbox.CPU_SECONDS is schema.CPU_SECONDS and sandbox.ADDRESS_SPACE is schema.ADDRESS_SPACE
    assert winjob.MEMORY_LIMIT is schema.ADDRESS_SPACE


def test_the_in_process_runner_answers_as_a_child_does(tmp_path: Path) -> None:
    """The same inspection through a fresh sandboxed child and through the in-process stand-in."""
    image = tmp_path / "disk.qcow2"
    image.write_bytes(qcow2.qcow2(1 << 30, backing="/etc/passwd", backing_format="raw"))
    request = inspector.Request(str(image))
    layers = dict.fromkeys(sandbox.layer_order(), "on (stand-in)")

    async def both() -> tuple[dict, dict]:
        return await inspector.inspect(request), await inspector.inspect(request, runner.InProcessRunner(layers))

    child, stand_in = asyncio.run(both())
    assert child["verdict"] == stand_in["verdict"] == "reject"
    assert [f["id"] for f in child["findings"]] == [f["id"] for f in stand_in["findings"]]
    assert stand_in["sandbox"] == layers
    assert {k: v for k, v in child.items() if k not in ("sandbox", "elapsed_ms")} == {
        k: v for k, v in stand_in.items() if k not in ("sandbox", "elapsed_ms")
    }


def test_the_in_process_runner_claims_no_layer_by_default(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(4096))
    report = asyncio.run(inspector.inspect(inspector.Request(str(image)), runner.InProcessRunner()))
    assert report["verdict"] == "failed"  # the default policy requires layers an unsandboxed parse lacks
    assert "sandbox layers required but not on" in report["error"]
