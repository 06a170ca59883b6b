"""``inspect --deep``'s progress line: on standard error only when it is a terminal (a pseudo-terminal here),
never mixed into the JSON on standard output, erased at the end; none at all when stderr is a pipe."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import qcow2
from workbench.cli.progress import TerminalProgress

ERASE = "\r\x1b[K"


def run_with_tty_stderr(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the command line with stdout a pipe and stderr a pseudo-terminal; ``(code, stdout, stderr)``."""
    master, slave = pty.openpty()
    env = {**os.environ, "XDG_CONFIG_HOME": str(cwd)}
    with subprocess.Popen(
        [sys.executable, "-m", "workbench", *args], stdout=subprocess.PIPE, stderr=slave, env=env, cwd=cwd
    ) as child:
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            err += chunk
        out = child.stdout.read() if child.stdout else b""
        code = child.wait(timeout=60)
    os.close(master)
    return code, out.decode(), err.decode()


def test_deep_draws_a_bar_on_a_terminal_and_keeps_the_json_intact(tmp_path: Path) -> None:
    image = tmp_path / "disk.qcow2"
    image.write_bytes(qcow2.qcow2(1 << 30))
    code, out, err = run_with_tty_stderr("inspect", "--deep", "--json", str(image), cwd=tmp_path)
    assert code == 0, err
    report = json.loads(out)  # nothing but the JSON on stdout
    assert report["deep"]["complete"] is True
    assert ERASE + "[" in err and "100%" in err and "done" in err
    assert err.endswith(ERASE)  # erased: the terminal is left on a clean line


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    image = tmp_path / "disk.qcow2"
    image.write_bytes(qcow2.qcow2(1 << 30))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "inspect", "--deep", "--json", str(image)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout)["deep"]["complete"] is True


def test_the_line_escapes_the_childs_text_and_hides_url_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    stream = io.StringIO()
    assert not TerminalProgress.wanted(stream)
    bar = TerminalProgress(["https://h/disk.qcow2?X-Amz-Signature=sekrit", "/x/b.vmdk"], stream)
    bar.draw(0, {"done": 1, "total": 2, "what": "\x1b]0;pwned\x07 tables"})
    line = stream.getvalue()
    assert line.startswith(ERASE + "[" + "#" * 12 + "-" * 12 + "]  50% disk.qcow2: \\x1b]0;pwned")
    assert "sekrit" not in line and "\\x1b]0;pwned\\x07 tables" in line and "\x07" not in line
    bar.erase()
    assert stream.getvalue().endswith(ERASE) and not bar.drawn
