"""One module per format, each in :data:`MODULES` (``tests/test_startup.py`` holds that list equal to the
folder's modules, so a new format module cannot be forgotten).

A format module defines:

- ``NAMES``: the format names it handles (qemu's names where qemu has the format);
- ``PRIORITY``: when several signatures match, the highest priority names the image's format;
- ``LAYOUT`` (optional, default False): a partition layout inside a raw image (MBR, GPT), listed in
  ``format_matches`` but never the image's format;
- ``RAW_COMPATIBLE`` (optional): a raw image may legitimately carry it (ISO 9660), so declaring
  ``raw`` is not a mismatch;
- ``GUEST_DATA_AT_ZERO`` (optional): the guest's disk starts at offset 0 (raw, a fixed VHD), so an MBR/GPT
  there is the guest's own partition table, not a second format;
- ``HYBRID`` (optional): the format legitimately carries a partition table beside its own structures (a
  hybrid ISO): a warning, not a critical ambiguity;
- ``RELATIVE_LOCATOR`` (optional): ``(reference key, values)`` naming the parent locators that hold a path
  relative to the image (VHD ``platform`` W2ru/Wi2r, VHDX ``key`` relative_path): the chain follows only those;
- ``opens_when_declared(reader) -> bool`` (optional): qemu opens this file as the format when it is
  declared even though the probe does not match (``-f vmdk`` reads any file of 4 bytes or more without
  a sparse magic as a text descriptor), so the declared format is parsed;
- ``probe(reader) -> str | None``: which of ``NAMES`` the signature says, reading only a few bytes;
- ``parse(reader, info)``: fill an :class:`~workbench.engine.inspection.Inspection` for ``info.format``.
  Parsers never raise on bad data: they add ``malformed`` findings and stop.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from ..inspection import Inspection
from ..reader import Reader
from ..record import Record

# The format modules, named rather than found with pkgutil (~1.5 ms of each engine child's start). All of
# them are imported: the child probes every signature, and parses every match, after it can import nothing.
from . import bochs, cloop, dmg, iso, luks, parallels, partitions, qcow, qed, raw, vdi, vhdx, vmdk, vpc

MODULES = (bochs, cloop, dmg, iso, luks, parallels, partitions, qcow, qed, raw, vdi, vhdx, vmdk, vpc)


class Format(Record):
    __slots__ = (
        "names",
        "priority",
        "layout",
        "raw_compatible",
        "guest_data_at_zero",
        "hybrid",
        "relative_locator",
        "opens_when_declared",
        "probe",
        "parse",
        "module",
    )

    def __init__(self, module: ModuleType) -> None:
        self.names: tuple[str, ...] = tuple(module.NAMES)
        self.priority = int(module.PRIORITY)
        self.layout = bool(getattr(module, "LAYOUT", False))
        self.raw_compatible = bool(getattr(module, "RAW_COMPATIBLE", False))
        self.guest_data_at_zero = bool(getattr(module, "GUEST_DATA_AT_ZERO", False))
        self.hybrid = bool(getattr(module, "HYBRID", False))
        self.relative_locator: tuple[str, tuple[str, ...]] | None = getattr(module, "RELATIVE_LOCATOR", None)
        self.opens_when_declared: Callable[[Reader], bool] | None = getattr(module, "opens_when_declared", None)
        self.probe: Callable[[Reader], str | None] = module.probe
        self.parse: Callable[[Reader, Inspection], None] = module.parse
        self.module: str = module.__name__


FORMATS: list[Format] = [Format(module) for module in MODULES]
BY_NAME: dict[str, Format] = {name: fmt for fmt in FORMATS for name in fmt.names}
# The names an image can be declared as (or allowed by a policy): partition layouts are not formats.
KNOWN_NAMES: tuple[str, ...] = tuple(sorted(name for fmt in FORMATS if not fmt.layout for name in fmt.names))
