"""What one format parser learns about an image, before it becomes a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .fields import MAX_TEXT, Field, Spec, decode
from .findings import Finding, make
from .limits import MAX_LIST as MAX_LIST  # the parsers import the list cap from here
from .reader import Reader

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


def reference_kind(name: str) -> str:
    """How a reference names its target: ``network``, ``pseudo-protocol`` (json:), or ``path``."""
    lowered = name.lower()
    if lowered.startswith(("file:///", "file://localhost/")):
        return "path"  # a local file URL (VHD MacX locators use them); file://otherhost/ stays network
    if lowered.startswith("json:"):
        return "pseudo-protocol"
    if lowered.startswith(NETWORK_PREFIXES) or "://" in lowered:
        return "network"
    return "path"


@dataclass
class Inspection:
    """Values a parser fills; ``None`` means the format does not record it."""

    format: str
    fields: list[Field] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    virtual_size: int | None = None
    cluster_size: int | None = None
    encrypted: bool = False
    encryption: dict[str, Any] | None = None
    backing: dict[str, Any] | None = None
    data_file: dict[str, Any] | None = None
    extents: list[dict[str, Any]] = field(default_factory=list)
    references: list[dict[str, Any]] = field(default_factory=list)
    dirty: bool = False
    corrupt: bool = False
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, finding_id: str, detail: str, offset: int | None = None, severity: str | None = None) -> None:
        self.findings.append(make(finding_id, detail[:MAX_TEXT], offset, severity))

    def structure(
        self, reader: Reader, label: str, offset: int, size: int, specs: list[Spec], endian: str
    ) -> tuple[dict[str, Any], Field, bool]:
        """Read and decode one fixed-size structure and add its field group.

        ``complete`` is False, with a ``malformed`` finding, when the file ends inside the structure;
        the values that did fit are still returned.
        """
        data = reader.read(offset, size)
        values, group = decode(label, data, offset, specs, endian)
        self.fields.append(group)
        complete = len(data) >= size
        if not complete:
            self.add("malformed", f"{label} at {offset} is truncated: {len(data)} of {size} bytes", offset)
        return values, group, complete

    def reference(self, role: str, name: str, offset: int | None = None, **extra: Any) -> dict[str, Any]:
        """Record an external reference (backing file, data file, extent, parent locator...).

        Network and json: names also get a ``backing-network`` finding; the caller adds the
        role-specific finding (``backing-file``, ``external-extent``...).
        """
        ref = {"role": role, "name": name[:MAX_TEXT], "kind": extra.pop("kind", reference_kind(name))}
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
