"""Triage throughput against a `qemu-img info` loop, measured side by side in one run.

Run: python benchmarks/triage_throughput.py [--files 500] [--scaling 100,1000,10000] [--rounds 5 --before TREE]

1. A corpus of --files mixed images (every format qemu-img writes, benign and hostile hand-built ones),
   copied round-robin from a base set.
2. Throughput of `workbench triage` (its default children at once: one per core and one more) beside a
   sequential `qemu-img info --output=json -f FMT` loop and the same loop run 2-way parallel; the ratios are
   ours over theirs; the CPU time per image of the parent (this process, every thread) and of the children
   (the fork server and every child it forked); the opt-in `--isolation batch:16` beside it.
3. Scaling: time per file and the parent's peak memory for each corpus size, each in a fresh process.
4. Bytes read per image for each format.
With --rounds N (and --before TREE, another checkout such as `git archive` of main unpacked), first a table of
N interleaved rounds, medians: triage of this tree (and TREE's), each in a fresh process, beside the two loops.
Each table ends with the goals of issue 19, each with its measure and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.per_format import make_corpus  # noqa: E402
from workbench.host.runner import FRESH  # noqa: E402
from workbench.inspector import Request, inspect  # noqa: E402
from workbench.policy.policy import Policy  # noqa: E402
from workbench.triage import run as triage  # noqa: E402
from workbench.triage.jobs import local_jobs  # noqa: E402
from workbench.triage.walk import walk  # noqa: E402

QEMU_FORMAT = {"iso": "raw"}  # formats qemu-img reads under another name
BATCH = {"guest": False, "deep": False}  # what `workbench triage` without --guest or --deep tells its fork server
BATCH_SIZE = 16  # the opt-in `--isolation batch:N` measured beside the default


def base_set(folder: Path) -> list[tuple[Path, str]]:
    """One image per qemu-img subformat plus hostile ones: a backing file, a raw disguise."""
    folder.mkdir()
    made = make_corpus(folder)
    child = folder / "child.qcow2"
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", "-u", str(child), "1G"]
    subprocess.run(cmd, check=True)
    disguised = folder / "disguised.raw"
    disguised.write_bytes(child.read_bytes())
    return [*made, (child, "qcow2"), (disguised, "raw")]


def sparse_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` keeping its holes (a plain copy of the 1 GiB raw base writes 1 GiB per copy)."""
    with open(src, "rb") as source, open(dst, "wb") as target:
        size = os.fstat(source.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                start = os.lseek(source.fileno(), offset, os.SEEK_DATA)
            except OSError:  # ENXIO: nothing but a hole up to the end
                break
            end = os.lseek(source.fileno(), start, os.SEEK_HOLE)
            source.seek(start)
            target.seek(start)
            target.write(source.read(end - start))
            offset = end
        target.truncate(size)


def corpus(folder: Path, count: int) -> list[tuple[Path, str]]:
    bases = base_set(folder / "base")
    files = []
    for i in range(count):
        src, fmt = bases[i % len(bases)]
        dst = folder / "corpus" / f"{i:05}{src.suffix}"
        dst.parent.mkdir(exist_ok=True)
        sparse_copy(src, dst)
        files.append((dst, fmt))
    return files


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_triage(
    files: list[tuple[Path, str]], jobs: int, zygote: bool = True, batch: int = 1
) -> tuple[float, list[dict]]:
    """Triage ``files`` as `workbench triage` does (a zygote unless told otherwise; ``batch``: `--isolation
    batch:N`, with ``jobs`` children); seconds and summaries. The CPU seconds of the last run, the parent's and the
    children's, are left in :data:`LAST_CPU`."""
    declared = {str(p): f for p, f in files}

    async def go() -> list[dict]:
        entries = walk(str(p) for p, _ in files)  # as `workbench triage FILE...` walks its arguments
        out = []
        async with contextlib.AsyncExitStack() as stack:
            pool = (
                await stack.enter_async_context(triage.engine_pool(Policy().required_layers, print, BATCH))
                if zygote
                else None
            )
            requests = lambda p: Request(p, declared[p], include_bytes=False)  # noqa: E731
            # as `workbench triage` runs it without --json or --jsonl: summaries only, no field tree in the replies
            runner = triage.GatedRunner(pool or FRESH, jobs, full_reports=False)
            if batch > 1 and pool is not None:
                runner = triage.BatchRunner(runner, pool, batch)
            inspect_one = functools.partial(inspect, runner=runner)
            async for report in triage.run(entries, requests, jobs * batch, inspect_one):
                out.append(triage.summarise(report) | {"bytes_read": report.get("bytes_read")})
        return out

    start, parent, children = time.perf_counter(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    reports = asyncio.run(go())
    LAST_CPU[:] = [_cpu(resource.RUSAGE_SELF) - parent, _cpu(resource.RUSAGE_CHILDREN) - children]
    return time.perf_counter() - start, reports


LAST_CPU = [0.0, 0.0]  # parent and children CPU seconds of the last run_triage


def qemu_loop(files: list[tuple[Path, str]], parallel: int) -> float:
    def one(item: tuple[Path, str]) -> None:
        path, fmt = item
        cmd = ["qemu-img", "info", "--output=json", "-U", "-f", QEMU_FORMAT.get(fmt, fmt), str(path)]
        subprocess.run(cmd, capture_output=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - start


def scaling_child(count: int) -> None:
    """Run in a fresh process: triage ``count`` small images, print seconds and peak RSS as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = []
        for i in range(count):
            path = folder / f"{i:06}.raw"
            path.write_bytes(bytes(4096))
            files.append((path, "raw"))
        elapsed, _ = run_triage(files, local_jobs())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"files": count, "seconds": elapsed, "peak_kib": peak}))


TRIAGE_IN = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from benchmarks.triage_throughput import LAST_CPU, run_triage
try:
    from workbench.triage.jobs import local_jobs
except ImportError:  # a tree from before the default was one child more than cores
    local_jobs = lambda: os.cpu_count() or 2
files = [(Path(path), fmt) for path, fmt in json.loads(Path(sys.argv[2]).read_text())]
batch = int(sys.argv[3])
seconds, _ = run_triage(files, local_jobs(), batch=batch) if batch > 1 else run_triage(files, local_jobs())
print(json.dumps({"seconds": seconds, "parent": LAST_CPU[0], "children": LAST_CPU[1], "jobs": local_jobs()}))
"""


def triage_in(tree: Path, listing: Path, batch: int = 1) -> dict[str, float]:
    """`run_triage` of the files in ``listing`` as the checkout ``tree`` has it (with its own default of children
    at once; ``batch``: `--isolation batch:N`), in a fresh process: seconds, the parent's and the children's CPU
    seconds, and the children at once."""
    argv = [sys.executable, "-c", TRIAGE_IN, str(tree), str(listing), str(batch)]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"triage in {tree} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])


GOALS = (  # issue 19: (what, measure key, goal, "min" if the measure must reach the goal, "max" if stay under)
    ("triage over the sequential qemu-img loop", "seq_ratio", 2.0, "min"),
    ("triage over the 2-way parallel loop", "par_ratio", 1.0, "min"),
    ("parent CPU per image, ms", "parent_ms", 0.5, "max"),
    ("children CPU per image, ms", "children_ms", 3.0, "max"),
)


def print_goals(measures: dict[str, float]) -> None:
    """Each goal of issue 19 with its measure and the measure's ratio to the goal."""
    print(f"{'goal':44} {'measure':>8} {'goal':>6} {'ratio':>7}  met")
    for what, key, goal, kind in GOALS:
        value = measures[key]
        met = value >= goal if kind == "min" else value <= goal
        bound = ">=" if kind == "min" else "<="
        print(f"{what:44} {value:8.2f} {bound}{goal:4g} {value / goal:6.2f}x  {'yes' if met else 'NO'}")


def rounds_table(files: list[tuple[Path, str]], folder: Path, rounds: int, before: Path | None) -> None:
    """Interleaved rounds of triage (this tree, and ``before`` when given) and the two qemu-img loops; medians,
    each goal's ratio beside its measure."""
    listing = folder / "files.json"
    listing.write_text(json.dumps([[str(path), fmt] for path, fmt in files]))
    trees = {"after": Path(__file__).resolve().parents[1], **({"before": before} if before else {})}
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for _ in range(rounds):
        for name, tree in trees.items():
            runs[name].append(triage_in(tree, listing))
        runs["batch"].append(triage_in(trees["after"], listing, BATCH_SIZE))
        runs["seq"].append({"seconds": qemu_loop(files, 1)})
        runs["par"].append({"seconds": qemu_loop(files, 2)})
    n = len(files)
    median = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
    print(f"## Side by side: {rounds} interleaved round(s), medians, {n} mixed images, {os.cpu_count()} cores")
    print(f"{'run':36} {'seconds':>8} {'files/s':>8} {'parent ms':>10} {'children ms':>12} {'at once':>8}")
    for name in ("before", "after", "batch", "seq", "par"):
        if name not in median:
            continue
        row = median[name]
        cpu = (
            f"{1000 * row['parent'] / n:10.2f} {1000 * row['children'] / n:12.2f} {row['jobs']:8g}"
            if "parent" in row
            else ""
        )
        label = {
            "seq": "qemu-img info loop, sequential",
            "par": "qemu-img info loop, 2-way parallel",
            "batch": f"after, --isolation batch:{BATCH_SIZE}",
        }.get(name, f"workbench triage, {name}")
        print(f"{label:36} {row['seconds']:8.2f} {n / row['seconds']:8.1f} {cpu}")
    for name in trees:  # the goals are for the default, one image per process (issue 19)
        row = median[name]
        print(f"\n### Goals, {name}")
        print_goals(
            {
                "seq_ratio": median["seq"]["seconds"] / row["seconds"],
                "par_ratio": median["par"]["seconds"] / row["seconds"],
                "parent_ms": 1000 * row["parent"] / n,
                "children_ms": 1000 * row["children"] / n,
            }
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--scaling", default="100,1000", help="corpus sizes for the scaling table")
    parser.add_argument("--jobs", default="", help="extra in-flight counts to compare, e.g. 4,8")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds of the side-by-side table")
    parser.add_argument("--before", type=Path, help="another checkout (say, `git archive` of main) measured beside")
    parser.add_argument("--scaling-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling_child:
        scaling_child(args.scaling_child)
        return
    jobs = local_jobs()  # what `workbench triage` runs at once
    with tempfile.TemporaryDirectory() as tmp:
        files = corpus(Path(tmp), args.files)
        # One untimed pass first: the first triage after the corpus is written took ~0.7 s more than the next
        # (2.2 against 1.5 s, three runs; the new files' caches and writeback), which the runs after it never pay.
        run_triage(files, jobs)
        if args.rounds or args.before:
            rounds_table(files, Path(tmp), max(1, args.rounds), args.before)
        ours, reports = run_triage(files, jobs)
        ours_cpu = list(LAST_CPU)
        extra = [(count, run_triage(files, count)[0]) for count in (int(j) for j in args.jobs.split(",") if j)]
        fresh, _ = run_triage(files, jobs, zygote=False)
        batched, batched_reports = run_triage(files, jobs, batch=BATCH_SIZE)
        seq = qemu_loop(files, 1)
        par = qemu_loop(files, 2)
    n = len(files)
    print(f"## Throughput, {n} mixed images, {os.cpu_count()} cores (one run)")
    print(f"{'runner':36} {'seconds':>8} {'files/s':>8} {'ours is':>9}")
    print(f"{'workbench triage (jobs=' + str(jobs) + ')':36} {ours:8.2f} {n / ours:8.1f} {'':>9}")
    for count, seconds in extra:
        label = f"workbench triage (jobs={count})"
        print(f"{label:36} {seconds:8.2f} {n / seconds:8.1f} {'':>9}")
    print(f"{'workbench, fresh process per image':36} {fresh:8.2f} {n / fresh:8.1f} {fresh / ours:8.2f}x")
    label = f"workbench, --isolation batch:{BATCH_SIZE}"
    print(f"{label:36} {batched:8.2f} {n / batched:8.1f} {batched / ours:8.2f}x")
    print(f"{'qemu-img info loop, sequential':36} {seq:8.2f} {n / seq:8.1f} {seq / ours:8.2f}x")
    print(f"{'qemu-img info loop, 2-way parallel':36} {par:8.2f} {n / par:8.1f} {par / ours:8.2f}x")
    parent_ms, children_ms = (1000 * seconds / n for seconds in ours_cpu)
    print("(the children's CPU includes the fork server's start, shared by the batch)")
    print_goals({"seq_ratio": seq / ours, "par_ratio": par / ours, "parent_ms": parent_ms, "children_ms": children_ms})
    verdicts = defaultdict(int)
    per_format: dict[str, list[int]] = defaultdict(list)
    for report in reports:
        verdicts[report["verdict"]] += 1
        per_format[report["format"] or "-"].append(report["bytes_read"] or 0)
    print("verdicts:", dict(verdicts))
    same = sorted(r["verdict"] for r in batched_reports) == sorted(r["verdict"] for r in reports)
    print(f"--isolation batch:{BATCH_SIZE}: the same verdicts: {'yes' if same else 'NO'}")
    print("\n## Bytes read per image")
    for fmt, values in sorted(per_format.items()):
        print(f"{fmt:10} {min(values):>8} .. {max(values):>8} bytes")
    print("\n## Scaling (fresh process per size)")
    print(f"{'files':>7} {'seconds':>8} {'ms/file':>8} {'peak RSS MiB':>13}")
    for count in [int(c) for c in args.scaling.split(",") if c]:
        out = subprocess.run([sys.executable, __file__, "--scaling-child", str(count)], capture_output=True, text=True)
        row = json.loads(out.stdout)
        print(f"{count:>7} {row['seconds']:8.2f} {1000 * row['seconds'] / count:8.2f} {row['peak_kib'] / 1024:13.1f}")


if __name__ == "__main__":
    main()
