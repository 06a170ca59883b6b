"""VMDK descriptors built as text, for the demonstration set (and, through ``tests/builders``, the tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# (access, sectors, type, file name or None, offset or None)
Extent = tuple[str, int, str, str | None, int | None]


def extent_line(access: str, sectors: int, kind: str, name: str | None = None, offset: int | None = None) -> str:
    line = f"{access} {sectors} {kind}"
    if name is not None:
        line += f' "{name}"'
    if offset is not None:
        line += f" {offset}"
    return line


def descriptor(
    create_type: str = "monolithicSparse",
    extents: Sequence[Extent] = (("RW", 2048, "SPARSE", "disk.vmdk", None),),
    *,
    cid: int = 0x12345678,
    parent_cid: int = 0xFFFFFFFF,
    parent_hint: str | None = None,
    extra: str = "",
) -> str:
    """A descriptor as VMware and qemu write it; ``extra`` is appended verbatim."""
    lines = ["# Disk DescriptorFile", "version=1", f"CID={cid:08x}", f"parentCID={parent_cid:08x}"]
    lines.append(f'createType="{create_type}"')
    if parent_hint is not None:
        lines.append(f'parentFileNameHint="{parent_hint}"')
    lines += ["", "# Extent description", *(extent_line(*e) for e in extents)]
    lines += ["", "# The Disk Data Base", "#DDB", "", 'ddb.virtualHWVersion = "4"', 'ddb.adapterType = "ide"']
    return "\n".join(lines) + "\n" + extra


def descriptor_file(extents: Sequence[Extent], create_type: str = "monolithicFlat", **keys: Any) -> bytes:
    """A descriptor-only VMDK: every extent it lists lives in another file."""
    return descriptor(create_type, extents, **keys).encode()


def demo_host_file() -> bytes:
    """For the demonstration window: a descriptor whose extent is the host's /etc/shadow."""
    return descriptor_file([("RW", 8, "FLAT", "/etc/shadow", 0)], cid=0x0BADF00D)


# --- hostile images where qemu reads more, elsewhere or more loosely than the declared structure ------
# Each one made qemu-img 7.2 open (or try to open) a file that an earlier workbench did not report.
