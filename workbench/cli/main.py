"""The command line: subcommands from :mod:`workbench.cli.commands`; without one, the window starts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from .commands import command_names, load
from .commands._common import EPILOG

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from typing import Any

WINDOW_USAGE = "workbench [FILE...] | workbench --demo   open the window (on these images, or on demonstration images)"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e6:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def add_window_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The window's options: parsed by the window, listed by ``workbench --help`` too."""
    parser.add_argument("--demo", action="store_true", help="open the window on built-in demonstration images")
    parser.add_argument("--theme", choices=("system", "light", "dark"), help="colour scheme for this run")
    parser.add_argument(
        "--quit-after",
        type=_seconds,
        metavar="SECONDS",
        help="quit (exit status 0) once nothing has been under way for SECONDS: for smoke tests and screenshots",
    )


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing :mod:`shutil` (with ``bz2``, ``lzma`` and
    ``fnmatch``: ~2 ms of ``--help``, 5% of it): ``COLUMNS`` when a positive number, else the width of the
    terminal on standard output, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, told the width it would ask :mod:`shutil` for."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, terminal_columns() - 2 if width is None else width)


class _RawDescription(_Formatter, argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """A subcommand's parser: with :class:`_Formatter` unless told another."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``only``: with that subcommand alone, for a run of it (the others' modules stay
    unimported: a single ``inspect`` starts its engine child sooner)."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Disk Image Workbench: inspect untrusted virtual disk images without trusting them.\n"
        + WINDOW_USAGE,
        epilog=EPILOG,
        formatter_class=_RawDescription,
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    add_window_options(parser.add_argument_group("window options (without a COMMAND; workbench [FILE...])"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name in [only] if only else command_names():
        load(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = command_names()
    if not argv or argv[0] not in commands and argv[0] not in ("-h", "--help", "--version"):
        from ..app import run_gui  # Qt is imported only when the window is wanted

        return run_gui(argv)
    args = build_parser(argv[0] if argv[0] in commands else None).parse_args(argv)
    try:
        return int(load(args.command).run(args))
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, like other tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
