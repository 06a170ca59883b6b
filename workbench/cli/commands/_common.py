"""Options and helpers that several subcommands share.

Importing a subcommand module must stay cheap (``workbench --help`` imports them all): the engine's format
modules, the settings and the policy are imported when an option is checked or a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ...policy.formats import FormatNames, check_format_name

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from typing import Any

    from ...policy.policy import Policy

EPILOG = "exit codes: 0 accept, 10 review, 20 reject, 30 could not inspect, 2 usage; several files: the worst"


def _size_arg(text: str) -> int:
    from ...policy.policy import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def declared_format(text: str) -> str:
    """``-f``: a known format name (:func:`~workbench.policy.formats.check_format_name`)."""
    try:
        return check_format_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--declared-format",
        type=declared_format,
        choices=FormatNames(),
        metavar="FMT",
        help="the format the image must have (default: from the file extension); one of %(choices)s",
    )
    parser.add_argument(
        "--max-virtual-size",
        type=_size_arg,
        metavar="SIZE",
        help="largest acceptable logical size, with K, M, G, T, P suffixes (powers of 1024; default: settings, 4T)",
    )
    parser.add_argument("--follow-symlinks", action="store_true", help="open the target of a symbolic link")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds per image (default 20; 120 with --deep)")


def _add_view(parser: argparse.ArgumentParser, name: str, what: str, budget: str, default: int, cap: int) -> None:
    """``--NAME`` (help ``what``) and ``--NAME-budget SIZE`` (``budget`` bytes read at most, within ``cap``)."""

    def size(text: str) -> int:
        value = _size_arg(text)
        if not 0 < value <= cap:
            raise argparse.ArgumentTypeError(f"the {name} budget must lie between 1 byte and {cap >> 20}M")
        return value

    parser.add_argument(f"--{name}", action="store_true", help=what)
    parser.add_argument(
        f"--{name}-budget",
        type=size,
        default=default,
        metavar="SIZE",
        help=f"with --{name}: {budget} read at most, K, M or G suffix (default {default >> 20}M, at most "
        f"{cap >> 20}M); what lies past it is a finding",
    )


def add_guest_options(parser: argparse.ArgumentParser) -> None:
    """``--guest`` and ``--guest-budget`` (docs/guest.md)."""
    from ...schema import DEFAULT_GUEST_BUDGET, MAX_GUEST_BUDGET

    what = (
        "also look inside the guest, through the image's own mapping tables: partitions, volumes, filesystems "
        "and the OS, from their metadata, never mounted (docs/guest.md)"
    )
    _add_view(parser, "guest", what, "guest bytes", DEFAULT_GUEST_BUDGET, MAX_GUEST_BUDGET)


def add_deep_options(parser: argparse.ArgumentParser) -> None:
    """``--deep`` and ``--deep-budget`` (docs/deep.md)."""
    from ...schema import DEFAULT_DEEP_BUDGET, MAX_DEEP_BUDGET

    what = (
        "also read every mapping and metadata table and check it against the file: the allocation map "
        "(as qemu-img map), overlaps, entries past the end, refcounts (docs/deep.md)"
    )
    _add_view(parser, "deep", what, "metadata bytes", DEFAULT_DEEP_BUDGET, MAX_DEEP_BUDGET)


def timeout_of(args: argparse.Namespace) -> float:
    """``--timeout``, else the default for what was asked (a deep inspection may take longer)."""
    if args.timeout is not None:
        return float(args.timeout)
    if not getattr(args, "deep", False):
        from ..early import DEFAULT_TIMEOUT  # the early child is taken only with this timeout

        return DEFAULT_TIMEOUT
    from ...schema import DEEP_TIMEOUT

    return DEEP_TIMEOUT


def policy_from(args: argparse.Namespace) -> Policy:
    """The settings file's policy with the command line's overrides."""
    from ...policy import settings as settings_mod

    policy = settings_mod.load().policy()
    if args.max_virtual_size is not None:
        policy.max_virtual_size = args.max_virtual_size
    return policy


def warn(message: str) -> None:
    """A one-line note on standard error that does not change the outcome."""
    print(f"workbench: {message}", file=sys.stderr)


def print_json(payload: Any, one_or_many: bool = False) -> None:
    """Print ``payload`` as indented ASCII JSON; ``one_or_many``: a list of one is printed as its item."""
    import json

    if one_or_many and isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    print(json.dumps(payload, indent=2, ensure_ascii=True))


def print_reports(reports: list[dict[str, Any]], as_json: bool, text: Callable[[dict[str, Any]], str]) -> None:
    """The reports as JSON, or each one's ``text`` (a failed one's on stderr)."""
    if as_json:
        print_json(reports, one_or_many=True)
        return
    for report in reports:
        stream = sys.stderr if report["verdict"] == "failed" else sys.stdout
        print(text(report), file=stream, flush=True)


def exit_code(reports: list[dict[str, Any]]) -> int:
    from ...policy import policy as policy_mod

    return policy_mod.EXIT_CODES[policy_mod.worst([r["verdict"] for r in reports])]
