"""Sizes are exact integers everywhere: command line, settings file (the GUI field is in test_gui_settings)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.builders import qcow2 as q
from tests.test_cli import run_cli
from workbench.policy import policy, settings

EDGE = (1 << 53) + 1024  # the float nearest to 2**53 + 1023 is this; a float parse turns one into the other


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("9007199254742015", EDGE - 1),
        ("18446744073709551615", (1 << 64) - 1),
        ("1.5G", 3 << 29),
        ("0.5K", 512),
        ("8191.5P", (16383 << 49)),
        ("0.0009765625K", 1),
        (" 2 KiB ", 2048),
        ("007M", 7 << 20),
    ],
)
def test_sizes_are_exact(text: str, value: int) -> None:
    assert policy.parse_size(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.1G", "not a whole number of bytes (the nearest below is 1181116006)"),
        ("16E", "more than 2**64-1 bytes"),
        ("18446744073709551616", "more than 2**64-1 bytes"),
        ("1e9", "not a size"),
        ("1,5G", "not a size"),
        ("-1", "not a size"),
        ("0x10", "not a size"),
        ("\u0661", "not a size"),  # an Arabic-Indic digit: int() takes it, a size does not
        ("9" * 5000, "not a size"),  # refused before any conversion
        ("inf", "not a size"),
    ],
)
def test_bad_sizes_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        policy.parse_size(text)


@pytest.mark.parametrize(
    ("stored", "value"),
    [
        (EDGE - 1, EDGE - 1),
        ("1.5T", 3 << 39),
        (float(EDGE - 1), policy.DEFAULT_MAX_VIRTUAL_SIZE),  # a float is not a size: default, with a warning
        (True, policy.DEFAULT_MAX_VIRTUAL_SIZE),
        (-1, policy.DEFAULT_MAX_VIRTUAL_SIZE),
        (1 << 64, policy.DEFAULT_MAX_VIRTUAL_SIZE),
        ("lots", policy.DEFAULT_MAX_VIRTUAL_SIZE),
    ],
)
def test_settings_file_sizes_are_exact(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, stored: object, value: int
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"max_virtual_size": stored}), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        loaded = settings.load(path)
    assert loaded.max_virtual_size == value
    assert ("max_virtual_size" in caplog.text) == (value == policy.DEFAULT_MAX_VIRTUAL_SIZE)
    settings.save(loaded, path)
    assert settings.load(path).max_virtual_size == value


@pytest.fixture
def edge_image(tmp_path: Path) -> Path:
    """A qcow2 whose logical size is 2**53 + 1024 bytes (2 MiB clusters keep its L1 table small)."""
    path = tmp_path / "edge.qcow2"
    path.write_bytes(q.qcow2(EDGE, cluster_bits=21))
    return path


@pytest.mark.parametrize(("limit", "over"), [(str(EDGE - 1), True), (str(EDGE), False)])
def test_command_line_limit_is_exact(edge_image: Path, limit: str, over: bool) -> None:
    result = run_cli("inspect", "--json", "--max-virtual-size", limit, str(edge_image))
    report = json.loads(result.stdout)
    assert report["virtual_size"] == EDGE
    assert any(f["id"] == "virtual-size-limit" for f in report["findings"]) == over
    assert (result.returncode == 20) == over, result.stderr


def test_command_line_refuses_a_fractional_byte(edge_image: Path) -> None:
    result = run_cli("inspect", "--max-virtual-size", "1.1G", str(edge_image))
    assert result.returncode == 2
    assert "not a whole number of bytes" in result.stderr
