"""The demonstration set: images built at start by the project's own builders (no qemu-img needed).

A clean qcow2, a qcow2 whose backing file is a host path, a raw disk that carries a qcow2 header, a
VMDK whose extent names a host file, encrypted images (legacy qcow2 AES and LUKS2), and an image whose
logical size is far larger than its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import luks, qcow2, vmdk


@dataclass(frozen=True)
class DemoImage:
    path: Path
    declared: str


def images() -> list[tuple[str, str, bytes]]:
    """``(file name, declared format, bytes)`` of every demonstration image."""
    return [
        *qcow2.demo_images(),
        ("host-extent.vmdk", "vmdk", vmdk.demo_host_file()),
        ("luks2-volume.luks", "luks", luks.luks2()),
    ]


def write_demo(folder: Path) -> list[DemoImage]:
    """Write the demonstration images into ``folder`` (which must exist) and list them."""
    out = []
    for name, declared, data in images():
        path = folder / name
        path.write_bytes(data)
        out.append(DemoImage(path, declared))
    return out
