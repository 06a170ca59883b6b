"""``workbench sandbox-check``: which isolation layers an engine child gets here, and what they stop."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ...render.textsafe import printable
from ._common import print_json

NAME = "sandbox-check"
EXIT_OK = 0
EXIT_WEAK = 1  # a required layer is missing, or a forbidden thing got through
EXIT_FAILED = 30
ATTEMPT_TITLES = {
    "open": "open /etc/passwd",
    "stat": "stat /etc/passwd",
    "connect": "connect to 127.0.0.1 (TCP)",
    "udp": "send to 127.0.0.1 (UDP)",
    "unix": "connect to a Unix socket (path)",
    "abstract": "connect to an abstract Unix socket",
    "signal": "signal another process",
    "write": "create a file in /tmp",
    "fork": "fork a process",
    "exec": "exec /bin/true",
    "memory": "allocate 2 GiB",
    "cpu": "spin past the CPU limit",
}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        NAME,
        help="show which sandbox layers are active and test them",
        description="Start engine children the way an inspection does, have them try forbidden things, "
        "and show each isolation layer and what stopped each attempt. Exit status 1 when a layer the "
        "policy requires is missing or an attempt got through.",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _table(rows: list[tuple[str, str, str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]


def _sections(title: str, child: dict[str, Any], required: set[str]) -> list[str]:
    layer_rows = [("layer", "required", "status")]
    for name, status in child["layers"].items():
        layer_rows.append((name, "yes" if name in required else "", printable(status, 200)))
    attempt_rows = [("attempt", "outcome", "how")]
    for name, outcome in child["probes"].items():
        verdict = "blocked" if outcome.get("blocked") else "ALLOWED"
        attempt_rows.append((ATTEMPT_TITLES.get(name, name), verdict, printable(outcome.get("detail", ""), 200)))
    return [f"{title} sandbox layers:", *_table(layer_rows), "", "Forbidden attempts:", *_table(attempt_rows), ""]


def render(result: dict[str, Any]) -> str:
    required = {option for need in result["required"] for option in need.split("|")}
    lines = _sections("Engine child", result, required)
    forked = result.get("zygote")
    if forked and "error" in forked:
        lines += [f"FORK SERVER DID NOT START: {printable(forked['error'], 500)}", ""]
    elif forked:
        lines += _sections("Child forked by the fork server", forked, required)
    if result["missing"]:
        lines.append(f"REQUIRED LAYERS MISSING: {', '.join(result['missing'])}: inspections are refused")
    if result["escaped"]:
        lines.append(f"NOT BLOCKED: {', '.join(result['escaped'])}")
    if result["ok"]:
        lines.append("All required layers are on and every attempt was blocked.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ...host.runner import InspectError
    from ...host.sandbox_check import check
    from ...policy import settings as settings_mod

    required = settings_mod.load().policy().required_layers
    try:
        result = asyncio.run(check(required))
    except InspectError as exc:
        print(f"sandbox-check: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json(result)
    else:
        print(render(result))
    return EXIT_OK if result["ok"] else EXIT_WEAK
