"""Bytes read and time per image for each format, beside ``qemu-img info`` on the same files.

Run: python benchmarks/per_format.py [--repeat N]
Prints one row per image: bytes the engine read, the engine's own parse time (in-process), the time of
a whole sandboxed inspection (parent + child, as `workbench inspect` does it), and qemu-img info's time;
the last column is qemu-img's time divided by the sandboxed inspection's (above 1: we are faster).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.host.runner import build_in_process  # noqa: E402
from workbench.inspector import Request, inspect  # noqa: E402

SECRET = "sec0"
KEY = ["--object", f"secret,id={SECRET},data=pw"]
CORPUS = [
    ("qcow2-v3.qcow2", "qcow2", []),
    ("qcow2-v2.qcow2", "qcow2", ["-o", "compat=0.10"]),
    ("qcow2-luks.qcow2", "qcow2", [*KEY, "-o", f"encrypt.format=luks,encrypt.key-secret={SECRET}"]),
    ("qcow1.qcow", "qcow", []),
    ("qed.qed", "qed", []),
    ("luks.luks", "luks", [*KEY, "-o", f"key-secret={SECRET}"]),
    ("raw.raw", "raw", []),
    ("sparse.vmdk", "vmdk", []),
    ("stream.vmdk", "vmdk", ["-o", "subformat=streamOptimized"]),
    ("dynamic.vhd", "vpc", []),
    ("fixed.vhd", "vpc", ["-o", "subformat=fixed"]),
    ("dynamic.vhdx", "vhdx", []),
    ("dynamic.vdi", "vdi", []),
    ("parallels.hdd", "parallels", []),
]  # fmt: skip


def make_corpus(folder: Path) -> list[tuple[Path, str]]:
    made = []
    for name, fmt, options in CORPUS:
        path = folder / name
        size = "16M" if fmt == "luks" or "fixed" in name else "1G"
        cmd = ["qemu-img", "create", "-q", "-f", fmt, *options, str(path), size]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            made.append((path, fmt))
        else:
            print(f"# qemu-img could not create {name}; left out", file=sys.stderr)
    return made


def median_ms(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(Path(tmp))
        heads = ("bytes read", "parse ms", "sandboxed ms", "qemu-img ms", "ratio")
        print(f"{'image':22} {'format':9} " + " ".join(f"{h:>12}" for h in heads))
        for path, fmt in corpus:
            rep = build_in_process(path, fmt)
            parse = median_ms(lambda p=path, f=fmt: build_in_process(p, f), args.repeat)
            whole = median_ms(lambda p=path, f=fmt: asyncio.run(inspect(Request(str(p), f))), args.repeat)
            qemu = median_ms(
                lambda p=path, f=fmt: subprocess.run(
                    ["qemu-img", "info", "--output=json", "-U", "-f", f, str(p)], capture_output=True
                ),
                args.repeat,
            )
            print(
                f"{path.name:22} {rep['format']:9} {rep['bytes_read']:>12} {parse:>12.2f} {whole:>12.1f} "
                f"{qemu:>12.1f} {qemu / whole:>12.2f}"
            )


if __name__ == "__main__":
    main()
