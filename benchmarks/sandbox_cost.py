"""What the sandbox costs per image: each hardening step, and a zygote fork versus a fresh process.

Every mode runs on the same image in interleaved rounds (so that a busy machine slows them all alike)
and the table gives milliseconds per image and the ratio to a fresh process with every layer, beside
the parse alone (in this process, no child) and ``qemu-img info`` for scale. The cost of each layer is
timed inside the child (a difference of two process start-ups would drown it in noise).

    python benchmarks/sandbox_cost.py [--rounds 5] [--per-round 8] [IMAGE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.host import runner as client

Run = Callable[[], Awaitable[None]]


def make_image(folder: str) -> str:
    """A qcow2 with a backing file when qemu-img is here (the usual upload), else a small raw file."""
    path = os.path.join(folder, "bench.qcow2")
    qemu = shutil.which("qemu-img")
    if qemu:
        subprocess.run(
            [qemu, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-u", path, "10G"], check=True
        )
    else:
        path = os.path.join(folder, "bench.raw")
        Path(path).write_bytes(bytes(1 << 20))
    return path


def fresh(path: str, layers: list[str] | None, timings: list[dict[str, float]] | None = None) -> Run:
    """A fresh child per image; ``timings`` collects what each hardening step cost inside it."""

    async def run() -> None:
        fd, _ = client.open_image(path)
        try:
            request = {"fd": fd, "path": path, "declared_format": None, "timings": timings is not None}
            if layers is not None:
                request["layers"] = layers
            reply = client.decode_reply(await client.run_fresh(request, (fd,), client.EngineOptions()))
        finally:
            os.close(fd)
        if timings is not None:
            timings.append(reply["timings_ms"])

    return run


def forked(path: str, zygote: client.ForkServerRunner) -> Run:
    async def run() -> None:
        await client.inspect_path(path, None, client.EngineOptions(), runner=zygote)

    return run


def in_process(path: str) -> Run:
    async def run() -> None:
        client.build_in_process(path)

    return run


def qemu_info(path: str) -> Run | None:
    qemu = shutil.which("qemu-img")
    if not qemu:
        return None

    async def run() -> None:
        proc = await asyncio.create_subprocess_exec(
            qemu, "info", "-U", "--output=json", path, stdout=asyncio.subprocess.DEVNULL
        )
        await proc.wait()

    return run


async def measure(modes: dict[str, Run], rounds: int, per_round: int) -> dict[str, float]:
    """Median seconds per image of each mode, from interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in modes}
    for run in modes.values():
        await run()  # warm the page cache and the imports
    for _ in range(rounds):
        for name, run in modes.items():
            started = time.perf_counter()
            for _ in range(per_round):
                await run()
            samples[name].append((time.perf_counter() - started) / per_round)
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(path: str, results: dict[str, float], timings: list[dict[str, float]], rounds: int, per: int) -> None:
    base = results["fresh process, all layers"]
    print(f"image: {path}  ({rounds} rounds x {per} images; median per image)")
    print(f"{'mode':<38} {'ms/image':>9} {'vs fresh':>9}")
    for name, seconds in results.items():
        print(f"{name:<38} {seconds * 1000:9.2f} {seconds / base:8.2f}x")
    print(f"zygote fork versus fresh process: {base / results['zygote fork, all layers']:.1f}x faster per image")
    print()
    print("cost of each hardening step inside a fresh child (median ms):")
    for step in timings[0]:
        print(f"  {step:<14} {statistics.median(t[step] for t in timings):8.3f}")
    total = statistics.median(sum(t.values()) for t in timings)
    print(f"  {'total':<14} {total:8.3f}  ({total / (base * 1000):.1%} of a fresh inspection)")


async def main(image: str | None, rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = image or make_image(folder)
        timings: list[dict[str, float]] = []
        async with client.ForkServerRunner() as zygote:
            modes: dict[str, Run] = {
                "parse only (this process, no child)": in_process(path),
                "fresh process, no layers": fresh(path, []),
                "fresh process, all layers": fresh(path, None, timings),
                "zygote fork, all layers": forked(path, zygote),
            }
            reference = qemu_info(path)
            if reference:
                modes["qemu-img info (for scale)"] = reference
            results = await measure(modes, rounds, per_round)
    print_table(path, results, timings, rounds, per_round)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", nargs="?")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=8)
    options = parser.parse_args()
    asyncio.run(main(options.image, options.rounds, options.per_round))
