"""Start-up and a single inspection, whole processes, side by side with ``qemu-img info`` in one run.

Each command runs in interleaved rounds (so that a busy machine slows them all alike); the table gives
the median wall time of each, its goal, and ``workbench inspect`` against ``qemu-img info`` on the same
file. Then the engine child alone (spawn to reply, from a running parent), split into interpreter start,
imports, hardening and parse; what a precompiled seccomp BPF program would save; and the top of
``python -X importtime`` for the parent CLI and for the engine child.

Bytecode is compiled first and the commands run without ``PYTHONDONTWRITEBYTECODE``, as an installed
package runs (pip compiles it); a checkout run with that variable set compiles every workbench module of
the parent on every start.

    python benchmarks/startup.py [--rounds 10] [--top 12] [--before TREE] [IMAGE]

``--before TREE`` also runs ``inspect`` and the window from another checkout (say ``git archive`` of an
older commit, unpacked) in the same interleaved rounds, for before/after figures measured side by side.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sandbox_cost import fresh, make_image  # noqa: E402
from workbench.host import runner as client  # noqa: E402

ISOLATED = [sys.executable, "-I", "-S", "-c"]
PARENT = [sys.executable, "-m", "workbench"]
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


Command = tuple[list[str], dict[str, str], Path]  # argv, environment, working folder (which tree ``-m`` runs)


def run_once(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


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


def whole_processes(image: str, rounds: int, env: dict[str, str], before: Path | None) -> None:
    window_env = env | {"QT_QPA_PLATFORM": "offscreen"}
    qemu = shutil.which("qemu-img") or "qemu-img"
    inspect = [*PARENT, "inspect", "--json", "-f", "qcow2", image]
    window = [*PARENT, "--demo", "--quit-after", "0"]
    commands: dict[str, Command] = {
        "workbench inspect --json -f qcow2": (inspect, env, ROOT),
        "qemu-img info --output=json": ([qemu, "info", "--output=json", image], env, ROOT),
        "workbench --version": ([*PARENT, "--version"], env, ROOT),
        "workbench --help": ([*PARENT, "--help"], env, ROOT),
        "window: --demo --quit-after 0": (window, window_env, ROOT),
    }
    if before is not None:
        compileall.compile_dir(before / "workbench", quiet=1)
        commands["before: inspect --json -f qcow2"] = (inspect, env, before)
        commands["before: window"] = (window, window_env, before)
    goals = {"workbench --version": 0.040, "workbench --help": 0.040, "window: --demo --quit-after 0": 0.400}
    results = measure(commands, rounds)
    print(f"whole processes, median of {rounds} (bytecode compiled)")
    print(f"{'command':<36} {'wall ms':>8} {'CPU ms':>8} {'goal':>8}")
    for name, (wall, cpu) in results.items():
        goal = f"< {goals[name] * 1000:.0f}" if name in goals else ""
        print(f"{name:<36} {wall * 1000:8.1f} {cpu * 1000:8.1f} {goal:>8}")
    theirs = results["qemu-img info --output=json"]
    for name in ("workbench inspect --json -f qcow2", "before: inspect --json -f qcow2"):
        if name in results:
            ours = results[name]
            print(
                f"{name} is {ours[0] / theirs[0]:.1f}x qemu-img info in wall time, "
                f"{ours[1] / theirs[1]:.1f}x in CPU time (goal <= 10x)"
            )
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


def parent_breakdown(rounds: int, env: dict[str, str]) -> None:
    """The parent's imports for one ``inspect``, added one group at a time (CPU ms, cumulative)."""
    steps = {
        "interpreter (python -c pass)": [],
        "+ command line, inspector, direct runner, settings": [
            "workbench.cli.main",
            "workbench.cli.commands.inspect",
            "workbench.inspector",
            "workbench.host.direct",
            "workbench.policy.settings",
            "platformdirs",
        ],
        "+ engine.formats (the -f check)": ["workbench.engine.formats"],
        "+ asyncio (what the async runner would add)": ["asyncio"],
    }
    print(f"the parent's imports for one inspect, cumulative, median of {rounds}")
    print(f"  {'imports':<52} {'CPU ms':>8}")
    modules: list[str] = []
    for name, more in steps.items():
        modules += more
        code = f"import {', '.join(modules)}" if modules else "pass"
        samples = [run_once([sys.executable, "-c", code], env)[1] for _ in range(rounds)]
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
    out = subprocess.run([*argv[:1], "-X", "importtime", *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True)
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
    compileall.compile_dir(ROOT / "workbench", quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        image = args.image or make_image(folder)
        env = environment()
        whole_processes(image, args.rounds, env, args.before)
        child_breakdown(image, args.rounds)
        parent_breakdown(args.rounds, env)
        seccomp_saving(args.rounds)
        importtime([*PARENT, "inspect", "--json", "-f", "qcow2", image], env, args.top, "workbench inspect (parent)")
        code = client.engine_command()[-1]
        importtime([*ISOLATED, code.removesuffix("; main()")], {}, args.top, "engine child")


if __name__ == "__main__":
    main()
