"""The command line around the window (issue 18, item 8): help lists the window options, ``triage --jobs``
shows its default, an unknown format gets a suggestion, a URL is refused rather than made a path."""

from __future__ import annotations

from typing import Any

import pytest

from workbench import app
from workbench.cli import main as cli
from workbench.ui.main_window import MainWindow


def _help(argv: list[str], capsys: Any) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 0
    return capsys.readouterr().out


def test_help_lists_the_window_options(capsys: Any) -> None:
    text = _help(["--help"], capsys)
    for option in ("--demo", "--theme {system,light,dark}", "--quit-after SECONDS"):
        assert option in text
    parsed = app.build_parser().parse_args(["--demo", "--theme", "dark", "--quit-after", "2", "x.qcow2"])
    assert (parsed.demo, parsed.theme, parsed.quit_after, parsed.files) == (True, "dark", 2.0, ["x.qcow2"])


def test_triage_jobs_shows_its_default(capsys: Any) -> None:
    text = " ".join(_help(["triage", "--help"], capsys).split())
    assert "inspections in flight (default: " in text


@pytest.mark.parametrize(("given", "hint"), [("vhd", "vpc"), ("VHD", "vpc"), ("qcow3", "qcow2"), ("vmdx", "vmdk")])
def test_an_unknown_format_gets_a_suggestion(capsys: Any, given: str, hint: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["inspect", "-f", given, "disk"])
    assert stopped.value.code == 2
    assert f"unknown format '{given}'; did you mean {hint}?" in capsys.readouterr().err


def test_a_url_on_the_command_line_is_refused(fast_window: MainWindow, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    app.open_arguments(fast_window, ["https://example.com/disk.qcow2", "s3://bucket/key.vmdk"], demo=False)
    assert fast_window.model.rowCount() == 0 and not fast_window.triages
    assert fast_window.settings.recent_files == []
    assert len(fast_window.notices.messages) == 2
    assert fast_window.notices.messages[0].startswith("refused https://example.com/disk.qcow2: a URL")
