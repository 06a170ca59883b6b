"""The demonstration set: images built at start by the project's own builders (no qemu-img needed).

A clean qcow2, a qcow2 whose backing file is a host path, a raw disk that carries a qcow2 header, a
VMDK whose extent names a host file, encrypted images (legacy qcow2 AES and LUKS2), and an image whose
logical size is far larger than its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# ``(file name, declared format)`` of :func:`images`, in order, known without building them: the window
# lists the set in its first frame and builds it afterwards (the builders import the engine's format
# modules). ``tests/gui/test_gui_first_frame.py`` holds it equal to what :func:`images` makes.
LISTED = (
    ("clean.qcow2", "qcow2"),
    ("backing-host-file.qcow2", "qcow2"),
    ("guest-raw-disk.img", "raw"),
    ("claims-16TiB.qcow2", "qcow2"),
    ("aes-encrypted.qcow2", "qcow2"),
    ("host-extent.vmdk", "vmdk"),
    ("luks2-volume.luks", "luks"),
)


@dataclass(frozen=True)
class DemoImage:
    path: Path
    declared: str


def images() -> list[tuple[str, str, bytes]]:
    """``(file name, declared format, bytes)`` of every demonstration image."""
    from . import luks, qcow2, vmdk

    return [
        *qcow2.demo_images(),
        ("host-extent.vmdk", "vmdk", vmdk.demo_host_file()),
        ("luks2-volume.luks", "luks", luks.luks2()),
    ]


def listed(folder: Path) -> list[DemoImage]:
    """Where :func:`write_demo` writes each image into ``folder``, without building any."""
    return [DemoImage(folder / name, declared) for name, declared in LISTED]


def write_demo(folder: Path) -> list[DemoImage]:
    """Write the demonstration images into ``folder`` (which must exist) and list them."""
    out = []
    for name, declared, data in images():
        path = folder / name
        path.write_bytes(data)
        out.append(DemoImage(path, declared))
    return out
