"""Starting the window: ``workbench [FILE...]``, ``workbench --demo``, ``--theme``, ``--quit-after``.

asyncio runs inside the Qt event loop (qasync), so engine children are awaited without blocking the
window; the loop starts once the window's first frame is painted. Exceptions that escape a slot or a task
are logged and shown in the window, never lost.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from .cli.main import WINDOW_USAGE, add_window_options

if TYPE_CHECKING:
    import asyncio

    from PySide6.QtWidgets import QApplication

    from .ui.main_thread_gc import MainThreadCollector
    from .ui.main_window import MainWindow

log = logging.getLogger("workbench")
TIMING_VARIABLE = "WORKBENCH_STARTUP_TIMING"  # set to 1: the first paint's time since process start, on stderr
_IMPORTED = time.time()


def process_started() -> float:
    """When this process started, in :func:`time.time` seconds: the kernel's record (Linux, in clock ticks,
    usually 10 ms), else the time this module was first imported."""
    try:
        with open("/proc/self/stat", "rb") as stat:  # field 22, after the command name in parentheses
            ticks = int(stat.read().rpartition(b")")[2].split()[19])
        since_boot = ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED


def report_first_paint(stream: Any = None) -> None:
    """Write when the first frame was complete: milliseconds since process start, and the wall clock time
    (for a benchmark that noted when it started the process)."""
    now = time.time()
    print(
        f"workbench: first paint {(now - process_started()) * 1000:.1f} ms after process start (at {now:.6f})",
        file=stream or sys.stderr,
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        usage="%(prog)s [-h] [--demo] [--theme {system,light,dark}] [--quit-after SECONDS] [FILE ...]",
        description=WINDOW_USAGE + "\nSubcommands (inspect, triage, ...): workbench COMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="images or folders to open")
    add_window_options(parser)
    return parser


def quit_when_idle(window: Any, seconds: float, quit: Callable[[], None], check_ms: int | None = None) -> Any:
    """A timer that calls ``quit`` once ``window.busy()`` has been false for ``seconds`` in a row, checked every
    ``check_ms`` (by default 10 ms for under a second, else 100 ms): ``--quit-after 0`` quits at the first
    idle check, so a start-up timing does not include the timer's own wait."""
    from PySide6.QtCore import QTimer

    idle_since: list[float] = []

    def check() -> None:
        if window.busy():
            idle_since.clear()
            return
        if not idle_since:
            idle_since.append(time.monotonic())
        if time.monotonic() - idle_since[0] >= seconds:
            timer.stop()
            quit()

    timer = QTimer(window)
    timer.setInterval(check_ms if check_ms is not None else 10 if seconds < 1 else 100)
    timer.timeout.connect(check)
    timer.start()
    return timer


def _install_error_handlers(window: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Route exceptions from slots (sys.excepthook) and from tasks (the loop's handler) to the window."""

    def show(summary: str, details: str) -> None:
        log.error("%s\n%s", summary, details)
        window.notify(f"Internal error: {summary} (details in the log)")

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        show(f"{kind.__name__}: {value}", "".join(traceback.format_exception(kind, value, tb)))

    def loop_handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        detail = "".join(traceback.format_exception(exc)) if exc else ""
        show(str(context.get("message") or exc), detail)

    sys.excepthook = excepthook
    loop.set_exception_handler(loop_handler)


def open_arguments(window: Any, files: list[str], demo: bool) -> None:
    """Open what the command line names. The main window shows unless all it named went to triage
    tables (a folder, many files): then only the tables open, and the main window when a row is opened."""
    if demo:
        window.open_demo()
    if files:
        window.open_paths(files)
    if demo or window.model.rowCount() or not window.triages:
        window.show()


def first_frame(args: argparse.Namespace) -> tuple[QApplication, MainWindow, MainThreadCollector]:
    """The window, with what the command line opened listed, painted once if it shows; no event loop yet.

    Inspections, audits and triage tables wait in the session (:meth:`~workbench.ui.session.Session.hold`)
    until :func:`run_gui` has started the loop: qasync and asyncio are imported after the first frame."""
    from PySide6.QtWidgets import QApplication

    from .ui import theme
    from .ui.icons import icon
    from .ui.main_thread_gc import MainThreadCollector
    from .ui.main_window import MainWindow

    app = cast(QApplication, QApplication.instance() or QApplication([sys.argv[0]]))
    app.setApplicationName("workbench")
    app.setApplicationDisplayName("Disk Image Workbench")
    app.setDesktopFileName("workbench")
    app.setWindowIcon(icon("workbench"))
    collector = MainThreadCollector(app)  # Qt objects are freed on this thread only (ui/main_thread_gc.py)
    window = MainWindow()
    theme.apply(app, args.theme or window.settings.theme)
    if args.theme:
        window.theme_actions[args.theme].setChecked(True)
    if os.environ.get(TIMING_VARIABLE) == "1":
        window.first_paint.then(report_first_paint)
    window.session.hold()
    open_arguments(window, args.files, args.demo)
    if window.isVisible():
        window.first_paint.wait()
    return app, window, collector


def run_gui(argv: Sequence[str]) -> int:
    """Open the window; returns the process exit code."""
    args = build_parser().parse_args(list(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app, window, collector = first_frame(args)
    import asyncio

    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    _install_error_handlers(window, loop)
    window.session.release()
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    if args.quit_after is not None:

        def quit_app() -> None:
            window.close()
            app.quit()

        quit_when_idle(window, args.quit_after, quit_app)
    with loop:
        loop.run_until_complete(closed.wait())
        window.session.close()  # closing the window did this already; quitting another way may not have
        with contextlib.suppress(TimeoutError):  # the server also leaves when its socket closes with us
            loop.run_until_complete(asyncio.wait_for(window.session.stopped(), 5))
    collector.stop()
    return 0
