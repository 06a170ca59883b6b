"""The command line: subcommands from :mod:`workbench.commands`; without one, the window starts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .commands import discover
from .commands._common import EPILOG

WINDOW_USAGE = "workbench [FILE...] | workbench --demo   open the window (on these images, or on demonstration images)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Disk Image Workbench: inspect untrusted virtual disk images without trusting them.\n"
        + WINDOW_USAGE,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in discover().values():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = discover()
    if not argv or argv[0] not in commands and argv[0] not in ("-h", "--help", "--version"):
        from .app import run_gui  # Qt is imported only when the window is wanted

        return run_gui(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(commands[args.command].run(args))
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, like other tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
