"""Start-up and a single inspection, whole processes, side by side with ``qemu-img info`` in one run.

Each command runs in interleaved rounds (so that a busy machine slows them all alike); the table gives
the median wall time of each, its goal, and ``workbench inspect`` against ``qemu-img info`` on the same
file. Then the engine child alone (spawn to reply, from a running parent), split into interpreter start,
imports, hardening and parse; what a precompiled seccomp BPF program would save; and the top of
``python -X importtime`` for the parent CLI and for the engine child.

The parent runs as an installed package runs: from a throwaway virtual environment (``venv --without-pip``)
whose ``.pth`` names this tree and the running interpreter's site-packages (no editable install's import
finder, which costs ~12 ms a start), through a ``workbench`` launcher like the console script an install
writes; bytecode is compiled first and the commands run without ``PYTHONDONTWRITEBYTECODE`` (pip compiles
it; a checkout run with that variable set compiles every workbench module of the parent on every start).
The timeline of one ``inspect`` (medians, from just before the benchmark started the parent): when its engine
child was started (the ``os.posix_spawn`` or ``subprocess.Popen`` audit event), its request written (the
``meanwhile`` hook of ``host.direct.Child.inspect``), its reply read (``host.direct._collect`` returned), the
exit handlers run, and the process gone.

    python benchmarks/startup.py [--rounds 10] [--top 12] [--before TREE] [IMAGE]

``--before TREE`` also runs ``inspect`` and the window from another checkout (say ``git archive`` of an
older commit, unpacked; in a virtual environment of its own) in the same interleaved rounds, for
before/after figures measured side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sandbox_cost import fresh, make_image  # noqa: E402
from workbench.host import runner as client  # noqa: E402

ISOLATED = [sys.executable, "-I", "-S", "-c"]
# The console script pip writes for ``workbench = "workbench.__main__:main"``, word for word (its ``import re``
# costs every command ~6 ms before the package runs); TIMED also reports when the engine child is started,
# sent its request, read, and when the exit handlers run (monotonic seconds on standard error; CLOCK_MONOTONIC
# is the same in every process). ``host.direct`` imports only what the early start imports anyway.
LAUNCHER = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from workbench.__main__ import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""
TIMED = """#!{python}
import re  # as the LAUNCHER
import atexit
import sys
import time
def mark(what):
    print(what, time.monotonic(), file=sys.stderr)
sys.addaudithook(lambda event, _: event in ("os.posix_spawn", "subprocess.Popen") and mark("spawn"))
from workbench.host import direct
inspect, collect = direct.Child.inspect, direct._collect
def inspecting(child, declared, options, meanwhile=None):
    def sent():
        mark("request")
        if meanwhile is not None:
            meanwhile()
    return inspect(child, declared, options, sent)
def collecting(*args):
    outcome = collect(*args)
    mark("reply")
    return outcome
direct.Child.inspect, direct._collect = inspecting, collecting
atexit.register(mark, "exit handlers")
from workbench.__main__ import main
sys.exit(main())
"""
MARKS = ("spawn", "request", "reply", "exit handlers")
# Loads one seccomp program in a throwaway process: built by libseccomp, or handed to the kernel as
# precompiled BPF (exported by libseccomp beforehand); prints the milliseconds each part took.
SECCOMP_PROBE = """
import ctypes, json, os, sys, time
sys.path.insert(0, {root!r})
from workbench.engine.child import seccomp_filter as sf
mode = sys.argv[1]
t0 = time.perf_counter()
flt = sf.Filter(sf.parse_rules())
t1 = time.perf_counter()
if mode == "libseccomp":
    flt.load()
    print(json.dumps({{"build": (t1 - t0) * 1e3, "load": (time.perf_counter() - t1) * 1e3}}))
    sys.exit()
r, w = os.pipe()
flt._lib.seccomp_export_bpf(ctypes.c_void_p(flt._ctx), w)
os.close(w)
program = os.read(r, 1 << 20)
libc = ctypes.CDLL(None, use_errno=True)
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]
t2 = time.perf_counter()
buf = ctypes.create_string_buffer(program, len(program))
prog = Prog(len(program) // 8, ctypes.cast(buf, ctypes.c_char_p))
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0
t3 = time.perf_counter()
print(json.dumps({{"build": (t1 - t0) * 1e3, "load": (t3 - t2) * 1e3, "instructions": len(program) // 8}}))
"""


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}


class Installed(NamedTuple):
    """A throwaway virtual environment that runs ``tree`` as an installed package."""

    python: str
    workbench: str  # the launcher
    timed: str  # the launcher that reports when the engine child starts


def installed(tree: Path, folder: Path) -> Installed:
    """Make ``folder`` a virtual environment whose ``.pth`` names ``tree`` and this interpreter's site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = str(folder / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dependencies = [entry for entry in sys.path if entry.endswith("site-packages") and os.path.isdir(entry)]
    Path(site, "workbench-tree.pth").write_text("\n".join([str(tree), *dependencies]) + "\n")
    scripts = {}
    for name, text in (("workbench", LAUNCHER), ("workbench-timed", TIMED)):
        script = folder / "bin" / name
        script.write_text(text.format(python=python))
        script.chmod(0o755)
        scripts[name] = str(script)
    compileall.compile_dir(tree / "workbench", quiet=1)
    return Installed(python, scripts["workbench"], scripts["workbench-timed"])


Command = tuple[list[str], dict[str, str]]  # argv, environment


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def timeline(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Seconds from starting ``argv`` (a TIMED launcher) to each of its :data:`MARKS` and to its end."""
    started = time.monotonic()
    result = subprocess.run(argv, env=env, cwd="/", capture_output=True, text=True, check=False)
    ended = time.monotonic()
    marks = {}
    for line in result.stderr.splitlines():
        what, _, when = line.rpartition(" ")
        if what in MARKS:
            marks.setdefault(what, float(when) - started)
    return marks | {"gone": ended - started}


def measure(commands: dict[str, Command], rounds: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each command over interleaved rounds, after one warm-up run each."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for command in commands.values():
        run_once(*command)
    for _ in range(rounds):
        for name, command in commands.items():
            samples[name].append(run_once(*command))
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in samples.items()
    }


def whole_processes(image: str, rounds: int, env: dict[str, str], now: Installed, before: Installed | None) -> None:
    window_env = env | {"QT_QPA_PLATFORM": "offscreen"}
    qemu = shutil.which("qemu-img") or "qemu-img"
    inspect = ["inspect", "--json", "-f", "qcow2", image]
    window = ["--demo", "--quit-after", "0"]
    commands: dict[str, Command] = {
        "workbench inspect --json -f qcow2": ([now.workbench, *inspect], env),
        "qemu-img info --output=json": ([qemu, "info", "--output=json", image], env),
        "workbench --version": ([now.workbench, "--version"], env),
        "workbench --help": ([now.workbench, "--help"], env),
        "window: --demo --quit-after 0": ([now.workbench, *window], window_env),
    }
    if before is not None:
        commands["before: inspect --json -f qcow2"] = ([before.workbench, *inspect], env)
        commands["before: window"] = ([before.workbench, *window], window_env)
    goals = {
        "workbench inspect --json -f qcow2": "<= 10x qemu-img",
        "workbench --version": "< 40 ms",
        "workbench --help": "< 40 ms",
        "window: --demo --quit-after 0": "(whole run: demo set inspected; first paint: window_startup.py)",
    }
    results = measure(commands, rounds)
    theirs = results["qemu-img info --output=json"]
    print(f"whole processes, median of {rounds} (an installed layout, bytecode compiled)")
    print(f"{'command':<36} {'wall ms':>8} {'CPU ms':>8} {'x qemu wall':>12} {'x qemu CPU':>11}  goal")
    for name, (wall, cpu) in results.items():
        ratios = f"{wall / theirs[0]:11.1f}x {cpu / theirs[1]:10.1f}x"
        print(f"{name:<36} {wall * 1000:8.1f} {cpu * 1000:8.1f} {ratios}  {goals.get(name, '')}")
    trees = {"now": now.timed} | ({"before": before.timed} if before is not None else {})
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(rounds):  # interleaved, as above
        for name, timed in trees.items():
            runs[name].append(timeline([timed, *inspect], env))
    bare = statistics.median(run_once([now.python, "-c", "pass"], env)[0] for _ in range(rounds))
    print(f"inspect's timeline, ms from launch, median of {rounds} (python -c pass: {bare * 1000:.1f} ms)")
    print(f"  {'tree':<8}" + "".join(f"{what:>15}" for what in (*MARKS, "gone")))
    for name, samples in runs.items():
        values = [[s[what] * 1000 for s in samples if what in s] for what in (*MARKS, "gone")]
        if not all(values):  # an older tree without the hooks the marks need: its whole time is in the table above
            print(f"  {name:<8} (no timeline: the tree has no early child to mark)")
            continue
        print(f"  {name:<8}" + "".join(f"{statistics.median(v):15.1f}" for v in values))
    print()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def child_alone(image: str, rounds: int) -> tuple[tuple[float, float], list[dict[str, float]]]:
    """Median wall and child CPU seconds of a fresh sandboxed child, and what its hardening steps cost."""
    timings: list[dict[str, float]] = []
    run = fresh(image, None, timings)
    await run()
    samples = []
    for _ in range(rounds):
        cpu, started = _cpu(), time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started, _cpu() - cpu))
    return (statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)), timings[1:]


def in_child(code: str, rounds: int) -> tuple[float, float]:
    samples = [run_once([*ISOLATED, code], {}) for _ in range(rounds)]
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def parse_ms(image: str, rounds: int) -> float:
    from workbench.engine import report

    samples = []
    for _ in range(rounds):
        fd = os.open(image, os.O_RDONLY)
        started = time.perf_counter()
        report.build(fd, image, "qcow2")
        samples.append(time.perf_counter() - started)
        os.close(fd)
    return statistics.median(samples) * 1000


def child_breakdown(image: str, rounds: int) -> None:
    """Wall and CPU milliseconds of the child's parts; hardening and parse are timed inside a process."""
    whole, timings = asyncio.run(child_alone(image, rounds))
    bare = in_child("pass", rounds)
    imports = in_child(f"import sys; sys.path.insert(0, {str(ROOT)!r}); import workbench.engine.child.worker", rounds)
    hardening = statistics.median(sum(t.values()) for t in timings)
    prepare = statistics.median(t["prepare"] for t in timings)
    parse = parse_ms(image, rounds)
    rows = [
        ("whole child (spawn to reply)", whole[0] * 1000, whole[1] * 1000),
        ("interpreter start (python -I -S -c pass)", bare[0] * 1000, bare[1] * 1000),
        ("imports (engine.worker, less the above)", (imports[0] - bare[0]) * 1000, (imports[1] - bare[1]) * 1000),
        ("hardening (every layer, timed inside)", hardening, hardening),
        ("  of which prepare (preload, libseccomp)", prepare, prepare),
        ("parse (report.build, in this process)", parse, parse),
    ]
    rest = [whole[i] * 1000 - imports[i] * 1000 - hardening - parse for i in (0, 1)]
    rows.append(("the rest (request, reply, exit, wake-ups)", *rest))
    print(f"the engine child alone (from a running parent, all layers), median of {rounds}")
    print(f"  {'part':<44} {'wall ms':>8} {'CPU ms':>8}")
    for name, wall, cpu in rows:
        print(f"  {name:<44} {wall:8.1f} {cpu:8.1f}")
    print()


def parent_breakdown(rounds: int, env: dict[str, str], python: str) -> None:
    """The parent's imports for one ``inspect``, added one group at a time in the order it imports them (CPU ms,
    cumulative): before the child's spawn, before its request, then while it works."""
    steps = {
        "interpreter (python -c pass)": [],
        "+ before the spawn (cli.early, host.direct)": ["workbench.cli.early", "workbench.host.direct"],
        "+ the command line (inspect's alone)": ["workbench.cli.main", "workbench.cli.commands.inspect"],
        "+ settings and policy": ["workbench.policy.settings"],
        "+ inspector and protocol (the request is sent)": ["workbench.inspector", "workbench.host.protocol"],
        "+ validator, findings, layer names, text": [
            "workbench.host.validate",
            "workbench.engine.child.sandbox",
            "workbench.render.text",
        ],
        "+ asyncio (what the async runner would add)": ["asyncio"],
    }
    print(f"the parent's imports for one inspect, cumulative, median of {rounds}")
    print(f"  {'imports':<52} {'CPU ms':>8}")
    modules: list[str] = []
    for name, more in steps.items():
        modules += more
        code = f"import {', '.join(modules)}" if modules else "pass"
        samples = [run_once([python, "-c", code], env)[1] for _ in range(rounds)]
        print(f"  {name:<52} {statistics.median(samples) * 1000:8.1f}")
    print()


def seccomp_saving(rounds: int) -> None:
    """What a precompiled BPF program would save against building it with libseccomp in each child."""
    code = SECCOMP_PROBE.format(root=str(ROOT))
    rows: dict[str, list[dict[str, float]]] = {"libseccomp": [], "bpf": []}
    for _ in range(rounds):
        for mode, found in rows.items():
            out = subprocess.run([*ISOLATED, code, mode], capture_output=True, text=True, env={}, check=True)
            found.append(json.loads(out.stdout))
    build = statistics.median(r["build"] for r in rows["libseccomp"])
    load = statistics.median(r["load"] for r in rows["libseccomp"])
    raw = statistics.median(r["load"] for r in rows["bpf"])
    size = rows["bpf"][0]["instructions"]
    print(f"seccomp, median of {rounds} throwaway processes")
    print(f"  libseccomp: load library + build rules {build:.2f} ms, seccomp_load {load:.2f} ms")
    print(f"  precompiled BPF ({size} instructions): one prctl {raw:.2f} ms")
    print(f"  a precompiled program would save {build + load - raw:.2f} ms per fresh child")
    print()


def importtime(argv: list[str], env: dict[str, str], top: int, title: str) -> None:
    out = subprocess.run([*argv[:1], "-X", "importtime", *argv[1:]], env=env, cwd="/", capture_output=True, text=True)
    rows = []
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            own, cumulative, name = line.removeprefix("import time:").split("|")
            rows.append((int(cumulative), int(own), name.rstrip()))
    print(f"python -X importtime, {title}: top {top} by cumulative microseconds")
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative:8d} {own:8d} {name}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", nargs="?", help="a qcow2 image (default: one made with qemu-img)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--top", type=int, default=12, help="import-time rows to print per process")
    parser.add_argument("--before", type=Path, metavar="TREE", help="another checkout to measure beside this one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        now = installed(ROOT, Path(folder, "venv"))
        before = installed(args.before.resolve(), Path(folder, "venv-before")) if args.before else None
        image = args.image or make_image(folder)
        env = environment()
        whole_processes(image, args.rounds, env, now, before)
        child_breakdown(image, args.rounds)
        parent_breakdown(args.rounds, env, now.python)
        seccomp_saving(args.rounds)
        parent = [now.python, now.workbench, "inspect", "--json", "-f", "qcow2", image]
        importtime(parent, env, args.top, "workbench inspect (parent)")
        code = client.engine_command()[-1]
        importtime([*ISOLATED, code.removesuffix("; main()")], {}, args.top, "engine child")


if __name__ == "__main__":
    main()
