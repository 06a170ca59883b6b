"""Deep inspection of a large qcow2 beside ``qemu-img check`` on the same file, in one run.

Run: python benchmarks/deep.py [--virtual 10G] [--written 2G] [--repeat 3] [--folder /tmp]
Makes a sparse qcow2 of ``--virtual`` bytes, writes ``--written`` bytes with qemu-io (a pattern, then a
few scattered small writes so the map has more than one run), and times, median of ``--repeat``:
``workbench inspect --deep --json`` as the command line runs it (a fresh sandboxed child), the same without
``--deep`` (what process start and the header cost), the engine's report with the deep walk in this
process, and ``qemu-img check --output=json``. The last line is the ratio of the sandboxed deep inspection
to qemu-img check (below 1: we are faster). The image is deleted at the end.
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


def sandboxed(path: Path, deep: bool = True) -> dict[str, object]:
    command = [sys.executable, "-m", "workbench", "inspect", *(["--deep"] if deep else []), "--json", "-f", "qcow2"]
    out = subprocess.run([*command, "--max-virtual-size", "1P", "--timeout", "120", str(path)], capture_output=True)
    return json.loads(out.stdout)


def in_process(path: Path) -> dict[str, object]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return report.build(fd, str(path), "qcow2", include_bytes=False, deep_budget=64 << 20)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = Path(folder) / "deep.qcow2"
        make_image(path, parse_size(args.virtual), parse_size(args.written))
        rep = sandboxed(path)
        deep = rep.get("deep") or {}
        ours = deep.get("check", {})
        theirs = qemu_check(path)
        same = all(ours.get(key) == theirs.get(key, 0) for key in ours)
        print(f"# {args.virtual} virtual, {args.written} written, file {path.stat().st_size} bytes")
        print(f"# verdict {rep.get('verdict')}, map runs {len(deep.get('map', []))}, counters equal: {same}")
        print(f"# metadata read {deep.get('bytes_read')} bytes of a {deep.get('budget')}-byte budget")
        sandbox_s = median_s(lambda: sandboxed(path), args.repeat)
        plain_s = median_s(lambda: sandboxed(path, deep=False), args.repeat)
        engine_s = median_s(lambda: in_process(path), args.repeat)
        qemu_s = median_s(lambda: qemu_check(path), args.repeat)
        print(f"{'measure':<42}{'median s':>10}")
        print(f"{'workbench inspect --deep (sandboxed child)':<42}{sandbox_s:>10.3f}")
        print(f"{'workbench inspect, no --deep (same child)':<42}{plain_s:>10.3f}")
        print(f"{'engine report with deep walk (in process)':<42}{engine_s:>10.3f}")
        print(f"{'qemu-img check':<42}{qemu_s:>10.3f}")
        print(f"ratio sandboxed deep / qemu-img check: {sandbox_s / qemu_s:.2f}")


if __name__ == "__main__":
    main()
