"""The guest view: partition tables, volume managers, encrypted containers, filesystems and the OS,
found layer by layer from guest metadata alone, within a byte budget and with every list capped.

Callers give a :class:`GuestDisk` (``RawGuestDisk`` for raw images; the container formats' mappings
come later). ``inspect_guest`` never raises for what is in the image: a budget reached, a loop or a
number out of range is a finding that names what was not examined.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import filesystems
from .fields import Field
from .findings import Finding
from .guest_disk import DEFAULT_GUEST_BUDGET, BudgetedDisk, GuestBudgetExceeded, GuestDisk, RawGuestDisk, View
from .inspection import Inspection
from .reader import Progress
from .volumes import encrypted, lvm, md, partition_table

__all__ = ["DEFAULT_GUEST_BUDGET", "GuestDisk", "RawGuestDisk", "inspect_guest"]

MAX_VOLUMES = 128


def _volume(index: int, view: View, kind: str, name: str | None) -> dict[str, Any]:
    return {
        "index": index,
        "start": view.base,
        "length": view.size,
        "type": kind,
        "name": name,
        "filesystem": None,
        "container": None,
        "os": None,
    }


class _Walk:
    """The volumes found so far and a work list of views still to look into (no recursion)."""

    def __init__(self, disk: BudgetedDisk, info: Inspection) -> None:
        self.disk = disk
        self.info = info
        self.volumes: list[dict[str, Any]] = []
        self.pending: list[tuple[dict[str, Any], View]] = []

    def add(self, view: View, kind: str, name: str | None, index: int | None = None) -> None:
        if len(self.volumes) >= MAX_VOLUMES:
            self.info.add("guest-budget", f"more than {MAX_VOLUMES} volumes: {kind} {name or ''} not examined")
            return
        volume = _volume(index if index is not None else len(self.volumes) + 1, view, kind, name)
        self.volumes.append(volume)
        self.pending.append((volume, view))

    def examine(self, volume: dict[str, Any], view: View) -> None:
        """Container or filesystem of one volume; containers add the volumes they hold."""
        info = self.info
        if partition_table.probe(view) and volume["type"] != "whole disk":
            info.add("guest-layout", f"volume {volume['index']} holds a partition table of its own", view.base)
        kind = encrypted.probe(view)
        if kind:
            volume["container"] = encrypted.read(view, info, kind)
            return
        if lvm.probe(view):
            volume["container"], lvs = lvm.read(view, info)
            for lv_name, lv_view in lvs:
                self.add(lv_view, "lvm2 logical volume", lv_name)
            return
        if md.probe(view):
            volume["container"], data = md.read(view, info)
            if data is not None:
                self.add(data, "md mirror data", volume["container"].get("name"))
            return
        found = filesystems.identify(view, info)
        volume["filesystem"] = found
        if found is None:
            return
        if found.get("state") in ("errors", "dirty", "not clean"):
            info.add(
                "guest-filesystem-errors", f"{found['type']} on volume {volume['index']}: {found['state']}", view.base
            )
        if found.get("size") and found["size"] > view.size:
            info.add(
                "guest-layout",
                f"{found['type']} on volume {volume['index']} claims {found['size']} bytes "
                f"in a {view.size}-byte volume",
                view.base,
            )
        volume["os"] = filesystems.operating_system(view, info, found)


def _step(info: Inspection, what: str, action: Callable[..., None], *args: Any) -> None:
    """Run one layer; a budget reached or a parser bug becomes a finding, never an exception."""
    try:
        action(*args)
    except GuestBudgetExceeded as stop:
        info.add("guest-budget", f"{what} not examined: {stop}")
    except Exception as error:  # noqa: BLE001 - a parser bug must not kill the report
        info.add("guest-malformed", f"{what}: internal error {type(error).__name__}: {error}"[:512])


def inspect_guest(
    disk: GuestDisk, budget: int = DEFAULT_GUEST_BUDGET, progress: Progress | None = None
) -> tuple[dict[str, Any], list[Field], list[Finding]]:
    """The report value ``guest``, its field tree and its findings; ``progress`` hears the guest bytes read
    against the budget after the partition table and after each volume (at most ``MAX_VOLUMES`` + 2 calls)."""

    def step(what: str) -> None:
        if progress is not None:
            progress(min(budgeted.bytes_read, budget), budget, f"guest: {what}")

    started = time.monotonic()
    budgeted = BudgetedDisk(disk, budget)
    info = Inspection("guest")
    walk = _Walk(budgeted, info)
    whole = View.window(budgeted, 0, budgeted.size)
    result: dict[str, Any] = {"partition_table": None, "volumes": walk.volumes}

    def table() -> None:
        kind = partition_table.probe(whole)
        if kind is None:
            walk.add(whole, "whole disk", None)
            return
        result["partition_table"], parts = partition_table.read(whole, info, kind)
        for part in parts:
            walk.add(whole.sub(part["start"], part["length"]), part["type"], part["name"], part["index"])

    _step(info, "the partition table", table)
    step("partition table")
    while walk.pending:
        volume, view = walk.pending.pop(0)
        _step(info, f"volume {volume['index']} at guest offset {volume['start']}", walk.examine, volume, view)
        step(f"volume {volume['index']}")
    if budgeted.hole_count:
        shown = ", ".join(str(offset) for offset in budgeted.holes)
        info.add("guest-not-in-file", f"{budgeted.hole_count} blocks of 4096 bytes read as zeros, at {shown}")
    result["bytes_read"] = budgeted.bytes_read
    if progress is not None:
        progress(budget, budget, "guest: done")
    result["budget"] = budget
    result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result, info.fields, info.findings
