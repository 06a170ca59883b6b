"""``workbench inspect``: one sandboxed engine child per image, a verdict per image."""

from __future__ import annotations

import argparse

from ._common import (
    EPILOG,
    add_deep_options,
    add_guest_options,
    add_policy_options,
    exit_code,
    policy_from,
    print_reports,
    timeout_of,
    warn,
)

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from typing import Any

    from ...host.direct import Child
    from ...inspector import Request

NAME = "inspect"
MAX_DEPTH = 16  # chain.DEFAULT_MAX_DEPTH, held equal by a test: the chain module is imported for --chain only


def register(sub: Any) -> None:
    parser = sub.add_parser(
        NAME,
        help="inspect images and print a verdict",
        description="Inspect each image in its own sandboxed engine process and print a verdict.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="an image file, or an s3://bucket/key, https:// or http:// URL"
    )
    parser.add_argument("--endpoint-url", metavar="URL", help="the S3 endpoint (else AWS_ENDPOINT_URL_S3 / _URL)")
    add_policy_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (one object, or an array for several)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show informational findings and advice")
    add_guest_options(parser)
    add_deep_options(parser)
    parser.add_argument(
        "--chain",
        action="store_true",
        help="follow backing files that lie inside the allowed folders and inspect every link (docs/chains.md)",
    )
    parser.add_argument(
        "--allow-root",
        action="append",
        default=[],
        metavar="DIR",
        help="with --chain: another folder backing files may lie in (repeatable; the image's own folder and the "
        "settings' allowed folders always are)",
    )
    parser.add_argument(
        "--max-depth",
        type=_positive,
        default=MAX_DEPTH,
        metavar="N",
        help=f"with --chain: inspect at most N links (default {MAX_DEPTH})",
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from ...host.urls import is_remote

    child = _start_child(args)
    try:
        from ...inspector import Request

        policy = policy_from(args)
        requests = [
            Request(
                path,
                args.declared_format,
                args.follow_symlinks,
                policy,
                timeout_of(args),
                guest=args.guest,
                guest_budget=args.guest_budget,
                endpoint_url=args.endpoint_url,
                deep=args.deep,
                deep_budget=args.deep_budget,
            )
            for path in args.files
        ]
        if args.chain:
            if any(is_remote(path) for path in args.files):
                warn("--chain follows backing files on this machine: it does not take URLs")
                return 2
            return _run_chains(requests, args)
        reports = _inspect_all(requests, args.deep, child)
    finally:
        if child is not None:
            child.close()
    from ...render.text import summary

    print_reports(reports, args.json, lambda report: summary(report, args.verbose))
    return exit_code(reports)


def _start_child(args: argparse.Namespace) -> Child | None:
    """For one local image (no chain, no deep inspection, on POSIX): its engine child, started before the
    settings, the validator and the policy load (or even before the command line was read: :mod:`..early`)."""
    from ...host.urls import is_remote

    if len(args.files) != 1 or args.chain or is_remote(args.files[0]):
        return None
    from ...host import direct
    from .. import early

    if not direct.available(args.deep):
        return None
    path, follow, timeout = args.files[0], args.follow_symlinks, timeout_of(args)
    return early.take(path, follow, timeout) or direct.Child(path, follow, None, timeout)


def _inspect_all(requests: list[Request], deep: bool = False, child: Child | None = None) -> list[dict[str, Any]]:
    """One local image: a fresh engine process (``child``, when already started), waited for without an event
    loop. Several: children forked from one sandboxed server, which costs one process start for the batch
    instead of one per image."""
    from ...inspector import direct_path, inspect_direct

    if len(requests) == 1 and direct_path(requests[0]):
        return [inspect_direct(requests[0], child)]
    import asyncio

    return asyncio.run(_inspect_async(requests, deep))


async def _inspect_async(requests: list[Request], deep: bool) -> list[dict[str, Any]]:
    """The event-loop path; a deep inspection draws its progress on standard error when that is a terminal."""
    from ...host.runner import FRESH
    from ...inspector import inspect_many
    from ..progress import TerminalProgress

    bar = TerminalProgress([request.path for request in requests]) if deep and TerminalProgress.wanted() else None
    if bar is not None:
        for number, request in enumerate(requests):
            request.on_progress = bar.callback(number)
    try:
        if len(requests) == 1:
            return await inspect_many(requests)
        from ...triage import run as triage

        async with triage.engine_pool(requests[0].policy.required_layers, warn) as pool:
            return await inspect_many(requests, runner=pool or FRESH)
    finally:
        if bar is not None:
            bar.erase()


def chain_text(report: dict[str, Any], verbose: bool = False) -> str:
    """Each link's summary, the image first, then where and why the chain stopped."""
    from ...render.text import summary
    from ...render.textsafe import printable

    links = report["chain"]
    verdict = report["chain_verdict"].upper()
    lines = [f"chain of {printable(report['path'], 1024)}: {verdict} ({len(links)} link(s))"]
    for number, link in enumerate(links, 1):
        how = "the image" if link["named_as"] is None else f"named '{printable(link['named_as'], 1024)}'"
        probed = ", format probed" if link["probed"] else ""
        lines += [f"[link {number}: {how}{probed}]", summary(link, verbose)]
    end = report["chain_end"]
    lines.append(f"[chain ends: {end['reason']}: {printable(end['detail'], 1024)}]")
    return "\n".join(lines)


def _run_chains(requests: list[Request], args: argparse.Namespace) -> int:
    import asyncio

    from ... import chain as chain_mod
    from ...policy import policy as policy_mod
    from ...policy import settings as settings_mod

    roots = [*args.allow_root, *settings_mod.load().allowed_roots]

    async def follow_all() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(chain_mod.follow(r, roots, args.max_depth) for r in requests)))

    reports = asyncio.run(follow_all())
    print_reports(reports, args.json, lambda report: chain_text(report, args.verbose))
    return policy_mod.EXIT_CODES[policy_mod.worst([r["chain_verdict"] for r in reports])]
