"""The floor of one forked process per image: what a fork server's child costs before the sandbox and the protocol.

Run: python benchmarks/fork_floor.py [--files 500] [--rounds 3]

Issue 19 asks for at most 3 ms of children's CPU per image in triage (one sandboxed process per image, the fork
server's share counted in). This measures, side by side in one run on the same mixed images (the triage
benchmark's corpus), four rows:

1. a process forked from a heap like the fork server's (every engine module imported, the warm-up done, the heap
   frozen) that exits at once: what any fork of this interpreter costs;
2. the same fork running the inspection and its JSON, with no sandbox layer, no request and no reply: the parse's
   share, mostly the copy-on-write faults of the pages it touches (CPython writes the reference count of every
   object it uses);
3. the same, the child first hardened as the fork server's children harden themselves (its descriptors, its
   resource limits, the seccomp program the server built); the server's own layers (namespaces, Landlock) are
   not applied to this process, and its children inherit them at no cost;
4. `workbench triage` of those images, split into the forked children's own CPU and the fork server's (its start,
   each fork, reading requests and reaping; read from ``/proc`` before it ends).

Rows 1 to 3 give the forking process's CPU per image beside the child's (rusage of each child, minor faults from
``wait4``): the fork, and the copy-on-write faults its own next steps take (after a fork, every page it writes is
copied or re-marked once), in a loop that does nothing else. The difference between rows 3 and 4 is what the
protocol, the server's start and its loop add: row 3 is the floor of this design with the layers it must keep.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The floor's process imports only what the fork server does: nothing here that registers a handler run in every
# forked child (``random`` reseeds, ``threading`` resets its state: ``statistics``, ``tempfile`` and ``subprocess``
# import them), so those and the triage modules are imported by the functions that run triage.

GOAL_MS = 3.0  # issue 19: children's CPU per image in triage


def floor_child(listing: Path) -> None:
    """In a fresh interpreter: become a fork server's heap, then fork per image, bare and parsing; print JSON."""
    import gc
    import resource

    from workbench.engine import report
    from workbench.engine.child import sandbox, worker, zygote

    worker.preload(worker.EVERYTHING)
    zygote._warm_up()
    gc.collect()
    gc.freeze()
    sandbox._preload()  # as the server's own hardening did: its children find these imports done
    rules = zygote._child_filter()  # the children's seccomp program, as the fork server builds it
    resource.setrlimit(resource.RLIMIT_NOFILE, (sandbox.ZYGOTE_NOFILE, sandbox.ZYGOTE_NOFILE))  # the server's limit
    files = json.loads(listing.read_text())
    sink = os.open(os.devnull, os.O_WRONLY)

    def parse(fd: int, path: str, declared: str) -> None:
        result = report.build(fd, path, declared, include_bytes=False, include_fields=False, include_details=False)
        os.write(1, json.dumps({"ok": True, "report": result}).encode())

    def harden(fd: int) -> int:
        """The fork server's child's own layers (``zygote._child``): descriptors, limits, its seccomp filter."""
        plan = zygote.child_plan({}, {1, 2, fd}, rules, empty_root=True)  # as under the server's namespaces
        sandbox.harden(plan)
        return plan.moved.get(fd, fd)

    rows: dict[str, list[tuple[float, float, int]]] = {"bare": [], "parse": [], "hardened": []}
    for path, declared in files:
        fd = os.open(path, os.O_RDONLY)
        for kind in rows:
            started = time.thread_time()
            pid = os.fork()
            if pid == 0:
                os.dup2(sink, 1)
                if kind != "bare":
                    parse(harden(fd) if kind == "hardened" else fd, path, declared)
                os._exit(0)
            _, _, usage = os.wait4(pid, 0)
            forking = time.thread_time() - started  # the fork, and the faults it leaves this process to take
            rows[kind].append((usage.ru_utime + usage.ru_stime, forking, usage.ru_minflt))
        os.close(fd)
    means = {kind: [sum(column) / len(column) for column in zip(*values, strict=True)] for kind, values in rows.items()}
    print(json.dumps(means))


def _ticks(pid: int) -> tuple[float, float]:
    """A process's own CPU seconds and its reaped children's, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def triage_split(files: list[tuple[Path, str]]) -> tuple[float, float]:
    """Seconds of CPU per image in one triage: the forked children's own, and the fork server's."""
    from benchmarks import triage_throughput as throughput
    from workbench.host import runner
    from workbench.triage.jobs import local_jobs

    seen: list[tuple[float, float]] = []
    close = runner.ForkServerRunner.close

    async def measured_close(self: runner.ForkServerRunner) -> None:
        if self._proc is not None and self._proc.returncode is None:
            seen.append(_ticks(self._proc.pid))
        await close(self)

    runner.ForkServerRunner.close = measured_close  # type: ignore[method-assign]
    try:
        throughput.run_triage(files, local_jobs())
    finally:
        runner.ForkServerRunner.close = close  # type: ignore[method-assign]
    server, children = seen[-1]
    return children / len(files), server / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are shown")
    parser.add_argument("--floor-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_child:
        floor_child(args.floor_child)
        return
    import statistics
    import subprocess
    import tempfile

    from benchmarks import triage_throughput as throughput
    from workbench.triage.jobs import local_jobs

    results: dict[str, list[Any]] = {"bare": [], "parse": [], "hardened": [], "triage": []}
    with tempfile.TemporaryDirectory() as tmp:
        files = throughput.corpus(Path(tmp), args.files)
        listing = Path(tmp) / "files.json"
        listing.write_text(json.dumps([(str(path), declared) for path, declared in files]))
        throughput.run_triage(files, local_jobs())  # untimed: the new files' caches
        for _ in range(args.rounds):
            command = [sys.executable, __file__, "--floor-child", str(listing)]
            floor = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            for kind in ("bare", "parse", "hardened"):
                results[kind].append(floor[kind])
            results["triage"].append(triage_split(files))
    median = lambda kind, column: statistics.median(row[column] for row in results[kind])  # noqa: E731
    print(f"## The floor of a forked child per image: {len(files)} mixed images, {os.cpu_count()} cores, ")
    print(f"medians of {args.rounds} interleaved rounds; CPU ms per image")
    print(f"{'what':58} {'child':>7} {'faults':>7} {'forking':>8} {'total':>7} {'goal':>6}")
    for kind, what in (
        ("bare", "fork and exit, from a heap like the fork server's"),
        ("parse", "the same, inspecting and encoding (no sandbox, no protocol)"),
        ("hardened", "the same, hardened first as the server's children are"),
    ):
        child, forking, faults = (median(kind, column) for column in range(3))
        total = 1000 * (child + forking)
        print(f"{what:58} {1000 * child:7.2f} {faults:7.0f} {1000 * forking:8.2f} {total:7.2f} {total / GOAL_MS:5.2f}x")
    child, server = (median("triage", column) for column in range(2))
    total = 1000 * (child + server)
    what = "workbench triage (sandboxed children, the fork server)"
    print(f"{what:58} {1000 * child:7.2f} {'':>7} {1000 * server:8.2f} {total:7.2f} {total / GOAL_MS:5.2f}x")
    print(f"(goal: children's CPU per image <= {GOAL_MS} ms, the fork server's share included; 'forking' is the")
    print(" forking process's CPU per image: the fork and its faults in a bare loop in the first three rows, the whole")
    print(" fork server in triage)")


if __name__ == "__main__":
    main()
