"""The guest view of a 20 GiB Linux-like qcow2 beside ``qemu-img convert`` + ``blkid`` + ``debugfs`` doing
the same job, in one run.

Run: python benchmarks/guest.py [--size 20G] [--repeat 3] [--folder /tmp]
Builds a sparse raw disk with the test builders (GPT: /boot ext4 of 512 MiB, then an LVM PV holding LV
vg0/root, ext4 of 16 GiB with /etc/os-release, and LV vg0/swap of 2 GiB), converts it with
``qemu-img convert -O qcow2`` and deletes the raw file. Then, median of ``--repeat``:
- ours: ``workbench inspect --guest --json -f qcow2`` (a fresh sandboxed child);
- theirs: ``qemu-img convert -O raw`` to a scratch file, ``sfdisk --json``, ``blkid -p -O OFFSET -o export``
  per volume (the LV offsets given to it: without root and loop devices nothing here can activate the
  volume group), ``debugfs`` stat of /etc/os-release and ``cat`` of its target; the scratch file deleted.
Bytes read: each command's process tree ``rchar`` (/proc/PID/io of a shell after it reaped the command:
every byte read by read/pread, image or not, Python's own modules included), and for ours also the
report's ``bytes_read`` (bytes of the image file only: header and guest reads) and ``guest.bytes_read``
(guest bytes examined, in 4 KiB blocks; unallocated ones cost no file read). The last lines are ratios
ours / theirs (below 1: we do less).
Everything is made under ``--folder`` and deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.builders.guest_disks import linux_disk  # noqa: E402
from tests.builders.lvm import PE_START  # noqa: E402
from workbench.policy.policy import parse_size  # noqa: E402

MIB, GIB = 1 << 20, 1 << 30
REAPED_IO = '"$@"; status=$?; cat /proc/$$/io >&2; exit $status'  # the shell's counters include its child's


def measured(*cmd: str | Path, ok: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Run ``cmd`` (exit status in ``ok``): seconds, bytes its process tree read (``rchar``), its output."""
    started = time.perf_counter()
    out = subprocess.run(["sh", "-c", REAPED_IO, "sh", *map(str, cmd)], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if out.returncode not in ok:
        raise SystemExit(f"{cmd[0]} exited {out.returncode}: {out.stderr[-2000:]}")
    rchar = next(int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("rchar:"))
    return seconds, rchar, out.stdout


def ours(image: Path) -> tuple[float, int, dict[str, Any]]:
    seconds, rchar, out = measured(
        sys.executable, "-m", "workbench", "inspect", "--guest", "--json", "-f", "qcow2", image, ok=(0, 10)
    )
    return seconds, rchar, json.loads(out)


def theirs(image: Path, scratch: Path, lvs: list[int]) -> tuple[float, int, dict[int, dict[str, str]], str]:
    """The same job with the tools: what blkid exports per volume start, and debugfs's os-release."""
    steps = [measured("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, scratch)]
    steps.append(measured("sfdisk", "--json", scratch))
    parts = json.loads(steps[-1][2])["partitiontable"]["partitions"]
    found: dict[int, dict[str, str]] = {}
    for start in [p["start"] * 512 for p in parts] + lvs:
        steps.append(measured("blkid", "-p", "-O", str(start), "-o", "export", scratch))
        found[start] = dict(line.split("=", 1) for line in steps[-1][2].splitlines() if "=" in line)
    device = f"{scratch}?offset={lvs[0]}"
    steps.append(measured("debugfs", "-R", "stat /etc/os-release", device))
    target = steps[-1][2].split('Fast link dest: "', 1)[1].split('"', 1)[0]  # ../usr/lib/os-release
    steps.append(measured("debugfs", "-R", f"cat /etc/{target}", device))
    scratch.unlink()
    return sum(s[0] for s in steps), sum(s[1] for s in steps), found, steps[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20G")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", default=tempfile.gettempdir())
    args = parser.parse_args()
    size = parse_size(args.size)
    root, swap, boot = size * 4 // 5 // (4 * MIB) * 4 * MIB, size // 10 // (4 * MIB) * 4 * MIB, 512 * MIB
    with tempfile.TemporaryDirectory(dir=args.folder) as work:
        folder = Path(work)
        started = time.perf_counter()
        raw, parts, _ = linux_disk(folder, size, boot, root, swap)
        image = folder / "linux.qcow2"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(image)], check=True)
        raw.unlink()
        root_at = parts[1]["start"] * 512 + PE_START
        lvs = [root_at, root_at + root]
        print(
            f"# {args.size} disk built and converted in {time.perf_counter() - started:.1f} s; qcow2 file "
            f"{image.stat().st_size} bytes, {image.stat().st_blocks * 512} allocated"
        )
        runs_ours = [ours(image) for _ in range(args.repeat)]
        runs_theirs = [theirs(image, folder / "scratch.raw", lvs) for _ in range(args.repeat)]
        report, found, os_release = runs_ours[0][2], runs_theirs[0][2], runs_theirs[0][3]
        guest = report["guest"]
        agree = (
            all(
                (v["filesystem"] or v["container"] or {}).get("uuid") == found[v["start"]].get("UUID")
                for v in guest["volumes"]
            )
            and guest["volumes"][2]["os"]["name"] in os_release
        )
        print(f"# verdict {report['verdict']}; {len(guest['volumes'])} volumes; blkid/debugfs agree: {agree}")
        ours_s, ours_b = statistics.median(r[0] for r in runs_ours), statistics.median(r[1] for r in runs_ours)
        theirs_s, theirs_b = (statistics.median(r[i] for r in runs_theirs) for i in (0, 1))
        print(f"{'measure':<58}{'median s':>10}{'bytes read':>16}")
        print(f"{'workbench inspect --guest (sandboxed), process tree':<58}{ours_s:>10.3f}{ours_b:>16,}")
        print(f"{'  image file bytes read (report bytes_read)':<58}{'':>10}{report['bytes_read']:>16,}")
        print(f"{'  guest bytes examined (guest.bytes_read)':<58}{'':>10}{guest['bytes_read']:>16,}")
        print(f"{'  the guest view itself (guest.elapsed_ms, first run)':<58}{guest['elapsed_ms'] / 1000:>10.3f}")
        print(f"{'qemu-img convert -O raw + sfdisk + blkid x4 + debugfs x2':<58}{theirs_s:>10.3f}{theirs_b:>16,}")
        print(f"ratio time ours / theirs: {ours_s / theirs_s:.3f}")
        print(f"ratio bytes ours (process tree) / theirs: {ours_b / theirs_b:.5f}")
        print(f"ratio bytes ours (image file bytes) / theirs: {report['bytes_read'] / theirs_b:.6f}")


if __name__ == "__main__":
    main()
