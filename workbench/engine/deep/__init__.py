"""Deep inspection (``inspect --deep``): every run of the virtual disk and every metadata table of the
image walked through its mapping (``engine/mapping/``), under a metadata budget of its own.

The walk gives ``deep.map`` (``qemu-img map --output=json``'s runs), ``deep.allocated_virtual``, the file's
ownership map (``deep.file_map``) and the checks of docs/deep.md, each a finding naming the offsets; a
format may add checks of its own (``FORMAT_CHECKS``: qcow2's refcounts). Nothing here raises for what is
in the image: the budget or a cap reached ends the walk with a finding saying what was not checked.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from ...schema import Deep
from ..findings import Finding, make
from ..inspection import Inspection
from ..mapping import Unmappable, mapping_for
from ..reader import BudgetExceeded, Image, Progress, Reader
from . import qcow2
from .walk import OutOfTime, Walk

FormatCheck = Callable[[Walk], None]
FORMAT_CHECKS: dict[str, FormatCheck] = {"qcow2": qcow2.check}  # imported before the sandbox is on
KEEP = 64 << 20  # table bytes the deep reader keeps at most: the budget may reach the child's address-space limit
OUT_OF_SCOPE = {"dmg": "deep inspection does not read DMG (out of scope: its tables are a compressed plist)"}


def inspect_deep(
    fd: Image, fmt: str, info: Inspection, file_size: int, budget: int, progress: Progress | None = None
) -> tuple[dict[str, Any], list[Finding], int]:
    """The report value ``deep``, its findings and the file bytes it read (its own :class:`Reader`)."""
    reader = Reader(fd, file_size, budget, keep=KEEP)
    if fmt in OUT_OF_SCOPE:
        return {"unavailable": OUT_OF_SCOPE[fmt]}, [], 0
    try:
        mapping = mapping_for(fmt, reader, info)
    except Unmappable as exc:
        return {"unavailable": f"deep inspection: {exc}"}, [], reader.bytes_read
    except BudgetExceeded as exc:
        return (
            {"unavailable": f"deep inspection: the mapping's header did not fit the budget ({exc})"},
            [make("deep-budget", f"nothing was checked: {exc}", exc.offset)],
            reader.bytes_read,
        )
    walk = Walk(reader, mapping, _throttled(progress))
    try:
        value = _run(walk, fmt)
    except Exception as exc:  # a bug (or memory running out) must become a finding, never a dead child
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"deep inspection: internal error {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
        finding = make("malformed", detail[:1024], check="engine.parser-error")
        return {"unavailable": "deep inspection failed (see the findings)"}, [finding], reader.bytes_read
    if progress is not None:
        progress(mapping.size, mapping.size, "done")
    return dict(value), walk.findings, reader.bytes_read


def _run(walk: Walk, fmt: str) -> Deep:
    walk.tables()
    walk.walk()
    check = FORMAT_CHECKS.get(fmt)
    if check is not None and walk.complete:
        try:
            check(walk)
        except BudgetExceeded as exc:
            walk.stop(f"{fmt} checks stopped at {exc.offset}: {exc}", exc.offset)
        except OutOfTime as exc:
            walk.stop(f"{fmt} checks stopped: {exc}")
    return walk.report()


def _throttled(progress: Progress | None, interval: float = 0.1) -> Progress:
    """``progress`` called at most every ``interval`` seconds (never when it is None)."""
    last = [0.0]

    def call(done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if progress is not None and now - last[0] >= interval:
            last[0] = now
            progress(done, total, what)

    return call
