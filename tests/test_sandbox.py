"""Each sandbox layer proven by a child that tries the forbidden thing and fails in that layer's own way.

The escape attempts run in real engine children started through the same path as an inspection; ``layers``
narrows a child to one layer so that each failure is that layer's doing (all layers at once stop most
things in seccomp, which runs first in the kernel).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench import inspector
from workbench.engine.child import landlock, sandbox
from workbench.host import runner as client
from workbench.host import sandbox_check as check
from workbench.policy import policy as policy_mod
from workbench.policy.policy import Policy

LINUX = sys.platform.startswith("linux")
ROOT = os.geteuid() == 0


def attempt(names: list[str], layers: list[str] | None, **args: Any) -> dict[str, dict[str, Any]]:
    outcome, reply = asyncio.run(check.attempt(names, args, client.EngineOptions(timeout=15), layers))
    assert reply is not None, client.exit_reason(outcome.returncode or 0, outcome.err)
    return reply["escapes"]


def exit_of(names: list[str], layers: list[str] | None, cpu_seconds: int | None = None) -> int | None:
    options = client.EngineOptions(timeout=15)
    outcome, _ = asyncio.run(check.attempt(names, {}, options, layers, cpu_seconds))
    return outcome.returncode


def errno_of(outcome: dict[str, Any]) -> str:
    assert outcome["blocked"], outcome
    return outcome["detail"].split(":")[0]


@pytest.fixture
def port() -> Iterator[int]:
    """A listening TCP port on 127.0.0.1: a connect that is not stopped would succeed."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def targets() -> Iterator[dict[str, Any]]:
    """What ``sandbox-check`` listens on: TCP, UDP, Unix sockets at a path and abstract, itself to signal."""
    with check.targets() as args:
        yield args


def test_landlock_alone_refuses_open_create_connect_and_exec(tmp_path: Path, port: int) -> None:
    assert landlock.abi_version() >= 4, "this machine's kernel should have Landlock with TCP rules"
    target = tmp_path / "created"
    outcomes = attempt(["open", "write", "connect", "exec"], ["landlock"], write_path=str(target), port=port)
    assert {name: errno_of(outcome) for name, outcome in outcomes.items()} == dict.fromkeys(outcomes, "EACCES")
    assert not target.exists()


def test_landlock_scopes_refuse_abstract_sockets_and_signals(targets: dict[str, Any]) -> None:
    assert landlock.abi_version() >= 6, "this machine's kernel should have Landlock scopes"
    outcomes = attempt(["abstract", "signal"], ["landlock"], **targets)
    assert {name: errno_of(outcome) for name, outcome in outcomes.items()} == dict.fromkeys(outcomes, "EPERM")


def test_namespaces_alone_hide_every_socket_and_path(targets: dict[str, Any]) -> None:
    outcomes = attempt(["stat", "udp", "unix", "abstract"], ["namespaces"], **targets)
    assert {name: errno_of(outcome) for name, outcome in outcomes.items()} == {
        "stat": "ENOENT",
        "udp": "ENETUNREACH",
        "unix": "ENOENT",
        "abstract": "ECONNREFUSED",  # abstract names belong to the network namespace: the new one has none
    }


def test_descriptor_limit_leaves_no_free_slot(targets: dict[str, Any]) -> None:
    """The fds layer moves the image down next to 0-2 and NOFILE is one above: nothing new can be opened."""
    names = ["open", "connect", "udp", "unix", "abstract", "write", "fds"]
    outcomes = attempt(names, ["fds", "rlimits"], **targets)
    assert outcomes.pop("fds")["fds"] == [0, 1, 2, 3]
    assert {name: errno_of(outcome) for name, outcome in outcomes.items()} == dict.fromkeys(outcomes, "EMFILE")


def test_seccomp_alone_answers_enosys_and_kills_exec(port: int) -> None:
    outcomes = attempt(["open", "connect", "fork"], ["seccomp"], port=port)
    assert {name: errno_of(outcome) for name, outcome in outcomes.items()} == dict.fromkeys(outcomes, "ENOSYS")
    assert exit_of(["exec"], ["seccomp"]) == -signal.SIGSYS


def test_seccomp_refuses_executable_memory() -> None:
    script = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC)"
    rules = "from workbench.engine.child import seccomp_filter as s; s.Filter(s.parse_rules()).load()"
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r}); {rules}; {script}"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30)
    assert "PermissionError: [Errno 13]" in done.stderr


def test_namespaces_alone_show_an_empty_root_and_no_network(port: int) -> None:
    outcomes = attempt(["open", "connect"], ["namespaces"], port=port)
    assert errno_of(outcomes["open"]) == "ENOENT"
    assert errno_of(outcomes["connect"]) == "ENETUNREACH"


def test_rlimits_alone_refuse_memory_and_file_growth(tmp_path: Path) -> None:
    target = tmp_path / "grown"
    outcomes = attempt(["memory", "write"], ["rlimits"], write_path=str(target))
    assert outcomes["memory"]["detail"].startswith("MemoryError")
    assert errno_of(outcomes["write"]) == "EFBIG"
    assert target.stat().st_size == 0


def test_process_limit_refuses_fork_once_unprivileged() -> None:
    """NPROC 0 binds every uid but root, so the child drops root first (as nobody, or as itself)."""
    assert errno_of(attempt(["fork"], ["user", "rlimits"])["fork"]) == "EAGAIN"


def test_busy_loop_is_stopped_at_the_cpu_limit() -> None:
    assert exit_of(["cpu"], ["rlimits"], cpu_seconds=1) == -signal.SIGXCPU


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def test_held_child_shows_its_layers_in_proc() -> None:
    """NoNewPrivs 1, Seccomp 2, nobody without groups, not dumpable, and only its own descriptors."""
    hold_r, hold_w = os.pipe()
    leaked = os.open(os.devnull, os.O_RDONLY)  # inherited by mistake: the child must close it
    request = {"fd": hold_r, "path": "(hold)", "escapes": ["hold"]}
    proc = subprocess.Popen(client.engine_command(), **client.spawn_options((hold_r, leaked)))
    os.close(leaked)
    os.close(hold_r)
    try:
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
        layers = json.loads(proc.stdout.readline())["sandbox"]  # sent before the image is touched
        assert proc.stdout.readline() == b"ready\n"
        status = _status(proc.pid)
        fds = sorted(int(name) for name in os.listdir(f"/proc/{proc.pid}/fd"))
        owner = os.stat(f"/proc/{proc.pid}/status").st_uid
    finally:
        os.close(hold_w)
        reply = json.loads(proc.stdout.read())
        proc.wait(15)
    assert reply["ok"] is True
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    assert fds == [0, 1, 2, 3]  # the image moved down to 3: no free slot below NOFILE
    assert f"closed unexpected [{leaked}]" in layers["fds"]
    if ROOT:
        assert status["Uid"].split() == ["65534"] * 4
        assert status["Gid"].split() == ["65534"] * 4
        assert status["Groups"] == ""
        assert owner == 0  # not dumpable: /proc/PID/status belongs to root, not to the uid


FDS_WITHOUT_LISTING = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from workbench.engine.child import sandbox
sandbox._listed_fds = lambda: None  # as in the fork server's empty root: no /proc, no /dev/fd
if sys.argv[2] != "close-range":  # ctypes' close_range is not there: "low-limit" must close without it
    sandbox._close_range = lambda: None
if sys.argv[2] == "low-limit":  # the fork server's children: a hard descriptor limit of ZYGOTE_NOFILE
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (sandbox.ZYGOTE_NOFILE, sandbox.ZYGOTE_NOFILE))
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 7)
high = 200 if sys.argv[2] == "low-limit" else 300  # leaked, high: above what a probe would reach if lowered
os.dup2(null, high)
image = os.dup2(null, 9)
os.close(null)
os.close(0)
plan = sandbox.Plan({1, 2, image}, ("fds",))
status = sandbox.harden(plan)["fds"]
print(json.dumps({"status": status, "open": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))[:-1]}))
"""


@pytest.mark.parametrize("close_range", ["close-range", "no-close-range", "low-limit"])
def test_fds_without_a_listing_keep_only_the_image_and_pipes(close_range: str) -> None:
    """Where no listing can be read, the image moves down to 0 and one close_range closes everything above;
    without close_range the layer probes each number, closes and names what it found; under a hard limit as low
    as the fork server's, ``os.closerange`` up to it closes everything without ``ctypes``."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", FDS_WITHOUT_LISTING, str(Path(__file__).parents[1]), close_range],
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = json.loads(done.stdout)
    assert out["open"] == [0, 1, 2]
    if close_range != "no-close-range":
        assert out["status"] == "on (only 0, 1, 2; moved 9 to 0)"
    else:
        assert out["status"] == "on (kept 0, 1, 2; moved 9 to 0; closed unexpected [7, 300])"


def test_every_report_carries_its_sandbox(raw_image: Path) -> None:
    report = asyncio.run(inspector.inspect(inspector.Request(str(raw_image))))
    assert report["verdict"] != "failed", report
    assert set(report["sandbox"]) == set(sandbox.layer_order())
    off = {name: status for name, status in report["sandbox"].items() if not sandbox.is_on(status)}
    assert off == {}


def test_missing_required_layer_refuses_the_inspection(raw_image: Path) -> None:
    policy = Policy(required_layers=["rlimits", "teleportation|levitation"])
    report = asyncio.run(inspector.inspect(inspector.Request(str(raw_image), policy=policy)))
    assert report["verdict"] == "failed"
    assert report["error"] == "sandbox layers required but not on: teleportation|levitation"
    assert sandbox.is_on(report["sandbox"]["rlimits"])


def test_default_policy_requires_a_network_and_a_filesystem_barrier() -> None:
    assert policy_mod.default_required_layers() == [
        "rlimits",
        "no_new_privs",
        "namespaces|seccomp",
        "landlock|namespaces|seccomp",
        "user",
    ]
    assert (
        sandbox.missing_required({"rlimits": "on", "no_new_privs": "on", "seccomp": "on (x)"}, ["landlock|seccomp"])
        == []
    )
    assert sandbox.missing_required({"landlock": "failed: x", "seccomp": "unavailable: y"}, ["landlock|seccomp"]) == [
        "landlock|seccomp"
    ]


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_other_systems_report_linux_layers_unavailable(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    if platform == "win32":
        monkeypatch.delattr(os, "setresuid")
        monkeypatch.setattr(sandbox, "_has_resource", lambda: False)
    in_process_safe = ("user", "rlimits") if platform == "win32" else ()  # reported unavailable, not applied
    layers = tuple(name for name in sandbox.ORDER if name in sandbox.LINUX_ONLY or name in in_process_safe)
    status = sandbox.harden(sandbox.Plan(set(), layers=layers))
    assert all(status[name].startswith("unavailable") for name in sandbox.LINUX_ONLY), status
    if platform == "win32":
        assert status["user"].startswith("unavailable") and status["rlimits"].startswith("unavailable")
    assert policy_mod.default_required_layers() == {"win32": ["job"], "darwin": ["rlimits"]}[platform]


def test_sandbox_check_shows_every_layer_on_and_every_attempt_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli.main import main

    assert main(["sandbox-check", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    attempts = {"open", "stat", "connect", "udp", "unix", "abstract", "signal", "write", "fork", "exec", "memory"}
    for child in (result, result["zygote"]):  # a fresh child, and one forked by the fork server
        assert all(sandbox.is_on(status) for status in child["layers"].values()), child["layers"]
        assert set(child["probes"]) == attempts | {"cpu"}
        assert child["escaped"] == [] and child["missing"] == []
        assert "killed by the sandbox" in child["probes"]["exec"]["detail"]
        assert child["probes"]["cpu"]["detail"] == "stopped at its CPU time limit (SIGXCPU)"
    assert "inherited from the zygote" in result["zygote"]["layers"]["landlock"]
    assert result["escaped"] == [] and result["missing"] == [] and result["ok"]


def test_sandbox_check_fails_when_a_required_layer_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli.main import main
    from workbench.policy import settings

    real = settings.load

    def load() -> Any:
        loaded = real()
        loaded.required_layers = ["rlimits", "teleportation"]
        return loaded

    monkeypatch.setattr(settings, "load", load)
    assert main(["sandbox-check"]) == 1
    assert "REQUIRED LAYERS MISSING: teleportation" in capsys.readouterr().out


@pytest.mark.qemu
def test_every_format_parses_under_the_full_sandbox(qemu_create: Any) -> None:
    """The allowlist and the preloaded modules suffice for every parser, fresh or forked by the zygote."""
    images = {
        fmt: qemu_create(f"img.{fmt}", fmt, "16M")
        for fmt in ("qcow2", "qcow", "qed", "vmdk", "vpc", "vhdx", "vdi", "parallels")
    }
    images["luks"] = qemu_create(
        "img.luks", "luks", "16M", "--object", "secret,id=s0,data=pw", "-o", "key-secret=s0,iter-time=10"
    )

    async def run(options: client.EngineOptions, runner: client.Runner = client.FRESH) -> dict[str, dict[str, Any]]:
        inspections = (client.inspect_path(str(path), fmt, options, runner=runner) for fmt, path in images.items())
        reports = await asyncio.gather(*inspections)
        return dict(zip(images, reports, strict=True))

    async def both() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        async with client.ForkServerRunner() as zygote:
            return await run(client.EngineOptions()), await run(client.EngineOptions(), zygote)

    fresh, forked = asyncio.run(both())
    for reports in (fresh, forked):
        for fmt, report in reports.items():
            assert report["format"] == fmt
            assert not [f for f in report["findings"] if "internal parser error" in f["detail"]], fmt
            assert sandbox.is_on(report["sandbox"]["seccomp"]), report["sandbox"]
    for fmt, report in forked.items():  # a forked child (of a warmed-up zygote) reports exactly what a fresh one does
        assert {**report, "elapsed_ms": 0, "sandbox": {}} == {**fresh[fmt], "elapsed_ms": 0, "sandbox": {}}, fmt


@pytest.mark.qemu
def test_no_process_touches_the_files_an_image_names(tmp_path: Path, qemu_create: Any) -> None:
    """``strace -f`` of a whole ``workbench inspect``: the backing file, data file and extent are never opened,
    stat-ed or resolved by the parent or the child."""
    assert shutil.which("strace"), "this test needs strace (apt-get install strace)"
    secrets = [tmp_path / "secret-backing.raw", tmp_path / "secret-data.raw", tmp_path / "secret-extent.raw"]
    for secret in secrets:
        secret.write_bytes(b"\0" * 65536)
    images = [
        qemu_create("child.qcow2", "qcow2", "1G", "-b", str(secrets[0]), "-F", "raw", "-u"),
        qemu_create("data.qcow2", "qcow2", "64K", "-o", f"data_file={secrets[1]},data_file_raw=on"),
    ]
    descriptor = tmp_path / "flat.vmdk"
    qemu_create("flat.vmdk", "vmdk", "64K", "-o", "subformat=monolithicFlat")
    text = descriptor.read_text().replace('"flat-flat.vmdk"', f'"{secrets[2]}"')
    descriptor.write_text(text)
    images.append(descriptor)
    log = tmp_path / "strace.log"
    command = [sys.executable, "-m", "workbench", "inspect", "--json", *map(str, images)]
    trace = ["strace", "-f", "-qq", "-s", "4096", "-e", "trace=%file,%process", "-o", str(log)]
    done = subprocess.run(trace + command, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    backing, data, flat = json.loads(done.stdout)
    assert backing["backing"]["filename"] == str(secrets[0]), done.stderr  # the engine did read the names
    assert data["data_file"]["filename"] == str(secrets[1])
    assert [extent["filename"] for extent in flat["extents"]] == [str(secrets[2])]
    traced = log.read_text()
    assert str(images[0]) in traced  # the trace does see the parent opening the image itself
    assert len(set(re.findall(r"^(\d+) +execve\(", traced, re.M))) >= 2  # and the engine children
    for secret in secrets:
        assert str(secret) not in traced
        assert secret.name not in traced


@pytest.mark.skipif(not LINUX, reason="seccomp is Linux only")
def test_an_exported_filter_installs_what_libseccomp_loads() -> None:
    """The fork server's children install the engine child's filter from the BPF libseccomp exported once: the
    same status line, a forbidden call still fails (ENOSYS), a write outside the allowed descriptors too, and
    the kernel counts the filter."""
    from workbench.engine.child import seccomp_filter

    result_r, result_w = os.pipe()
    hold_r, hold_w = os.pipe()
    built = seccomp_filter.Filter(seccomp_filter.parse_rules(write_fds=(result_w,)))
    program = seccomp_filter.Program(built)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child
        try:
            status = program.load()
            outcomes = []
            for call in (lambda: os.open("/", os.O_RDONLY), lambda: os.write(hold_w, b"x")):
                try:
                    call()
                    outcomes.append("done")
                except OSError as exc:
                    outcomes.append(errno.errorcode[exc.errno])
            os.close(hold_w)  # so that the parent's close ends the read below
            os.write(result_w, json.dumps([status, outcomes]).encode())
            os.read(hold_r, 1)
        finally:
            os._exit(0)
    os.close(result_w)
    try:
        status, outcomes = json.loads(os.read(result_r, 4096))
        filters = _status(pid).get("Seccomp_filters")
    finally:
        os.close(hold_w)
        os.close(hold_r)
        os.close(result_r)
        os.waitpid(pid, 0)
    assert status == f"on (allowlist of {len(built.allowed)} system calls; others ENOSYS, 24 kill)"
    assert outcomes == ["ENOSYS", "ENOSYS"]
    assert filters == "1"


def test_the_zygote_warms_up_on_images_it_makes() -> None:
    """The fork server inspects images it makes itself before forking (zeros, and small qcow2, VMDK and VHDX
    headers): each reads as its format without a parser error, and what their first inspection builds (the
    VMDK patterns in ``re``'s cache, the CRC-32C tables) is then built for every child."""
    import re

    from workbench.engine import checksums, report
    from workbench.engine.child import zygote
    from workbench.engine.formats import _vmdk_text

    checksums._crc32c_table.cache_clear()
    checksums._zero_run_tables.cache_clear()
    re.purge()
    images = zygote._warm_up_images()
    assert [declared for _, declared in images] == [None, "qcow2", "vmdk", "vhdx"]
    for image, declared in images:
        warmed = report.build(image, "(warm-up)", declared, include_bytes=False)
        assert warmed["format"] == (declared or "raw")
        assert warmed["bytes_read"] > 0
        assert not [f for f in warmed["findings"] if "internal parser error" in f["detail"]], warmed["findings"]
    qcow2 = report.build(images[1][0], "(warm-up)", "qcow2", include_bytes=False)
    assert not [f for f in qcow2["findings"] if f["id"] == "malformed"], qcow2["findings"]  # a header qemu writes
    assert checksums._crc32c_table.cache_info().currsize == 1
    assert checksums._zero_run_tables.cache_info().currsize == 1
    assert any(key[1] == _vmdk_text._TEXT_LINE for key in re._cache)  # type: ignore[attr-defined]
