"""``workbench inspect``: one sandboxed engine child per image, a verdict per image."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..inspector import Request, inspect_many
from ..render_text import summary
from ._common import EPILOG, add_policy_options, exit_code, policy_from

NAME = "inspect"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        NAME,
        help="inspect images and print a verdict",
        description="Inspect each image in its own sandboxed engine process and print a verdict.",
        epilog=EPILOG,
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    add_policy_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (one object, or an array for several)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show informational findings and advice")


def run(args: argparse.Namespace) -> int:
    policy = policy_from(args)
    requests = [Request(path, args.declared_format, args.follow_symlinks, policy, args.timeout) for path in args.files]
    reports = asyncio.run(inspect_many(requests))
    if args.json:
        payload = reports[0] if len(reports) == 1 else reports
        print(json.dumps(payload, indent=2, ensure_ascii=True))
    else:
        for report in reports:
            stream = sys.stderr if report["verdict"] == "failed" else sys.stdout
            print(summary(report, args.verbose), file=stream, flush=True)
    return exit_code(reports)
