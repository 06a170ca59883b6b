"""Reply validation, policy and verdicts, sizes, settings: the parent's view of a report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import inspect_file
from workbench.host.validate import ReplyError, validate
from workbench.policy import policy, settings


@pytest.fixture
def good_reply(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(4096))
    report = inspect_file(path, "raw")
    report["sandbox"] = {"rlimits": "on"}
    return json.loads(json.dumps(report))


def test_a_real_report_validates(good_reply: dict[str, Any]) -> None:
    clean = validate(good_reply)
    assert clean["format"] == "raw"
    assert clean["sandbox"] == {"rlimits": "on"}


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("virtual_size", "huge"),
        ("virtual_size", 1 << 70),
        ("virtual_size", True),
        ("encrypted", "yes"),
        ("format", None),
        ("fields", {"name": "x"}),
        ("findings", [{"id": "not-a-finding", "severity": "info"}]),
        ("findings", [{"id": "dirty", "severity": "catastrophic"}]),
        ("schema", "workbench-report/999"),
    ],
)
def test_bad_replies_are_refused(good_reply: dict[str, Any], key: str, bad: Any) -> None:
    reply = copy.deepcopy(good_reply)
    reply[key] = bad
    with pytest.raises(ReplyError):
        validate(reply)


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("byte_regions", [{"offset": 0, "hex": "zz"}]),
        ("byte_regions", "not a list"),
        ("header_bytes", {"offset": 0, "hex": "abc"}),
    ],
)
def test_bad_hex_is_dropped_never_the_report(good_reply: dict[str, Any], key: str, bad: Any) -> None:
    """Hex bytes are display data: a bad one costs the hex view (with a finding), never the report."""
    reply = copy.deepcopy(good_reply)
    reply[key] = bad
    clean = validate(reply)
    assert clean["byte_regions"] == [] and clean["header_bytes"] is None
    assert [f["id"] for f in clean["findings"]][-1] == "report-capped"


def test_deep_field_tree_is_refused_without_recursion(good_reply: dict[str, Any]) -> None:
    node: dict[str, Any] = {"name": "leaf", "offset": 0, "size": 1, "value": None}
    for _ in range(5000):
        node = {"name": "n", "offset": 0, "size": 1, "value": None, "children": [node]}
    good_reply["fields"] = [node]
    with pytest.raises(ReplyError, match="too large or too deep"):
        validate(good_reply)


def test_long_strings_are_capped(good_reply: dict[str, Any]) -> None:
    good_reply["path"] = "x" * 100_000
    assert len(validate(good_reply)["path"]) == 4096


def test_validated_findings_take_text_from_the_catalogue(good_reply: dict[str, Any]) -> None:
    good_reply["findings"] = [{"id": "dirty", "severity": "warning", "title": "<b>lie</b>", "detail": "d"}]
    finding = validate(good_reply)["findings"][0]
    assert finding["title"] == "Image was not closed cleanly"


@pytest.mark.parametrize(
    ("text", "value"),
    [("4T", 4 << 40), ("512M", 512 << 20), ("1.5G", 3 << 29), ("1024", 1024), ("2KiB", 2048), ("1p", 1 << 50)],
)
def test_parse_size(text: str, value: int) -> None:
    assert policy.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "T", "-1G", "1X", "1e9"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        policy.parse_size(text)


def _with(findings: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    report = {"format": "qcow2", "virtual_size": 1 << 30, "file_size": 1 << 20, "findings": []}
    report["findings"] = [{"id": i, "severity": s} for i, s in findings]
    report.update(extra)
    return report


def test_verdicts_follow_severity() -> None:
    rules = policy.Policy()
    assert policy.apply(_with([("unencrypted", "info")]), rules)["verdict"] == "accept"
    assert policy.apply(_with([("dirty", "warning")]), rules)["verdict"] == "review"
    assert policy.apply(_with([("dirty", "warning"), ("backing-file", "critical")]), rules)["verdict"] == "reject"


def test_virtual_size_limit_rejects() -> None:
    report = policy.apply(_with([], virtual_size=3 << 40), policy.Policy(max_virtual_size=2 << 40))
    assert report["verdict"] == "reject"
    assert [f["id"] for f in report["findings"]] == ["virtual-size-limit"]
    assert "3.0 TiB" in report["findings"][0]["detail"]


def test_allowed_formats() -> None:
    report = policy.apply(_with([]), policy.Policy(allowed_formats=["raw"]))
    assert [f["id"] for f in report["findings"]] == ["format-not-allowed"]


def test_worst_verdict_and_exit_codes() -> None:
    assert policy.worst(["accept", "reject", "review"]) == "reject"
    assert policy.worst(["accept", "failed", "reject"]) == "failed"
    assert [policy.EXIT_CODES[v] for v in ("accept", "review", "reject", "failed")] == [0, 10, 20, 30]


def test_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    saved = settings.Settings(max_virtual_size=1 << 30, allowed_formats=["qcow2"], theme="dark")
    saved.remember("/a")
    saved.remember("/b")
    saved.remember("/a")
    settings.save(saved, path)
    loaded = settings.load(path)
    assert loaded == saved
    assert loaded.recent_files == ["/a", "/b"]
    assert loaded.policy().max_virtual_size == 1 << 30


def test_settings_survive_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    assert settings.load(path) == settings.Settings()
    path.write_text(json.dumps({"max_virtual_size": "big", "theme": "neon", "allowed_roots": ["/srv"]}))
    loaded = settings.load(path)
    assert loaded.max_virtual_size == policy.DEFAULT_MAX_VIRTUAL_SIZE
    assert loaded.theme == "system"
    assert loaded.allowed_roots == ["/srv"]


def test_settings_live_in_the_platformdirs_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    written = settings.save(settings.Settings(theme="light"))
    assert written == tmp_path / "workbench" / "settings.json"
    assert settings.load().theme == "light"


def test_named_checks_reach_the_parent_and_bad_ones_are_dropped(tmp_path: Path) -> None:
    """A ``malformed`` finding's check id survives validation; a check that is not an id is dropped, not fatal."""
    path = tmp_path / "cut.qcow2"
    path.write_bytes(b"QFI\xfb\x00\x00\x00\x03" + bytes(40))  # a qcow2 header cut short
    reply = json.loads(json.dumps(inspect_file(path, "qcow2")))
    reply["sandbox"] = {"rlimits": "on"}
    checks = [f["check"] for f in validate(reply)["findings"] if f["id"] == "malformed"]
    assert checks and all(isinstance(check, str) and "." in check for check in checks)
    for finding in reply["findings"]:
        finding["check"] = "<b>not an id</b>"
    assert all(f["check"] is None for f in validate(reply)["findings"])
