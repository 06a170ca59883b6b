"""``workbench.inspect_path`` and friends as a public interface: real sandboxed children, the command line's
policy and report, failed results instead of exceptions, usage errors as ``ValueError``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.builders import qcow2
from tests.helpers import comparable, finding_ids, write
from workbench.policy.policy import Policy
from workbench.schema import Verdict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A settings folder of the test's own: no settings file unless a test writes one."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def backed_by_passwd(tmp_path: Path) -> Path:
    """A qcow2 upload whose backing file is /etc/passwd: whoever opens it reads the host's file."""
    return write(tmp_path, qcow2.qcow2(1 << 30, backing="/etc/passwd", backing_format="raw"), "upload.qcow2")


@pytest.fixture
def undeclared(tmp_path: Path) -> Path:
    return write(tmp_path, bytes(4096), "upload.bin")


def test_clean_raw_is_accepted(raw_image: Path) -> None:
    result = workbench.inspect_path(raw_image)
    assert result.verdict is Verdict.ACCEPT
    assert (result.ok, result.exit_code, result.error) == (True, 0, None)
    assert result.report["path"] == str(raw_image)
    assert result.report["format"] == "raw"
    assert result.report["sandbox"]["rlimits"].startswith("on")
    assert result.findings == result.report["findings"]


def test_undeclared_format_is_reviewed(undeclared: Path) -> None:
    result = workbench.inspect_path(undeclared)
    assert (result.verdict, result.ok, result.exit_code) == (Verdict.REVIEW, False, 10)
    assert "format-undeclared" in finding_ids(result.report)
    declared = workbench.inspect_path(undeclared, declared_format="raw")
    assert "format-undeclared" not in finding_ids(declared.report)
    assert declared.report["declared_format"] == "raw"


def test_backing_file_to_etc_passwd_is_rejected(backed_by_passwd: Path) -> None:
    result = workbench.inspect_path(backed_by_passwd, declared_format="qcow2")
    assert (result.verdict, result.ok, result.exit_code) == (Verdict.REJECT, False, 20)
    assert result.report["backing"]["filename"] == "/etc/passwd"
    assert "backing-file" in {f["id"] for f in result.findings}


@pytest.mark.parametrize("what", ["missing", "directory", "symlink"])
def test_an_image_that_cannot_be_inspected_is_a_failed_result(what: str, tmp_path: Path, raw_image: Path) -> None:
    path = tmp_path / what
    if what == "directory":
        path.mkdir()
    elif what == "symlink":
        path.symlink_to(raw_image)
    result = workbench.inspect_path(path)
    assert (result.verdict, result.ok, result.exit_code) == (Verdict.FAILED, False, 30)
    assert result.error and result.report["error"] == result.error
    assert result.findings == []


def test_a_symlink_is_inspected_when_asked(tmp_path: Path, raw_image: Path) -> None:
    link = tmp_path / "link.raw"
    link.symlink_to(raw_image)
    assert workbench.inspect_path(link, follow_symlinks=True).verdict is Verdict.ACCEPT


def test_policy_arguments_and_the_settings_file(raw_image: Path, config_home: Path) -> None:
    limited = workbench.inspect_path(raw_image, max_virtual_size="32K")
    assert limited.verdict is Verdict.REJECT
    assert "virtual-size-limit" in finding_ids(limited.report)
    assert workbench.inspect_path(raw_image, max_virtual_size=65536).verdict is Verdict.ACCEPT
    only_qcow2 = Policy(allowed_formats=["qcow2"])
    assert "format-not-allowed" in finding_ids(workbench.inspect_path(raw_image, policy=only_qcow2).report)
    assert only_qcow2.max_virtual_size == Policy().max_virtual_size  # the caller's policy is not changed
    (config_home / "workbench").mkdir(parents=True)
    (config_home / "workbench" / "settings.json").write_text(json.dumps({"max_virtual_size": "32K"}))
    assert "virtual-size-limit" in finding_ids(workbench.inspect_path(raw_image).report)


def test_the_sandbox_layers_the_policy_requires_are_enforced(raw_image: Path) -> None:
    result = workbench.inspect_path(raw_image, policy=Policy(required_layers=["no-such-layer"]))
    assert result.verdict is Verdict.FAILED
    assert "no-such-layer" in (result.error or "")


@pytest.mark.parametrize(("image", "declared"), [("backed_by_passwd", "qcow2"), ("undeclared", None)])
def test_report_equals_the_command_lines_json(
    image: str, declared: str | None, config_home: Path, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(image)
    option = ["-f", declared] if declared else []
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    command = [sys.executable, "-m", "workbench", "inspect", "--json", *option, str(path)]
    cli = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    from_cli: dict[str, Any] = json.loads(cli.stdout)
    result = workbench.inspect_path(path, declared_format=declared)
    assert cli.returncode == result.exit_code, cli.stderr
    assert comparable(dict(result.report)) == comparable(from_cli)


def test_async_variant(raw_image: Path, backed_by_passwd: Path) -> None:
    async def both() -> list[workbench.Result]:
        return list(
            await asyncio.gather(
                workbench.inspect_path_async(raw_image), workbench.inspect_path_async(backed_by_passwd)
            )
        )

    assert [r.verdict for r in asyncio.run(both())] == [Verdict.ACCEPT, Verdict.REJECT]


def test_the_blocking_form_refuses_a_running_loop_and_names_the_async_one(raw_image: Path) -> None:
    async def inside() -> None:
        workbench.inspect_path(raw_image)

    with pytest.raises(RuntimeError, match="inspect_path_async"):
        asyncio.run(inside())


def test_threads_each_run_their_own_inspection(raw_image: Path, undeclared: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(lambda p: workbench.inspect_path(p).verdict, [raw_image, undeclared]))
    assert verdicts == [Verdict.ACCEPT, Verdict.REVIEW]


def test_batch_keeps_the_order_of_its_paths(
    raw_image: Path, backed_by_passwd: Path, undeclared: Path, tmp_path: Path
) -> None:
    paths = [backed_by_passwd, tmp_path / "missing", raw_image, undeclared, raw_image]
    expected = [Verdict.REJECT, Verdict.FAILED, Verdict.ACCEPT, Verdict.REVIEW, Verdict.ACCEPT]
    results = workbench.inspect_paths(paths, jobs=2)
    assert [r.report["path"] for r in results] == [str(p) for p in paths]
    assert [r.verdict for r in results] == expected
    assert [r.exit_code for r in results] == [20, 30, 0, 10, 0]
    assert all(r.report["sandbox"]["rlimits"].startswith("on") for r in results if r.error is None)
    from_async = asyncio.run(workbench.inspect_paths_async(iter(paths), max_virtual_size="32K"))
    assert [r.verdict for r in from_async] == [
        Verdict.REJECT,
        Verdict.FAILED,
        Verdict.REJECT,
        Verdict.REVIEW,
        Verdict.REJECT,
    ]
    assert workbench.inspect_paths([]) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"declared_format": "vhd"}, "unknown format 'vhd'; did you mean vpc?"),
        ({"max_virtual_size": "4Q"}, "not a size: '4Q'"),
        ({"max_virtual_size": -1}, "max_virtual_size must be"),
        ({"max_virtual_size": 1.5}, "max_virtual_size must be"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": float("nan")}, "timeout must be a positive number"),
    ],
)
def test_usage_errors_raise_value_error(arguments: dict[str, Any], message: str, raw_image: Path) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        workbench.inspect_path(raw_image, **arguments)
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        workbench.inspect_paths([raw_image], **arguments)


@pytest.mark.parametrize("jobs", [0, -2, 1.5, True])
def test_jobs_must_be_a_positive_whole_number(jobs: Any, raw_image: Path) -> None:
    with pytest.raises(ValueError, match="jobs must be"):
        workbench.inspect_paths([raw_image], jobs=jobs)


def test_import_workbench_stays_cheap_until_an_api_function_is_used(raw_image: Path) -> None:
    code = (
        "import json, sys\n"
        "import workbench\n"
        "heavy = ('asyncio', 'workbench.api', 'workbench.inspector', 'workbench.host.runner', 'PySide6')\n"
        "before = [m for m in heavy if m in sys.modules]\n"
        f"verdict = workbench.inspect_path({str(raw_image)!r}).verdict\n"
        "print(json.dumps([before, [m for m in heavy if m in sys.modules], verdict]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    before, after, verdict = json.loads(out.stdout)
    assert before == []
    assert after == ["asyncio", "workbench.api", "workbench.inspector", "workbench.host.runner"]  # never Qt
    assert verdict == "accept"
    assert workbench.inspect_url is workbench.api.inspect_url  # tests/test_remote_inspect.py runs it


def test_the_upload_hook_of_docs_api_md_works_as_it_says(raw_image: Path, backed_by_passwd: Path) -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    (example,) = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def check_upload" in block]
    hook: dict[str, Any] = {}
    exec(compile(example, "docs/api.md", "exec"), hook)
    assert hook["check_upload"](str(raw_image), "raw")["verdict"] == "accept"
    for path, declared, reason in [
        (backed_by_passwd, "qcow2", "disk image reject: backing-file"),
        (raw_image, "vhd", "unknown disk format: unknown format 'vhd'"),
        (raw_image.parent / "gone", "raw", "the image could not be inspected"),
    ]:
        with pytest.raises(hook["UploadRejected"], match=re.escape(reason)):
            hook["check_upload"](str(path), declared)
