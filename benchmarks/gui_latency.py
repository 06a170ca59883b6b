"""Window responsiveness: drop-to-result latency for one image, and the longest UI stall while many
images are inspected by real sandboxed engine children.

A QTimer heartbeat ticks every few milliseconds; a stall is how late a tick fires. Goals from the
issue: one image from drop to shown result under 200 ms, and no stall over 50 ms.

    python benchmarks/gui_latency.py [--images 1000] [--drops 10] [--jobs N]

Runs offscreen unless DISPLAY is set (then under that X server, e.g. Xvfb).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qasync  # noqa: E402
from PySide6.QtCore import QMimeData, QTimer, QUrl  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.builders import qcow2  # noqa: E402
from workbench.policy.settings import Settings  # noqa: E402
from workbench.ui.main_window import MainWindow  # noqa: E402

TICK_MS = 5
LATENCY_GOAL_MS = 200
STALL_GOAL_MS = 50


class Heartbeat:
    """Records how late each tick of a short QTimer fires: the UI thread's stalls.

    Beside each stall it keeps the CPU time the UI thread itself used in that gap, which tells a stall
    caused by the window's own work from one where the thread simply did not get a CPU (a busy machine).
    """

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last = self.last_cpu = 0.0
        self.stalls: list[float] = []
        self.busy: list[float] = []

    def start(self) -> None:
        self.stalls, self.busy = [], []
        self.last, self.last_cpu = time.perf_counter(), time.thread_time()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.stalls.append(max(0.0, (now - self.last) * 1000 - TICK_MS))
        self.busy.append((cpu - self.last_cpu) * 1000)
        self.last, self.last_cpu = now, cpu

    def worst(self) -> tuple[float, float]:
        """The longest stall and the UI thread's own CPU milliseconds within it."""
        if not self.stalls:
            return 0.0, 0.0
        index = max(range(len(self.stalls)), key=self.stalls.__getitem__)
        return self.stalls[index], self.busy[index]


def _images(folder: Path, count: int) -> list[Path]:
    """Small qcow2 images (some with a backing file, some claiming huge sizes) and raw disks."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = [
        lambda: qcow2.qcow2(64 << 20, cluster_bits=12),
        lambda: qcow2.qcow2(64 << 20, cluster_bits=12, backing="/etc/passwd", backing_format="raw"),
        lambda: qcow2.qcow2(2 << 40, cluster_bits=16),
        lambda: bytes(16 << 10),
    ]
    made = [kind() for kind in kinds]
    paths = []
    for number in range(count):
        suffix = ".raw" if number % len(kinds) == 3 else ".qcow2"
        path = folder / f"image-{number:05d}{suffix}"
        path.write_bytes(made[number % len(kinds)])
        paths.append(path)
    return paths


def _mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


async def _wait(condition: object, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not finish in time")
        await asyncio.sleep(0.001)


async def _one_drop(window: MainWindow, path: Path) -> float:
    """Milliseconds from dropping ``path`` until its result is in the window."""
    done = asyncio.Event()
    took: list[float] = []
    started = time.perf_counter()

    def finished(entry: object) -> None:
        if getattr(entry, "path", None) == str(path):
            took.append((time.perf_counter() - started) * 1000)
            done.set()

    window.session.finished.connect(finished)  # after the window's own slot: the result is shown by now
    window.handle_drop(_mime(path))
    await asyncio.wait_for(done.wait(), 30)
    window.session.finished.disconnect(finished)
    return took[0]


async def drop_latency(window: MainWindow, paths: list[Path]) -> list[float]:
    """Drop-to-result milliseconds, one image at a time, each selected as a user would look at it."""
    shown = []
    for path in paths:
        shown.append(await _one_drop(window, path))
        window.select(window.model.find(str(path)))
    return shown


async def bulk(window: MainWindow, folder: Path, count: int, heartbeat: Heartbeat) -> float:
    """Seconds to triage every image of ``folder`` dropped at once (it opens the triage table), with the
    heartbeat running."""
    heartbeat.start()
    started = time.perf_counter()
    window.handle_drop(_mime(folder))
    await _wait(lambda: bool(window.triages), 60)
    await _wait(lambda: not window.triages[-1].running(), 3600)
    elapsed = time.perf_counter() - started
    heartbeat.stop()
    return elapsed


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp, tempfile.TemporaryDirectory() as config:
        os.environ["XDG_CONFIG_HOME"] = config
        root = Path(tmp)
        singles = _images(root / "singles", args.drops)
        _images(root / "bulk", args.images)
        window = MainWindow(Settings(), jobs=args.jobs)
        window.show()
        heartbeat = Heartbeat()
        await drop_latency(window, singles[:1])  # warm-up: imports and caches, not measured
        window.clear()
        heartbeat.start()
        latencies = await drop_latency(window, singles[1:] or singles)
        heartbeat.stop()
        drop_stall, drop_busy = heartbeat.worst()
        window.clear()
        elapsed = await bulk(window, root / "bulk", args.images, heartbeat)
        verdicts = dict(sorted(window.triages[-1].counts.items()))  # the triage table's rows, per verdict
        window.session.cancel()
        window.close()

    median = statistics.median(latencies)
    worst, worst_busy = heartbeat.worst()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"engine jobs at once: {window.session.jobs}; CPUs: {os.cpu_count()}; load average: {load:.1f}; "
        f"platform: {QApplication.platformName()}"
    )
    print(
        f"drop-to-result, one image ({len(latencies)} drops): median {median:.0f} ms, "
        f"max {max(latencies):.0f} ms (goal < {LATENCY_GOAL_MS} ms); longest stall {drop_stall:.1f} ms "
        f"(UI thread busy {drop_busy:.1f} ms of it)"
    )
    print(
        f"{args.images} images in {elapsed:.1f} s ({args.images / elapsed:.1f} images/s), verdicts {verdicts}; "
        f"UI stalls over {len(heartbeat.stalls)} ticks: median {statistics.median(heartbeat.stalls):.1f} ms, "
        f"p99 {_percentile(heartbeat.stalls, 0.99):.1f} ms, max {worst:.1f} ms (goal < {STALL_GOAL_MS} ms; "
        f"UI thread busy {worst_busy:.1f} ms of it); longest the UI thread itself was busy between two ticks: "
        f"{max(heartbeat.busy, default=0.0):.1f} ms"
    )
    ok = median < LATENCY_GOAL_MS and worst < STALL_GOAL_MS
    print("goals met" if ok else "goals NOT met")
    return 0 if ok else 1


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="images dropped at once (default 1000)")
    parser.add_argument("--drops", type=int, default=11, help="single-image drops timed (default 11, first is warm-up)")
    parser.add_argument("--jobs", type=int, default=None, help="engine children at once (default: CPU count)")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        return loop.run_until_complete(main(args))


if __name__ == "__main__":
    sys.exit(run())
