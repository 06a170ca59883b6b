"""Deep inspection of a large qcow2 beside ``qemu-img check`` on the same file, in one run.

Run: python benchmarks/deep.py [--virtual 10G] [--written 2G] [--repeat 3] [--folder /tmp]
                              [--deep-budget 64M] [--image FILE]
Makes a sparse qcow2 of ``--virtual`` bytes, writes ``--written`` bytes with qemu-io (a pattern, then a
few scattered small writes so the map has more than one run), or takes the qcow2 ``--image``, and times,
median of ``--repeat``: ``workbench inspect --deep --json`` as the command line runs it (a fresh sandboxed
child), the same without ``--deep`` (what process start and the header cost), the engine's report with the
deep walk in this process, and ``qemu-img check --output=json``; then the peak resident memory of one
sandboxed deep inspection (its largest process). The last lines are the ratios to qemu-img check of the
sandboxed deep inspection and of what ``--deep`` adds to it (below 1: we are faster). A made image is
deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.engine import report  # noqa: E402
from workbench.policy.policy import parse_size  # noqa: E402


def make_image(path: Path, virtual: int, written: int) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(virtual)], check=True)
    step = 1 << 30  # qemu-io takes requests below 2 GiB
    commands = [f"write -P 1 {start} {min(step, written - start)}" for start in range(0, written, step)]
    commands += [f"write -P 2 {offset} 64k" for offset in range(written + (1 << 30), virtual, 1 << 30)]
    args = [arg for command in commands for arg in ("-c", command)]
    subprocess.run(["qemu-io", "-f", "qcow2", *args, str(path)], check=True, capture_output=True)


def median_s(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def command(path: Path, budget: int, deep: bool = True) -> list[str]:
    """``workbench inspect`` of ``path`` as a user runs it, with ``--deep`` and the budget or without."""
    options = ["--deep", "--deep-budget", f"{budget >> 10}K"] if deep else []
    return [sys.executable, "-m", "workbench", "inspect", *options, "--json", "-f", "qcow2", "--max-virtual-size", "1P"]


def sandboxed(path: Path, budget: int, deep: bool = True) -> dict[str, object]:
    out = subprocess.run([*command(path, budget, deep), "--timeout", "120", str(path)], capture_output=True)
    return json.loads(out.stdout)


def peak_rss_kib(path: Path, budget: int) -> int:
    """The largest resident set of one sandboxed deep inspection's processes (the command line and its
    child), measured by a fresh process that runs nothing else."""
    probe = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True);"
    probe += "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    args = [sys.executable, "-c", probe, *command(path, budget), "--timeout", "120", str(path)]
    return int(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def in_process(path: Path, budget: int) -> dict[str, object]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return report.build(fd, str(path), "qcow2", include_bytes=False, deep_budget=budget)
    finally:
        os.close(fd)


def qemu_check(path: Path) -> dict[str, object]:
    out = subprocess.run(["qemu-img", "check", "--output=json", "-U", str(path)], capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--virtual", default="10G")
    parser.add_argument("--written", default="2G")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", default=tempfile.gettempdir())
    parser.add_argument("--deep-budget", default="64M")
    parser.add_argument("--image", help="an existing qcow2 to measure instead of a made one")
    args = parser.parse_args()
    budget = parse_size(args.deep_budget)
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = Path(args.image) if args.image else Path(folder) / "deep.qcow2"
        if not args.image:
            make_image(path, parse_size(args.virtual), parse_size(args.written))
        measure(path, budget, args.repeat, f"{args.virtual} virtual, {args.written} written" if not args.image else "")


def measure(path: Path, budget: int, repeat: int, what: str) -> None:
    rep = sandboxed(path, budget)
    deep = rep.get("deep") or {}
    ours = deep.get("check", {})
    theirs = qemu_check(path)
    same = all(ours.get(key) == theirs.get(key, 0) for key in ours)
    print(f"# {what or path}, file {path.stat().st_size} bytes, {path.stat().st_blocks * 512} allocated")
    print(f"# verdict {rep.get('verdict')}, complete {deep.get('complete')}, map runs {len(deep.get('map', []))}")
    print(f"# counters equal: {same}: {ours}")
    print(f"# metadata read {deep.get('bytes_read')} bytes of a {deep.get('budget')}-byte budget")
    sandbox_s = median_s(lambda: sandboxed(path, budget), repeat)
    plain_s = median_s(lambda: sandboxed(path, budget, deep=False), repeat)
    engine_s = median_s(lambda: in_process(path, budget), repeat)
    qemu_s = median_s(lambda: qemu_check(path), repeat)
    print(f"{'measure':<42}{'median s':>10}")
    print(f"{'workbench inspect --deep (sandboxed child)':<42}{sandbox_s:>10.3f}")
    print(f"{'workbench inspect, no --deep (same child)':<42}{plain_s:>10.3f}")
    print(f"{'engine report with deep walk (in process)':<42}{engine_s:>10.3f}")
    print(f"{'qemu-img check':<42}{qemu_s:>10.3f}")
    print(f"peak RSS of a sandboxed deep inspection: {peak_rss_kib(path, budget) >> 10} MiB")
    print(f"ratio sandboxed deep / qemu-img check: {sandbox_s / qemu_s:.2f}")
    print(f"ratio what --deep adds / qemu-img check: {(sandbox_s - plain_s) / qemu_s:.2f}")


if __name__ == "__main__":
    main()
