"""Real sandbox layers taken away (``tests/seccomp_jail.py`` makes their system calls fail) and what the user
sees: a refusal naming the missing layer (exit 30, one line) or a ``sandbox-degraded`` warning in every output.

Each combination is one the issue found on real hosts: no unprivileged user namespaces, no Landlock, no
libseccomp, a uid drop that fails as root. The workbench runs unmodified under the jail, so the parent's check,
the zygote's and each child's status are the real code's.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT_DIR = Path(__file__).resolve().parents[1]
JAIL = str(Path(__file__).with_name("seccomp_jail.py"))
NO_USERNS = "unshare"
NO_LANDLOCK = "landlock_create_ruleset=ENOSYS"  # what a kernel without Landlock answers
NO_SECCOMP = "seccomp,prctl:22"  # seccomp() and its prctl(PR_SET_SECCOMP) fallback
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop happens only when started as root")

REFUSED = [
    pytest.param(f"{NO_USERNS},{NO_SECCOMP}", "namespaces|seccomp", id="no-userns-no-seccomp"),
    pytest.param(
        f"{NO_USERNS},{NO_SECCOMP},{NO_LANDLOCK}",
        "namespaces|seccomp, landlock|namespaces|seccomp",
        id="no-userns-no-seccomp-no-landlock",
    ),
    pytest.param("setresuid", "user", id="uid-drop-refused", marks=AS_ROOT),
    pytest.param("setgroups=0,setresgid=0,setresuid=0", "user", id="uid-drop-silently-ignored", marks=AS_ROOT),
    pytest.param("prctl:38", "no_new_privs", id="no-new-privs-refused"),
    pytest.param("prlimit64,setrlimit", "rlimits", id="rlimits-refused"),
]
WARNED = [
    pytest.param(NO_USERNS, ["namespaces"], id="no-userns"),
    pytest.param(NO_LANDLOCK, ["landlock"], id="no-landlock"),
    pytest.param(NO_SECCOMP, ["seccomp"], id="no-seccomp"),
    pytest.param(f"{NO_USERNS},{NO_LANDLOCK}", ["namespaces", "landlock"], id="seccomp-only"),
    pytest.param(f"{NO_LANDLOCK},{NO_SECCOMP}", ["landlock", "seccomp"], id="namespaces-only"),
]


def jailed(tmp_path: Path, calls: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``workbench ARGS`` with ``calls`` failing; default settings (an empty config folder)."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    command = [sys.executable, JAIL, calls, "--", sys.executable, "-m", "workbench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT_DIR, env=env)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "uploads"
    images.mkdir()
    (images / "disk.raw").write_bytes(b"\0" * 65536)
    return images


@pytest.mark.parametrize(("calls", "missing"), REFUSED)
def test_a_missing_required_layer_refuses_in_one_line(tmp_path: Path, folder: Path, calls: str, missing: str) -> None:
    image = str(folder / "disk.raw")
    line = f"sandbox layers required but not on: {missing}"
    text = jailed(tmp_path, calls, "inspect", image)
    assert (text.returncode, text.stdout, text.stderr) == (30, "", f"{image}: FAILED: {line}\n")
    as_json = jailed(tmp_path, calls, "inspect", "--json", image)
    report = json.loads(as_json.stdout)
    assert (as_json.returncode, report["verdict"], report["error"]) == (30, "failed", line)
    for need in missing.split(", "):
        assert not any(report["sandbox"][name].startswith("on") for name in need.split("|")), report["sandbox"]
    triaged = jailed(tmp_path, calls, "triage", str(folder))  # the zygote is refused too, then each child
    assert triaged.returncode == 30
    assert f"FAILED {image}: {line}\n" in triaged.stdout
    assert f"the engine zygote did not start: {line}" in triaged.stderr


@pytest.mark.parametrize(("calls", "layers"), WARNED)
def test_a_weaker_sandbox_is_named_in_every_output(tmp_path: Path, folder: Path, calls: str, layers: list[str]) -> None:
    image = str(folder / "disk.raw")
    as_json = jailed(tmp_path, calls, "inspect", "--json", image)
    report = json.loads(as_json.stdout)
    assert (as_json.returncode, report["verdict"]) == (10, "review"), as_json.stderr
    assert [name for name, status in report["sandbox"].items() if not status.startswith("on")] == layers
    (finding,) = [f for f in report["findings"] if f["id"] == "sandbox-degraded"]
    assert finding["severity"] == "warning"
    assert all(f"{name} {report['sandbox'][name]}" in finding["detail"] for name in layers)

    text = jailed(tmp_path, calls, "inspect", image).stdout
    assert f"{image}: REVIEW" in text
    assert "WARNING  sandbox-degraded" in text and all(name in text for name in layers)

    outputs = {kind: tmp_path / f"triage.{kind}" for kind in ("csv", "html", "json")}
    options = [part for kind, path in outputs.items() for part in (f"--{kind}", str(path))]
    triaged = jailed(tmp_path, calls, "triage", str(folder), *options)
    assert triaged.returncode == 10, triaged.stderr
    assert f"SANDBOX DEGRADED for 1 file(s): {', '.join(layers)} off or weaker" in triaged.stdout
    (row,) = csv.DictReader(outputs["csv"].read_text().splitlines())
    assert row["sandbox_degraded"] == ", ".join(layers)
    assert row["top_finding"].startswith("sandbox-degraded: ")
    assert "<code>sandbox-degraded</code>" in outputs["html"].read_text()
    (forked,) = json.loads(outputs["json"].read_text())
    assert "sandbox-degraded" in {f["id"] for f in forked["findings"]}
    assert [name for name, status in forked["sandbox"].items() if not status.startswith("on")] == layers


def test_sandbox_check_fails_when_an_attempt_gets_through(tmp_path: Path) -> None:
    """Without namespaces and seccomp, the NOFILE limit still stops every socket, but stat gets through."""
    done = jailed(tmp_path, f"{NO_USERNS},{NO_SECCOMP}", "sandbox-check", "--json")
    result = json.loads(done.stdout)
    assert done.returncode == 1
    assert result["escaped"] == ["stat", "stat (forked)"]
    assert result["missing"] == ["namespaces|seccomp", "namespaces|seccomp (forked)"]
    for child in (result, result["zygote"]):
        blocked = {name: outcome["detail"].split(":")[0] for name, outcome in child["probes"].items()}
        assert {blocked[name] for name in ("open", "connect", "udp", "unix", "abstract", "write")} == {"EMFILE"}
