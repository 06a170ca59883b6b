"""What one format parser learns about an image, before it becomes a report."""

from __future__ import annotations

import re

from .fields import MAX_TEXT, Field, Layout
from .findings import CRITICAL, Finding, make
from .limits import MAX_LIST as MAX_LIST  # the parsers import the list cap from here
from .reader import Reader
from .record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

NETWORK_PREFIXES = (
    "nbd:",
    "nbd+",
    "http:",
    "https:",
    "ftp:",
    "ftps:",
    "ssh:",
    "iscsi:",
    "rbd:",
    "gluster:",
    "gluster+",
    "sheepdog:",
    "vxhs:",
    "nfs:",
    "tftp:",
)


def is_windows_drive_prefix(name: str) -> bool:
    """qemu's ``is_windows_drive_prefix`` (block.c): a letter and a colon, ``C:``."""
    return len(name) >= 2 and name[0].isascii() and name[0].isalpha() and name[1] == ":"


def path_has_protocol(name: str) -> bool:
    """qemu's ``path_has_protocol`` (block.c) as built on POSIX: a ``:`` before any ``/`` makes ``prefix:``
    a protocol (``fat:rw:/dir``, ``blkdebug:conf:img``, ``nbd:host:port``), never a file name.

    qemu then looks the prefix up among its drivers and fails on an unknown one; it never opens the
    string as a file. (qemu built for Windows also stops at ``\\`` and reads ``C:`` as a drive.)
    """
    head = re.split(r"[:/]", name, maxsplit=1)[0]
    return name[len(head) : len(head) + 1] == ":"


def reference_kind(name: str) -> str:
    """How a reference names its target: ``network``, ``pseudo-protocol`` or ``path``.

    ``network`` for the schemes that make qemu connect out (and any ``scheme://``); ``pseudo-protocol``
    for every other name that qemu's :func:`path_has_protocol` reads as ``prefix:`` (``json:``, ``fat:``,
    ``blkdebug:``, ``null-co:``, an unknown prefix...); ``path`` for the rest and for Windows drive paths
    (``C:\\...``, how Hyper-V and qemu for Windows read a VHD/VHDX locator).
    """
    lowered = name.lower()
    if lowered.startswith(("file:///", "file://localhost/")):
        return "path"  # a local file URL (VHD MacX locators use them); file://otherhost/ stays network
    if lowered.startswith(NETWORK_PREFIXES) or "://" in lowered:
        return "network"
    if path_has_protocol(name) and not is_windows_drive_prefix(name):
        return "pseudo-protocol"
    return "path"


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Inspection(Record):
    """Values a parser fills; ``None`` means the format does not record it."""

    __slots__ = (
        "format",
        "fields",
        "findings",
        "virtual_size",
        "cluster_size",
        "encrypted",
        "encryption",
        "backing",
        "data_file",
        "extents",
        "references",
        "dirty",
        "corrupt",
        "snapshots",
        "details",
    )

    def __init__(self, format: str) -> None:
        self.format = format
        self.fields: list[Field] = []
        self.findings: list[Finding] = []
        self.virtual_size: int | None = None
        self.cluster_size: int | None = None
        self.encrypted = False
        self.encryption: dict[str, Any] | None = None
        self.backing: dict[str, Any] | None = None
        self.data_file: dict[str, Any] | None = None
        self.extents: list[dict[str, Any]] = []
        self.references: list[dict[str, Any]] = []
        self.dirty = False
        self.corrupt = False
        self.snapshots: list[dict[str, Any]] = []
        self.details: dict[str, Any] = {}

    def add(self, finding_id: str, detail: str, offset: int | None = None, severity: str | None = None) -> None:
        self.findings.append(make(finding_id, detail[:MAX_TEXT], offset, severity))

    def malformed(self, check: str, detail: str, offset: int | None = None, severity: str | None = None) -> None:
        """A ``malformed`` finding for the rule ``check`` (``format.rule``, listed in docs/formats.md)."""
        self.findings.append(make("malformed", detail[:MAX_TEXT], offset, severity, check))

    def cap(self, detail: str, offset: int | None = None) -> None:
        """A limit reached while looking for references or sizes: critical, since one may lie beyond it."""
        self.add("read-budget", detail, offset, CRITICAL)

    def sizes(self, candidates: dict[str, int], offset: int | None = None, severity: str | None = None) -> None:
        """Virtual sizes that different readers take from the image: all are kept in ``details``, and
        ``virtual_size`` is the largest, so that the size limit is judged against it."""
        self.virtual_size = max(candidates.values())
        self.details["candidate_sizes"] = dict(candidates)
        if len(set(candidates.values())) > 1:
            shown = ", ".join(f"{name} {value}" for name, value in candidates.items())
            detail = f"readers take different sizes ({shown}); judged at the largest"
            self.add("size-disagreement", detail, offset, severity)

    def structure(
        self, reader: Reader, layout: Layout, offset: int, check: str, label: str | None = None, size: int = 0
    ) -> tuple[dict[str, Any], Field, bool]:
        """Read one structure (``size`` bytes, or the layout's own size), add its field group and return its
        typed values.

        ``complete`` is False, with a ``malformed`` finding ``check``, when the file ends inside the
        structure; the values that did fit are still returned.
        """
        size = size or layout.size
        label = label or layout.name
        data = reader.read(offset, size)
        values, group = layout.read(data, offset, label)
        self.fields.append(group)
        complete = len(data) >= size
        if not complete:
            self.malformed(check, f"{label} at {offset} is truncated: {len(data)} of {size} bytes", offset)
        return values, group, complete

    def reference(self, role: str, name: str, offset: int | None = None, **extra: Any) -> dict[str, Any]:
        """Record an external reference (backing file, data file, extent, parent locator...).

        Network and json: names also get a ``backing-network`` finding; the caller adds the
        role-specific finding (``backing-file``, ``external-extent``...).
        """
        ref = {"role": role, "name": name[:MAX_TEXT], "kind": extra.pop("kind", reference_kind(name))}
        raw = extra.pop("stored", None)  # the name's bytes as stored, when the parser has them
        if raw is not None and not _is_utf8(raw := raw.split(b"\0", 1)[0]):
            ref["name_bytes"] = raw[:MAX_TEXT].hex()  # the bytes a consumer opens; ``name`` shows them decoded
        ref.update(extra)
        self.references.append(ref)  # the report keeps MAX_LIST and says so when it cuts
        if ref["kind"] in ("network", "pseudo-protocol"):
            self.add("backing-network", f"{role} is {ref['kind']} {name!r}", offset)
        return ref

    def set_backing(self, name: str, fmt: str | None, offset: int | None, **extra: Any) -> None:
        """The image's parent: a ``backing-file`` finding and ``backing`` in the report."""
        ref = self.reference("backing file", name, offset, format=fmt, **extra)
        self.backing = {"filename": ref["name"], "format": fmt, "kind": ref["kind"]}
        shown = f" (format {fmt})" if fmt else " (no format recorded)"
        self.add("backing-file", f"backing file {name!r}{shown}", offset)
