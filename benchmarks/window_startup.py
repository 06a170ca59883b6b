"""The window's start-up: ``workbench --demo --quit-after 0``, offscreen and under Xvfb, whole processes.

Each run sets ``WORKBENCH_STARTUP_TIMING=1``, so the window writes when its first frame was complete; the
table gives, per platform, the median milliseconds from launching the process to that first paint (the
goal: 400 ms) and to the process's exit (after the demonstration images were inspected). Runs are
interleaved (offscreen, Xvfb, and with ``--before TREE`` the same from another checkout, say ``git archive``
of an older commit unpacked), so a busy machine slows them all alike. One Xvfb server serves every run.
A tree from before the timing line existed gives its exit time only.

    python benchmarks/window_startup.py [--rounds 10] [--before TREE]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.startup import environment  # noqa: E402

GOAL_MS = 400.0
PAINTED = re.compile(r"workbench: first paint [\d.]+ ms after process start \(at ([\d.]+)\)")
COMMAND = [sys.executable, "-m", "workbench", "--demo", "--quit-after", "0"]


@contextmanager
def xvfb() -> Iterator[str]:
    """A private Xvfb server for the benchmark's runs; yields its DISPLAY."""
    read, write = os.pipe()
    server = subprocess.Popen(
        [shutil.which("Xvfb") or "Xvfb", "-displayfd", str(write), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        display = pipe.readline().strip()
    try:
        yield f":{display}"
    finally:
        server.terminate()
        server.wait()


def run_once(env: dict[str, str], cwd: Path) -> tuple[float | None, float]:
    """Milliseconds from launch to the first paint (``None``: the tree does not say) and to the exit."""
    launched = time.time()
    started = time.perf_counter()
    done = subprocess.run(COMMAND, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    whole = (time.perf_counter() - started) * 1000
    found = PAINTED.search(done.stderr)
    return ((float(found.group(1)) - launched) * 1000 if found else None), whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--before", type=Path, metavar="TREE", help="another checkout to measure beside this one")
    args = parser.parse_args()
    trees = {"": ROOT} | ({"before: ": args.before} if args.before else {})
    for tree in trees.values():
        compileall.compile_dir(tree / "workbench", quiet=1)
    base = environment() | {"WORKBENCH_STARTUP_TIMING": "1"}
    with xvfb() as display:
        platforms = {"offscreen": base | {"QT_QPA_PLATFORM": "offscreen"}}
        platforms["Xvfb"] = base | {"QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
        runs = {(label + name, tree): env for label, tree in trees.items() for name, env in platforms.items()}
        samples: dict[tuple[str, Path], list[tuple[float | None, float]]] = {key: [] for key in runs}
        for key, env in runs.items():  # one warm-up each
            run_once(env, key[1])
        for _ in range(args.rounds):
            for key, env in runs.items():
                samples[key].append(run_once(env, key[1]))
    print(f"workbench --demo --quit-after 0, median of {args.rounds} interleaved rounds (bytecode compiled)")
    print(f"{'platform':<20} {'first paint ms':>15} {'exit ms':>9} {'goal':>8}")
    for (name, _), values in samples.items():
        painted = [p for p, _ in values if p is not None]
        first = f"{statistics.median(painted):.1f}" if painted else "-"
        print(f"{name:<20} {first:>15} {statistics.median(w for _, w in values):9.1f} {'< ' + str(int(GOAL_MS)):>8}")


if __name__ == "__main__":
    main()
