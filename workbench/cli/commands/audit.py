"""``workbench audit``: check libvirt domain XML and qemu.conf against the "Secure Usage of Libvirt" guidance."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ...audit import DEFAULT_IMAGE_ROOTS, KINDS
from ._common import EPILOG, exit_code, print_reports

NAME = "audit"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        NAME,
        help="audit libvirt domain XML and qemu.conf files",
        description="Check libvirt domain XML (virsh dumpxml) and qemu.conf for format probing, migration "
        "network and storage encryption settings, and print a verdict per file.",
        epilog=EPILOG,
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print JSON (one object, or an array for several)")
    parser.add_argument(
        "--kind", choices=KINDS, help="what the files are (default: domain XML when a file starts with '<')"
    )
    parser.add_argument(
        "--image-root",
        action="append",
        default=[],
        metavar="DIR",
        help="another folder where disk images may live (repeatable); always: " + ", ".join(DEFAULT_IMAGE_ROOTS),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show informational findings too")


def run(args: argparse.Namespace) -> int:
    from ...audit.report import audit_path, summary  # XML parsing is loaded only when there is XML to audit

    roots = [os.path.abspath(root) for root in args.image_root]
    reports = [audit_path(path, args.kind, roots) for path in args.files]
    print_reports(reports, args.json, lambda report: summary(report, args.verbose))
    return exit_code(reports)
