"""One module per format. Each module found here is a format; nothing else needs to list it.

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

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ..inspection import Inspection
from ..reader import Reader


@dataclass(frozen=True)
class Format:
    names: tuple[str, ...]
    priority: int
    layout: bool
    raw_compatible: bool
    guest_data_at_zero: bool
    hybrid: bool
    relative_locator: tuple[str, tuple[str, ...]] | None
    opens_when_declared: Callable[[Reader], bool] | None
    probe: Callable[[Reader], str | None]
    parse: Callable[[Reader, Inspection], None]
    module: str


def _load(module: ModuleType) -> Format:
    return Format(
        names=tuple(module.NAMES),
        priority=int(module.PRIORITY),
        layout=bool(getattr(module, "LAYOUT", False)),
        raw_compatible=bool(getattr(module, "RAW_COMPATIBLE", False)),
        guest_data_at_zero=bool(getattr(module, "GUEST_DATA_AT_ZERO", False)),
        hybrid=bool(getattr(module, "HYBRID", False)),
        relative_locator=getattr(module, "RELATIVE_LOCATOR", None),
        opens_when_declared=getattr(module, "opens_when_declared", None),
        probe=module.probe,
        parse=module.parse,
        module=module.__name__,
    )


def _discover() -> list[Format]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAMES") and hasattr(module, "probe"):
            found.append(_load(module))
    return found


FORMATS: list[Format] = _discover()
BY_NAME: dict[str, Format] = {name: fmt for fmt in FORMATS for name in fmt.names}
# The names an image can be declared as (or allowed by a policy): partition layouts are not formats.
KNOWN_NAMES: tuple[str, ...] = tuple(sorted(name for fmt in FORMATS if not fmt.layout for name in fmt.names))
