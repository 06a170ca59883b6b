"""Options and helpers that several subcommands share."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from ..engine.formats import KNOWN_NAMES
from ..models import policy as policy_mod
from ..models import settings as settings_mod

EPILOG = "exit codes: 0 accept, 10 review, 20 reject, 30 could not inspect, 2 usage; several files: the worst"


def _size_arg(text: str) -> int:
    try:
        return policy_mod.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


ALIASES = {"vhd": "vpc", "img": "raw", "qcow3": "qcow2", "hdd": "parallels", "udif": "dmg", "iso9660": "iso"}


def declared_format(text: str) -> str:
    """A known format name; a common other name (``vhd``) is refused with the name to use (``vpc``)."""
    if text in KNOWN_NAMES:
        return text
    hint = ALIASES.get(text.lower()) or next(iter(difflib.get_close_matches(text.lower(), KNOWN_NAMES, 1)), None)
    suggestion = f"; did you mean {hint}?" if hint else ""
    raise argparse.ArgumentTypeError(f"unknown format {text!r}{suggestion} (one of {', '.join(KNOWN_NAMES)})")


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--declared-format",
        type=declared_format,
        metavar="FMT",
        help="the format the image must have (default: from the file extension); one of " + ", ".join(KNOWN_NAMES),
    )
    parser.add_argument(
        "--max-virtual-size",
        type=_size_arg,
        metavar="SIZE",
        help="largest acceptable logical size, with K, M, G, T, P suffixes (powers of 1024; default: settings, 4T)",
    )
    parser.add_argument("--follow-symlinks", action="store_true", help="open the target of a symbolic link")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="S", help="seconds per image (default 20)")


def policy_from(args: argparse.Namespace) -> policy_mod.Policy:
    """The settings file's policy with the command line's overrides."""
    policy = settings_mod.load().policy()
    if args.max_virtual_size is not None:
        policy.max_virtual_size = args.max_virtual_size
    return policy


def warn(message: str) -> None:
    """A one-line note on standard error that does not change the outcome."""
    print(f"workbench: {message}", file=sys.stderr)


def exit_code(reports: list[dict[str, Any]]) -> int:
    return policy_mod.EXIT_CODES[policy_mod.worst([r["verdict"] for r in reports])]
