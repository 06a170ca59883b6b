"""``workbench demo``: the window's demonstration set, inspected headlessly.

Exit code 0 when every demonstration image was inspected (its verdicts are the point of the demo, most
are rejects on purpose); 30 when one could not be.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ...render.text import summary
from ._common import print_json

if TYPE_CHECKING:
    from pathlib import Path

NAME = "demo"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        NAME,
        help="inspect the built-in demonstration images here (the headless `workbench --demo`)",
        description="Build the demonstration images (a clean qcow2, one with a host backing file, a raw disk "
        "carrying a qcow2 header, a VMDK naming a host file, encrypted images, a tiny file claiming terabytes) "
        "and inspect each in its own sandboxed engine process.",
    )
    parser.add_argument("--out", metavar="DIR", help="keep the images in DIR (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the reports as a JSON array")
    parser.add_argument("-v", "--verbose", action="store_true", help="show informational findings and advice")


def _inspect(folder: Path, args: argparse.Namespace) -> int:
    import asyncio

    from ...demo.images import write_demo
    from ...inspector import Request, inspect_many
    from ...policy import settings as settings_mod

    policy = settings_mod.load().policy()
    requests = [Request(str(image.path), image.declared, policy=policy) for image in write_demo(folder)]
    reports = asyncio.run(inspect_many(requests))
    if args.json:
        print_json(reports)
    else:
        for report in reports:
            print(summary(report, args.verbose), end="\n\n", flush=True)
    return 30 if any(r["verdict"] == "failed" for r in reports) else 0


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        return _inspect(folder, args)
    with tempfile.TemporaryDirectory(prefix="workbench-demo-") as tmp:
        return _inspect(Path(tmp), args)
