"""Guest offset to file offset, per container format: the one place that reads mapping tables.

Two users read through it and neither writes a mapping of its own:

- the guest view (``engine/guest.py``) reads a few guest ranges through :class:`MappedGuestDisk`, so a
  mapping reads only the table entries those ranges need (lazily, cached for the request);
- deep inspection (``engine/deep/``) walks every run of the virtual disk and every metadata table.

A format registers a factory in :data:`FACTORIES` (``mapping/<format>.py`` module, imported below). The
factory gets a :class:`~workbench.engine.reader.Reader` (its budget is the caller's: the guest budget or
the deep budget, never the 1 MiB header budget) and the header parser's :class:`Inspection`; it re-reads
the few header values it needs through the reader and returns ``None`` when the image cannot be mapped
(encrypted, an unsupported variant), with the reason in :attr:`Unmappable`.

Every loop over table entries is bounded by the table sizes the factory capped, never by image data
alone; a table entry that points outside the file is a run of kind :attr:`Kind.INVALID`, not an exception.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ...schema import MapRun
from ..inspection import Inspection
from ..reader import Reader


class Kind(StrEnum):
    """What a guest range is, in the vocabulary of ``qemu-img map`` (docs/deep.md)."""

    DATA = "data"  # stored in this file at ``Run.offset``
    ZERO = "zero"  # reads as zeros by the format's own marker (a zero cluster, an unmapped block without backing)
    UNALLOCATED = "unallocated"  # not stored here: reads from the backing file if there is one, else zeros
    COMPRESSED = "compressed"  # stored compressed at ``Run.offset``, ``Run.stored_length`` bytes
    EXTERNAL = "external"  # stored in another file (an external data file, a VMDK extent elsewhere)
    INVALID = "invalid"  # the table entry cannot be followed (past the file, reserved bits): reads nothing


@dataclass(frozen=True, slots=True)
class Run:
    """``length`` guest bytes at guest offset ``start`` of one kind.

    ``offset`` is the file offset of ``start`` for DATA; for COMPRESSED it is the offset of the compressed
    unit that holds ``start`` (``unit`` is the unit's guest offset, ``stored_length`` its stored size).
    ``entry`` is the file offset of the table entry that mapped the run (for the window's
    click-to-select), ``None`` for formats without tables.
    """

    start: int
    length: int
    kind: Kind
    offset: int | None = None
    stored_length: int = 0
    unit: int = 0
    entry: int | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A metadata structure in the file: deep inspection checks that it lies inside the file and that no
    other structure or data cluster claims its bytes."""

    name: str
    offset: int
    length: int


class Mapping(Protocol):
    """A container format's guest-to-file mapping."""

    size: int  # the virtual disk's size in bytes
    backing: bool  # whether UNALLOCATED runs fall through to a backing file (else they read as zeros)
    cluster: int  # the mapping's allocation unit (cluster, grain, block) in bytes

    def runs(self, start: int, length: int) -> Iterator[Run]:
        """Runs covering ``[start, start + length)`` in order, clipped to it; reads only the entries needed."""
        ...

    def tables(self) -> Iterator[Table]:
        """Every metadata structure the mapping uses (header, tables, bitmaps), for deep inspection."""
        ...

    def decompress(self, run: Run) -> bytes:
        """The uncompressed unit of a COMPRESSED run (its first byte is guest offset ``run.unit``)."""
        ...


class Unmappable(Exception):
    """The image cannot be mapped (encrypted, a variant this reader does not follow); the message says why."""


Factory = Callable[[Reader, Inspection], Mapping]
FACTORIES: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def add(factory: Factory) -> Factory:
        FACTORIES[name] = factory
        return factory

    return add


def mapping_for(fmt: str, reader: Reader, info: Inspection) -> Mapping:
    """The mapping of an image of format ``fmt`` (its header parsed into ``info``); raises :class:`Unmappable`."""
    factory = FACTORIES.get(fmt)
    if factory is None:
        raise Unmappable(f"no guest reader for {fmt} yet")
    return factory(reader, info)


class LinearMapping:
    """Guest offset == file offset + ``base`` for ``size`` bytes (raw, a fixed VHD, ISO as raw)."""

    cluster = 512
    backing = False

    def __init__(self, reader: Reader, size: int, base: int = 0, tables: tuple[Table, ...] = ()) -> None:
        self.reader = reader
        self.size = max(0, size)
        self.base = base
        self._tables = tables

    def runs(self, start: int, length: int) -> Iterator[Run]:
        end = min(start + length, self.size)
        if start < end:
            yield Run(start, end - start, Kind.DATA, self.base + start)

    def tables(self) -> Iterator[Table]:
        yield from self._tables

    def decompress(self, run: Run) -> bytes:
        raise Unmappable("a linear mapping has no compressed units")


def _map_entry(run: Run, backing: bool) -> MapRun:
    """One run in ``qemu-img map --output=json``'s terms (``compressed`` is qemu 8's key; ``invalid`` ours)."""
    kind = run.kind
    present = kind in (Kind.DATA, Kind.ZERO, Kind.COMPRESSED, Kind.EXTERNAL)
    entry: MapRun = {
        "start": run.start,
        "length": run.length,
        "present": present,
        "zero": kind is Kind.ZERO or (kind is Kind.UNALLOCATED and not backing),
        "data": kind in (Kind.DATA, Kind.COMPRESSED, Kind.EXTERNAL),
        "compressed": kind is Kind.COMPRESSED,
    }
    # qemu gives the offset of allocated zeros, and of an unallocated subcluster of an allocated cluster
    # (qcow2 extended L2) when nothing lies behind it
    if run.offset is not None and (
        kind in (Kind.DATA, Kind.ZERO, Kind.EXTERNAL) or (kind is Kind.UNALLOCATED and not backing)
    ):
        entry["offset"] = run.offset
    if kind is Kind.INVALID:
        entry["invalid"] = True
    return entry


def qemu_map(runs: Iterable[Run], backing: bool) -> Iterator[MapRun]:
    """Runs merged as ``qemu-img map --output=json`` merges them: neighbours with the same flags and, where
    both have one, contiguous file offsets become one entry."""
    last: MapRun | None = None
    for run in runs:
        entry = _map_entry(run, backing)
        if last is not None and _joins(last, entry):
            last["length"] += entry["length"]
            continue
        if last is not None:
            yield last
        last = entry
    if last is not None:
        yield last


def _joins(last: MapRun, entry: MapRun) -> bool:
    same = all(last.get(key) == entry.get(key) for key in ("present", "zero", "data", "compressed", "invalid"))
    if not same or last["start"] + last["length"] != entry["start"]:
        return False
    if "offset" in last or "offset" in entry:
        return "offset" in last and "offset" in entry and last["offset"] + last["length"] == entry["offset"]
    return True


def inflate(data: bytes, limit: int, wbits: int = -15) -> bytes:
    """At most ``limit`` bytes inflated from ``data`` (raw deflate by default, as qcow2 stores clusters);
    a corrupt stream gives what inflated before the error, never an exception or an unbounded buffer."""
    engine = zlib.decompressobj(wbits)
    try:
        return engine.decompress(data, limit)
    except zlib.error:
        return b""


class MappedGuestDisk:
    """The guest view's :class:`~workbench.engine.guest_disk.GuestDisk` over a :class:`Mapping`.

    DATA reads from the file, ZERO reads zeros, COMPRESSED inflates its unit (the last one is cached),
    UNALLOCATED reads zeros without a backing file; UNALLOCATED with one, EXTERNAL, INVALID and a unit that
    cannot be decompressed here (zstd) are "not in this file" (``None``) so the view says so.
    """

    def __init__(self, mapping: Mapping, reader: Reader) -> None:
        self.mapping = mapping
        self.reader = reader
        self.size = mapping.size
        self._unit: tuple[int, bytes] | None = None

    def _compressed(self, run: Run) -> bytes | None:
        """The run's bytes from its inflated unit; ``None`` when the unit cannot be decompressed here."""
        if self._unit is None or self._unit[0] != run.unit:
            try:
                self._unit = (run.unit, self.mapping.decompress(run))
            except Unmappable:  # a codec the standard library lacks (qcow2 zstd)
                return None
        data = self._unit[1]
        skip = run.start - run.unit
        return data[skip : skip + run.length].ljust(run.length, b"\0")

    def read(self, offset: int, length: int) -> bytes | None:
        out = bytearray()
        for run in self.mapping.runs(offset, length):
            if run.kind is Kind.DATA and run.offset is not None:
                out += self.reader.read(run.offset, run.length).ljust(run.length, b"\0")
            elif run.kind is Kind.ZERO or (run.kind is Kind.UNALLOCATED and not self.mapping.backing):
                out += bytes(run.length)
            elif run.kind is Kind.COMPRESSED and (data := self._compressed(run)) is not None:
                out += data
            else:
                return None
        return bytes(out)


def _register_builtin() -> None:
    """Import the per-format modules so their ``@register`` lines run."""
    from . import linear, parallels, qcow1, qcow2, qed, vdi, vhdx, vmdk, vpc  # noqa: F401


_register_builtin()
