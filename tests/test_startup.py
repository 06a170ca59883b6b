"""Start-up discipline: what ``--version`` and ``--help`` import, the lazy format names, and import-time
tables computed a cheaper way that must give the same values. Timings live in benchmarks/startup.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli.main import main
from workbench.engine import checksums
from workbench.engine.child import worker
from workbench.engine.formats import KNOWN_NAMES
from workbench.policy.formats import DECLARABLE

ROOT = Path(__file__).resolve().parents[1]
# Modules an inspection needs and help does not: the engine's parsers, the child's client, the settings.
HEAVY = (
    "asyncio",
    "dataclasses",
    "inspect",
    "platformdirs",
    "logging",
    "defusedxml",
    "workbench.engine.formats",
    "workbench.host.runner",
    "workbench.policy.settings",
    "workbench.policy.policy",
    "workbench.inspector",
)


def modules_after(*args: str) -> tuple[str, list[str]]:
    """Run ``workbench ARGS`` in a fresh interpreter; its standard output and the modules it imported."""
    code = (
        "import atexit, contextlib, io, json, sys\n"
        "out = io.StringIO()\n"
        "def report():\n"  # at the exit, however it exits (inspect skips the interpreter's teardown)
        "    print(json.dumps([out.getvalue(), sorted(sys.modules)]), file=sys.__stdout__, flush=True)\n"
        "atexit.register(report)\n"
        f"sys.argv = ['workbench', *{list(args)!r}]\n"
        "from workbench.__main__ import main\n"
        "with contextlib.redirect_stdout(out):\n"
        "    main()\n"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-config"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    out, modules = json.loads(result.stdout)
    return out, modules


@pytest.mark.parametrize("args", [("--version",), ("--help",)])
def test_version_and_help_import_nothing_an_inspection_needs(args: tuple[str, ...]) -> None:
    out, modules = modules_after(*args)
    assert out.startswith("workbench") or "usage: workbench" in out
    assert [name for name in HEAVY if name in modules] == []


def test_version_fast_path_prints_what_the_parser_prints(capsys: pytest.CaptureFixture[str]) -> None:
    fast, modules = modules_after("--version")
    assert "workbench.cli.main" not in modules  # answered before the command line is built
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == fast


def test_help_lists_every_subcommand_and_inspect_help_every_format() -> None:
    top, _ = modules_after("--help")
    for command in ("audit", "demo", "inspect", "sandbox-check", "triage"):
        assert command in top
    sub, modules = modules_after("inspect", "--help")
    assert ", ".join(KNOWN_NAMES) in " ".join(sub.split())
    assert "workbench.engine.formats" not in modules


def test_declarable_names_are_those_the_format_modules_declare() -> None:
    assert DECLARABLE == KNOWN_NAMES


def test_unknown_declared_format_is_a_usage_error_naming_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["inspect", "-f", "qcow3", "x.img"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unknown format 'qcow3'; did you mean qcow2?" in err
    assert ", ".join(KNOWN_NAMES) in err


def test_crc32c_zero_run_tables_equal_running_every_register_through_the_zeros() -> None:
    """The tables are built from 32 one-bit registers by linearity; here each entry the direct way."""
    for table, shift in zip(checksums._zero_run_tables(), (0, 8, 16, 24), strict=True):
        assert list(table) == [checksums._through_zeros(value << shift) for value in range(256)]


def test_crc32c_known_answer_across_zero_runs() -> None:
    assert checksums.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    data = b"\x01" + bytes(200) + b"\xff" * 3 + bytes(128)
    crc = 0xFFFFFFFF  # byte by byte, no zero-run shortcut
    for byte in data:
        crc = checksums._crc32c_table()[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    assert checksums.crc32c(data) == crc ^ 0xFFFFFFFF


def test_uuid_text_is_what_the_uuid_module_prints() -> None:
    import uuid

    from workbench.engine.fields import uuid_text

    for raw in (bytes(16), bytes(range(16)), bytes(range(240, 256)), os.urandom(16)):
        assert uuid_text(raw) == str(uuid.UUID(bytes=raw))
        assert uuid_text(raw, mixed_endian=True) == str(uuid.UUID(bytes_le=raw))


def test_subcommands_listed_from_the_folder_are_those_pkgutil_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen program lists them with pkgutil (from its archive); both ways must find the same modules."""
    from workbench.cli import commands

    from_folder = sorted(commands._module_names())
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert sorted(commands._module_names()) == from_folder
    assert {"inspect", "triage", "_common"} <= set(from_folder)


# What a single local inspection does without: the event loop and what it brings, and the remote clients.
NOT_FOR_ONE_FILE = ("asyncio", "ssl", "socket", "concurrent.futures", "http.client", "workbench.host.sources")


def test_inspect_of_one_local_file_imports_no_event_loop(raw_image: Path) -> None:
    out, modules = modules_after("inspect", "--json", "-f", "raw", str(raw_image))
    report = json.loads(out)
    assert (report["verdict"], report["format"]) == ("accept", "raw")
    assert report["sandbox"]["seccomp"].startswith("on")  # the same sandboxed child, every layer
    assert "workbench.host.direct" in modules
    assert [name for name in NOT_FOR_ONE_FILE if name in modules] == []
    assert "workbench.engine.formats" not in modules  # the parent never imports the parsers


def test_inspect_of_two_files_still_uses_the_fork_server(raw_image: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.raw"
    other.write_bytes(bytes(4096))
    out, modules = modules_after("inspect", "--json", str(raw_image), str(other))
    assert [report["verdict"] for report in json.loads(out)] == ["accept", "accept"]
    assert {"asyncio", "workbench.host.runner"} <= set(modules)
    assert "workbench.host.direct" not in modules


# What a triage of local folders does without: the remote sources' clients and their modules (``ssl`` comes
# with asyncio's event loop anyway).
REMOTE_CLIENTS = (
    "http.client",
    "workbench.host.sources.base",
    "workbench.host.sources.http",
    "workbench.host.sources.s3",
    "workbench.host.sources.sharding",
    "workbench.host.remote",
)


def test_triage_of_local_folders_imports_no_remote_client(raw_image: Path) -> None:
    out, modules = modules_after("triage", str(raw_image.parent), "-q")
    assert "1 file(s)" in out and "accept 1" in out
    assert [name for name in REMOTE_CLIENTS if name in modules] == []


# What ``inspect FILE`` has not imported when it starts its engine child (cli/early.py): the command line, the
# settings and everything after them load while the child starts.
NOT_BEFORE_THE_SPAWN = (
    *NOT_FOR_ONE_FILE,
    "argparse",
    "dataclasses",
    "inspect",
    "json",
    "logging",
    "pathlib",
    "platformdirs",
    "selectors",
    "shutil",
    "subprocess",  # the child is started by os.posix_spawn (host/spawn.py)
    "tempfile",
    "threading",  # host.open's calls run in threads of _thread
    "typing",
    "workbench.cli.main",
    "workbench.engine",
    "workbench.host.protocol",
    "workbench.host.walked",
    "workbench.inspector",
    "workbench.policy",
    "workbench.schema",
)
# What it has not imported when it sends the request: what checks and judges the reply loads while the child works.
NOT_BEFORE_THE_REQUEST = (
    *NOT_FOR_ONE_FILE,
    "ast",
    "dataclasses",  # the request, policy, settings and options are records.Record
    "inspect",
    "pathlib",  # nor platformdirs, where settings.config_folder computes its answer
    "platformdirs",
    "shutil",
    "signal",  # named only for a child that ended badly
    "subprocess",
    "tempfile",
    "typing",  # the modules of inspect's path name it for the type checker only
    "workbench.chain",  # imported for --chain only
    "workbench.engine.child.sandbox",
    "workbench.engine.findings",
    "workbench.host.validate",
    "workbench.render.text",
)


def modules_at_spawn_and_request(*args: str) -> tuple[str, list[str], list[str], list[str]]:
    """Run ``workbench ARGS`` as the installed launcher does; its output and the modules it held when it started
    the engine child (the ``os.posix_spawn`` or ``subprocess.Popen`` audit event), when it wrote the child's
    request, and at its exit."""
    code = (
        "import atexit, contextlib, io, sys\n"
        "ready = set(sys.modules)\n"  # what the interpreter's site (an editable install's finder) imported
        "loaded = lambda: sorted(set(sys.modules) - ready)\n"
        "seen = {}\n"
        "out = io.StringIO()\n"
        "def report():\n"  # at the exit, however it exits (inspect skips the interpreter's teardown)
        "    at_exit = loaded()\n"
        "    import json\n"  # not before
        "    seen_all = [out.getvalue(), seen['spawn'], seen['request'], at_exit]\n"
        "    print(json.dumps(seen_all), file=sys.__stdout__, flush=True)\n"
        "atexit.register(report)\n"
        "spawns = ('os.posix_spawn', 'subprocess.Popen')\n"
        "sys.addaudithook(lambda e, _: e in spawns and seen.setdefault('spawn', loaded()))\n"
        f"sys.argv = ['workbench', *{list(args)!r}]\n"
        "from workbench.host import direct\n"
        "inspect = direct.Child.inspect\n"
        "def inspecting(child, declared, options, meanwhile):\n"  # meanwhile runs right after the request is sent
        "    def first():\n"
        "        seen.setdefault('request', loaded())\n"
        "        meanwhile()\n"
        "    return inspect(child, declared, options, first)\n"
        "direct.Child.inspect = inspecting\n"
        "from workbench.__main__ import main\n"
        "with contextlib.redirect_stdout(out):\n"
        "    main()\n"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-config"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    out, spawn, request, at_exit = json.loads(result.stdout)
    return out, spawn, request, at_exit


def test_inspect_of_one_file_starts_its_child_before_the_command_line(raw_image: Path) -> None:
    out, at_spawn, at_request, at_exit = modules_at_spawn_and_request("inspect", "--json", "-f", "raw", str(raw_image))
    report = json.loads(out)
    assert (report["verdict"], report["format"]) == ("accept", "raw")
    assert report["sandbox"]["seccomp"].startswith("on")  # the same sandboxed child, every layer
    assert "workbench.cli.early" in at_spawn
    assert [name for name in NOT_BEFORE_THE_SPAWN if name in at_spawn] == []
    assert [name for name in NOT_BEFORE_THE_REQUEST if name in at_request] == []
    # The layer line is judged by the layer names alone (engine.child.layers), never the hardening code.
    assert [name for name in ("ctypes", "workbench.engine.child.sandbox") if name in at_exit] == []
    assert "workbench.engine.child.layers" in at_exit
    assert "workbench.policy.settings" in at_request  # the request carries the settings' required layers


def test_inspect_exits_without_the_teardown_with_its_output_and_status(raw_image: Path, tmp_path: Path) -> None:
    """``__main__.exit_now``: the whole report reaches the pipe, the exit status is the verdict's."""
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-config"}
    run = [sys.executable, "-m", "workbench", "inspect", "--json"]
    accepted = subprocess.run([*run, str(raw_image)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert (accepted.returncode, json.loads(accepted.stdout)["verdict"]) == (0, "accept")
    missing = subprocess.run([*run, str(tmp_path / "none")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert (missing.returncode, json.loads(missing.stdout)["error"]) == (30, "no such file")


@pytest.mark.parametrize(
    ("args", "target"),
    [
        (["disk.qcow2"], ("disk.qcow2", False)),
        (["--json", "-f", "qcow2", "disk.qcow2", "-v"], ("disk.qcow2", False)),
        (["--declared-format", "raw", "--follow-symlinks", "--guest", "x"], ("x", True)),
        (["a", "b"], None),  # several files: the fork server
        (["--chain", "disk"], None),
        (["--deep", "disk"], None),
        (["--timeout", "5", "disk"], None),  # the open's own timeout would differ
        (["--js", "disk"], None),  # an abbreviation: only the parser knows what it means
        (["-vf", "raw", "disk"], None),
        (["--", "-disk"], None),
        (["-f"], None),
        (["s3://bucket/disk.qcow2"], None),
        ([], None),
    ],
)
def test_the_early_child_is_started_only_for_the_plainest_form(args: list[str], target: object) -> None:
    from workbench.cli.early import plain_target

    assert plain_target(args) == target


@pytest.mark.parametrize("columns", [None, "100", "0", "-3", "wide"])
def test_terminal_columns_are_what_shutil_says(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    import shutil

    from workbench.cli.main import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns


def test_help_does_not_import_shutil() -> None:
    out, modules = modules_after("inspect", "--help")
    assert "usage: workbench inspect" in out
    assert "shutil" not in modules


def test_subcommand_modules_are_named_as_their_commands() -> None:
    """The command line registers only the named subcommand, found by its name without importing the others."""
    from workbench.cli import commands

    names = commands.command_names()
    assert {"inspect", "triage", "sandbox-check"} <= set(names)
    assert [commands.load(name).NAME for name in names] == names


# What the engine child imports only when its request asks for it (before hardening: see worker.preload).
CHILD_ON_REQUEST = (
    "socket",
    "traceback",
    "workbench.engine.child.escapes",
    "workbench.engine.deep",
    "workbench.engine.guest",
    "workbench.engine.mapping",
)


def child_modules(request: dict[str, object]) -> list[str]:
    """The modules an isolated interpreter holds after importing the worker and preloading for ``request``."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from workbench.engine.child import worker\n"
        f"worker.preload({request!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(result.stdout))


def test_engine_child_imports_the_guest_deep_and_escape_code_only_when_asked() -> None:
    assert [name for name in CHILD_ON_REQUEST if name in child_modules({"fd": 3})] == []
    assert set(CHILD_ON_REQUEST) - {"traceback"} <= set(child_modules(worker.EVERYTHING))
    guest = child_modules({"fd": 3, "guest": True})
    assert {"workbench.engine.guest", "workbench.engine.mapping"} <= set(guest)
    assert "workbench.engine.deep" not in guest


def test_parser_error_names_the_innermost_frame_as_traceback_does() -> None:
    import traceback

    from workbench.engine.report import _raised_at

    def inner() -> None:
        raise ValueError("boom")

    try:
        inner()
    except ValueError as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        assert _raised_at(exc) == f"{os.path.basename(frame.filename)}:{frame.lineno}"


# What the window's first frame does without: the dialogs, the triage table, the audit, the demo, the parsers.
NOT_FOR_THE_FIRST_FRAME = (
    "uuid",
    "workbench.audit.report",
    "workbench.demo.images",
    "workbench.engine.formats",
    "workbench.ui.settings_dialog",
    "workbench.ui.shortcuts_dialog",
    "workbench.ui.triage_window",
)


def test_the_main_window_module_imports_only_what_the_first_frame_needs() -> None:
    code = "import json, sys\nimport workbench.ui.main_window\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    modules = json.loads(result.stdout)
    assert "workbench.ui.fields_page" in modules
    assert [name for name in NOT_FOR_THE_FIRST_FRAME if name in modules] == []


# ---- The engine child's own start-up (issue 19, fourth pass): what importing the worker does without. ----
# (Parent-side start-up tests are above; this block is the engine child's.)
NOT_IN_THE_CHILD = (
    "dataclasses",
    "inspect",
    "typing",
    "hashlib",
    "_hashlib",
    "pkgutil",
    "importlib",
    "datetime",
    "workbench.engine.child.winjob",  # Windows only, loaded while hardening there
)


def test_engine_child_imports_no_dataclasses_typing_hashlib_or_pkgutil() -> None:
    modules = child_modules({"fd": 3})
    assert "workbench.engine.formats.qcow" in modules  # every parser is there: the child probes after hardening
    assert [name for name in NOT_IN_THE_CHILD if name in modules] == []


def test_format_modules_listed_are_the_folders_modules() -> None:
    import pkgutil

    from workbench.engine import formats

    in_folder = sorted(m.name for m in pkgutil.iter_modules(formats.__path__) if not m.name.startswith("_"))
    assert [module.__name__.rsplit(".", 1)[1] for module in formats.MODULES] == in_folder
    assert [fmt.module.rsplit(".", 1)[1] for fmt in formats.FORMATS] == in_folder


def test_luks2_checksums_from_the_builtin_modules_equal_hashlib() -> None:
    import hashlib

    from workbench.engine.formats.luks import CHECKSUMS

    data = os.urandom(4096)
    assert sorted(CHECKSUMS) == ["sha1", "sha224", "sha256", "sha384", "sha512"]
    for name, digest in CHECKSUMS.items():
        assert digest(data).digest() == hashlib.new(name, data).digest()


def test_records_compare_and_show_their_values_as_dataclasses_did() -> None:
    from workbench.engine.fields import Field
    from workbench.engine.findings import CRITICAL, make

    assert Field("a", 0, 1) == Field("a", 0, 1, None, "", [])
    assert Field("a", 0, 1) != Field("a", 0, 2)
    assert Field("a", 0, 1).children is not Field("a", 0, 1).children  # no shared default list
    finding = make("backing-file", "x", 4)
    assert repr(finding) == f"Finding(id='backing-file', detail='x', severity={CRITICAL!r}, offset=4, check=None)"


def test_header_timestamps_are_what_datetime_prints() -> None:
    """qcow2 snapshot dates (32-bit seconds since 1970) and VHD timestamps (32-bit seconds since 2000)."""
    from datetime import UTC, datetime, timedelta

    from workbench.engine.fields import LAST_SECOND, utc_text
    from workbench.engine.formats import vpc

    edges = [0, 1, 2**31 - 1, 2**31, 2**32 - 1, vpc.EPOCH + 2**32 - 1, LAST_SECOND - 1]
    for seconds in edges + [int.from_bytes(os.urandom(4), "little") for _ in range(2000)]:
        assert utc_text(seconds) == datetime.fromtimestamp(seconds, UTC).isoformat()
    assert vpc._time(2**32 - 1) == (datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=2**32 - 1)).isoformat()
    for outside in (-1, LAST_SECOND):
        with pytest.raises(ValueError):
            utc_text(outside)


def test_fresh_child_leaves_with_its_exit_code_after_its_reply(raw_image: Path) -> None:
    """The child ends with os._exit after replying (no interpreter teardown): the code and reply still arrive."""
    from workbench.host.protocol import engine_command

    bad = subprocess.run(engine_command(), input=b"not json\n", capture_output=True, env={}, cwd="/")
    assert bad.returncode == 2
    assert json.loads(bad.stdout.splitlines()[-1])["ok"] is False
    fd = os.open(raw_image, os.O_RDONLY)
    try:
        request = json.dumps({"fd": fd, "path": str(raw_image), "declared_format": "raw"}).encode() + b"\n"
        good = subprocess.run(engine_command(), input=request, capture_output=True, env={}, cwd="/", pass_fds=(fd,))
    finally:
        os.close(fd)
    assert good.returncode == 0
    reply = json.loads(good.stdout.splitlines()[-1])
    assert reply["ok"] is True and reply["report"]["format"] == "raw"
    assert good.stderr == b""


@pytest.mark.parametrize(
    "env",
    [
        {"HOME": "/home/someone"},
        {"HOME": "/home/someone/"},
        {"HOME": "/"},
        {"HOME": "/home/someone", "XDG_CONFIG_HOME": "/etc/conf"},
        {"HOME": "/home/someone", "XDG_CONFIG_HOME": "/etc/conf/"},
        {"HOME": "/home/someone", "XDG_CONFIG_HOME": ""},
        {"HOME": "/home/someone", "XDG_CONFIG_HOME": "  "},
        {"HOME": "/home/someone", "XDG_CONFIG_HOME": "relative/conf"},
        {"HOME": "relative", "XDG_CONFIG_HOME": "/etc/conf"},
        {"HOME": "relative"},
        {"HOME": ""},
        {"XDG_CONFIG_HOME": "/etc/conf"},
        {},
    ],
)
def test_the_settings_folder_is_platformdirs_answer(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """``settings.config_folder`` (no platformdirs where Linux's rule is plain) against platformdirs itself."""
    import platformdirs

    from workbench.policy import settings

    for name in ("HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        expected: object = platformdirs.user_config_dir(settings.APP, appauthor=False)
    except RuntimeError as exc:  # no home directory to be found: the same error
        expected = type(exc)
    try:
        got: object = settings.config_folder()
    except RuntimeError as exc:
        got = type(exc)
    assert got == expected
    assert str(settings.config_dir()) == expected or got is RuntimeError


def test_the_parents_records_compare_print_and_copy_as_dataclasses_did() -> None:
    from workbench import inspector, records
    from workbench.host.protocol import EngineOptions
    from workbench.policy.policy import Policy, default_required_layers
    from workbench.policy.settings import Settings

    request = inspector.Request("a.qcow2", "qcow2", policy=Policy(1 << 30))
    assert request.policy.required_layers == default_required_layers()
    copied = records.replace(request, path="b.qcow2", walked=None)
    assert (copied.path, copied.declared, copied.policy) == ("b.qcow2", "qcow2", request.policy)
    assert copied.policy is request.policy and request.path == "a.qcow2"  # shallow, as dataclasses.replace
    assert records.replace(copied, path="a.qcow2") == request != copied
    shown = "Policy(max_virtual_size=1, allowed_formats=['raw'], required_layers=['user'])"
    assert repr(Policy(1, ["raw"], ["user"])) == shown
    assert EngineOptions().require_layers == [] and EngineOptions(timeout=2) != EngineOptions()
    assert Settings().as_dict()["recent_files"] == [] and list(Settings().as_dict()) == list(Settings.__slots__)
    # default lists are fresh per record, as ``field(default_factory=...)`` made them
    assert inspector.Request("x").policy.required_layers is not inspector.Request("x").policy.required_layers
    assert EngineOptions().require_layers is not EngineOptions().require_layers
    assert Settings().recent_files is not Settings().recent_files
    with pytest.raises(TypeError, match="no field colour"):
        records.replace(Settings(), colour="blue")


def test_inspect_says_the_chains_default_depth_without_importing_the_chain() -> None:
    from workbench import chain
    from workbench.cli.commands import inspect

    assert inspect.MAX_DEPTH == chain.DEFAULT_MAX_DEPTH
