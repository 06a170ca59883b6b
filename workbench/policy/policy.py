"""Policy and verdict: what the site accepts, applied to a validated report.

The settings import this module for :class:`Policy` before ``workbench inspect FILE`` can send its child the
request: the sandbox's layer names and the findings are imported by the functions that use them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping

from ..records import Record
from ..render.sizes import human_size
from ..render.textsafe import printable
from ..schema import Report, Severity, Verdict

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from typing import Any

TIB = 1 << 40
DEFAULT_MAX_VIRTUAL_SIZE = 4 * TIB
VERDICTS = (Verdict.ACCEPT, Verdict.REVIEW, Verdict.REJECT)  # what a policy can judge (``failed`` is not judged)
EXIT_CODES: dict[str, int] = {Verdict.ACCEPT: 0, Verdict.REVIEW: 10, Verdict.REJECT: 20, Verdict.FAILED: 30}
MAX_SIZE = (1 << 64) - 1
MAX_SIZE_TEXT = 64  # characters: no size needs more, and a longer text is refused before it is converted
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]?)(?:I?B)?", re.ASCII)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}


# Linux: each barrier may be held by any of several layers; ``a|b`` means "a or b is on".
NETWORK_BARRIER = "namespaces|seccomp"  # an empty network namespace, or no socket() at all
FILESYSTEM_BARRIER = "landlock|namespaces|seccomp"  # deny-all Landlock, an empty root, or no open()


def default_required_layers() -> list[str]:
    """Layers without which an inspection is refused; ``a|b`` means either. On Linux: the resource limits,
    no_new_privs, a network barrier, a filesystem barrier and ``user`` (on when not root, and when started as
    root only if the dropped ids read back without a 0). Windows and macOS have no seccomp, Landlock or
    namespaces, so each requires what it does have: the job object on Windows (memory, one process, kill
    on close), the resource limits on macOS (CPU, no file writes, no processes)."""
    if sys.platform.startswith("linux"):
        return ["rlimits", "no_new_privs", NETWORK_BARRIER, FILESYSTEM_BARRIER, "user"]
    return {"win32": ["job"], "darwin": ["rlimits"]}.get(sys.platform, [])


def available_layers(check_result: dict[str, Any]) -> set[str]:
    """The layers this machine can give an engine child: those on in a ``sandbox-check`` run
    (:func:`workbench.host.sandbox_check.check`) in its fresh child and, when it ran, in its forked one."""
    from ..engine.child.layers import is_on

    statuses = [check_result.get("layers") or {}, (check_result.get("zygote") or {}).get("layers") or {}]
    fresh, forked = ({name for name, status in layers.items() if is_on(status)} for layers in statuses)
    return fresh & forked if statuses[1] else fresh


def layer_status(name: str, observed: dict[str, str] | None) -> str | None:
    """Why layer ``name`` cannot be on here (``None``: it can). ``observed`` is the sandbox status an engine
    child reported on this machine, when one has."""
    from ..engine.child.layers import is_on, layer_order

    if name not in layer_order():
        return "not on this system"
    status = (observed or {}).get(name)
    return None if status is None or is_on(status) else f"off here: {printable(status, 80)}"


def possible_layers(observed: dict[str, str] | None) -> set[str]:
    """The layers that can be on here: this system's, less those an engine child reported off."""
    from ..engine.child.layers import layer_order

    return {name for name in layer_order() if layer_status(name, observed) is None}


def unmeetable(required: list[str], available: set[str]) -> list[str]:
    """The requirements no alternative of which this machine has: saving them would refuse every image."""
    return [need for need in required if not set(need.split("|")) & available]


def check_required_layers(required: list[str], check_result: dict[str, Any]) -> None:
    """Settings validation: raise ``ValueError`` naming each requirement this machine can never meet."""
    never = unmeetable(required, available_layers(check_result))
    if never:
        have = ", ".join(sorted(available_layers(check_result))) or "none"
        raise ValueError(f"this machine can never meet: {', '.join(never)} (it has: {have})")


class Policy(Record):
    """What the site accepts: ``allowed_formats`` None is every format; ``required_layers`` None is
    :func:`default_required_layers`."""

    __slots__ = ("max_virtual_size", "allowed_formats", "required_layers")

    def __init__(
        self,
        max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
        allowed_formats: list[str] | None = None,
        required_layers: list[str] | None = None,
    ) -> None:
        self.max_virtual_size = max_virtual_size
        self.allowed_formats = allowed_formats
        self.required_layers = default_required_layers() if required_layers is None else required_layers


def parse_size(text: str) -> int:
    """``4T``, ``512M``, ``1.5G``, ``1073741824``: powers of 1024; an optional trailing ``iB``/``B``.

    Exact: the number is read as a fraction, never a float (``9007199254742015`` stays itself), and a
    size that is not a whole number of bytes or does not fit 64 bits is refused with the reason.
    """
    from fractions import Fraction

    shown = text[:40] + ("..." if len(text) > 40 else "")
    match = _SIZE.fullmatch(text.strip().upper()) if len(text) <= MAX_SIZE_TEXT else None
    if not match:
        raise ValueError(f"not a size: {shown!r} (use a whole or decimal number with K, M, G, T or P)")
    value = Fraction(match.group(1)) * _UNITS[match.group(2)]
    if value.denominator != 1:
        raise ValueError(f"{shown!r} is not a whole number of bytes (the nearest below is {int(value)})")
    if value > MAX_SIZE:
        raise ValueError(f"{shown!r} is more than 2**64-1 bytes, the largest size an image can declare")
    return int(value)


def verdict_of(findings: Iterable[Mapping[str, Any]]) -> str:
    """Reject on any critical finding, review on warnings, accept otherwise (a report's findings, or an
    audit's, which name a ``location`` instead of an ``offset``)."""
    worst = Severity.worst((f["severity"] for f in findings), default=Severity.INFO)
    return {Severity.CRITICAL: Verdict.REJECT, Severity.WARNING: Verdict.REVIEW}.get(worst, Verdict.ACCEPT)


def apply(report: Report, policy: Policy) -> Report:
    """Add the policy's findings to a validated report and set its verdict."""
    from ..engine.child.layers import degraded
    from ..engine.findings import make

    virtual = report.get("virtual_size")
    if virtual is not None and virtual > policy.max_virtual_size:
        detail = (
            f"logical size {virtual} bytes ({human_size(virtual)}) is above the limit of "
            f"{policy.max_virtual_size} bytes ({human_size(policy.max_virtual_size)}); "
            f"the file holds {human_size(report.get('file_size'))}"
        )
        report["findings"].append(make("virtual-size-limit", detail).as_report())
    if policy.allowed_formats is not None and report["format"] not in policy.allowed_formats:
        allowed = ", ".join(policy.allowed_formats) or "none"
        detail = f"{report['format']} is not one of: {allowed}"
        report["findings"].append(make("format-not-allowed", detail).as_report())
    weak = degraded(report.get("sandbox") or {})
    if weak:
        detail = "; ".join(f"{name} {status}" for name, status in weak.items())
        report["findings"].append(make("sandbox-degraded", f"parsed by a weaker engine child: {detail}").as_report())
    report["verdict"] = verdict_of(report["findings"])
    return report


def worst(verdicts: list[str]) -> str:
    """The verdict that decides the exit code of several inspections."""
    return Verdict.worst(verdicts, default=Verdict.ACCEPT)
