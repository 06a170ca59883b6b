"""Encrypted volumes inside the guest: LUKS1/LUKS2 (read by engine/formats/luks.py, never opened) and
BitLocker (its ``-FVE-FS-`` boot sector signature)."""

from __future__ import annotations

from typing import Any

from ..fields import Field, Layout, Spec
from ..formats import luks
from ..guest_disk import View
from ..inspection import Inspection

BITLOCKER = b"-FVE-FS-"
BOOT_SECTOR = Layout("BitLocker boot sector", [Spec("signature", 3, "8s", "-FVE-FS-", "text")], "<")
SUMMARY_KEYS = ("version", "uuid", "cipher", "mode", "hash", "key_size", "key_slots_active", "payload_offset")


def _shifted(fields: list[Field], base: int) -> list[Field]:
    """Move fields read at volume offsets to guest offsets (iteratively; the tree is the parser's own)."""
    stack = list(fields)
    while stack:
        node = stack.pop()
        node.offset += base
        stack.extend(node.children)
    return fields


def probe(view: View) -> str | None:
    if luks.probe(view):  # type: ignore[arg-type]  # a View reads like a Reader
        return "crypto_LUKS"
    at = BOOT_SECTOR.offset_of("signature")
    return "BitLocker" if view.read(at, BOOT_SECTOR.size_of("signature")) == BITLOCKER else None


def read(view: View, info: Inspection, kind: str) -> dict[str, Any]:
    if kind == "BitLocker":
        info.fields.append(Field(BOOT_SECTOR.name, view.guest_offset(0), 512, BITLOCKER.decode()))
        container: dict[str, Any] = {"type": "BitLocker"}
    else:
        inner = Inspection("luks")
        luks.parse(view, inner)  # type: ignore[arg-type]
        info.fields.append(Field("LUKS header", view.guest_offset(0), 0, None, "", _shifted(inner.fields, view.base)))
        for finding in inner.findings:
            if finding.id not in ("encrypted", "unencrypted", "weak-encryption"):
                info.add("guest-malformed", f"LUKS in the guest: {finding.detail}", finding.offset)
        details = inner.encryption or {}
        container = {"type": "crypto_LUKS"} | {key: details.get(key) for key in SUMMARY_KEYS if key in details}
    info.add("guest-encrypted-volume", f"{container['type']} volume at guest offset {view.base}", view.base)
    return container
