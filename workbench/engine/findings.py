"""Finding ids, their severity, title and the recommendation that cites the guidance they come from.

The ids are a contract (DESIGN.md): add new ones, never rename. ``detail`` is always built by the
parser from the values it found, so each finding names what was actually in the image.
"""

from __future__ import annotations

import re

from .. import schema
from ..schema import Severity
from .record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

INFO, WARNING, CRITICAL = Severity.INFO, Severity.WARNING, Severity.CRITICAL

_GUIDE = "Secure Usage of Libvirt"


class Kind(Record):
    __slots__ = ("severity", "title", "recommendation")

    def __init__(self, severity: str, title: str, recommendation: str) -> None:
        self.severity, self.title, self.recommendation = severity, title, recommendation


CATALOGUE: dict[str, Kind] = {
    "sandbox-degraded": Kind(
        WARNING,
        "The engine child ran with sandbox layers off or weakened",
        "The layers named were off or weaker on this machine; the required ones were on. Inspect untrusted "
        "images where every layer is available (see workbench sandbox-check and docs/sandbox.md).",
    ),
    "format-mismatch": Kind(
        CRITICAL,
        "Declared format does not match the image",
        f"Open the image only with the declared format and reject it if they disagree; never let a tool "
        f"probe the format ({_GUIDE}: format probing).",
    ),
    "format-ambiguous": Kind(
        CRITICAL,
        "More than one format signature matches",
        f"A file that several formats accept is a polyglot: a guest may have written one format's header "
        f"into another. Declare the format explicitly and never probe ({_GUIDE}: format probing).",
    ),
    "format-undeclared": Kind(
        WARNING,
        "No format declared",
        f"Declare the expected format (from the upload's metadata or your own records) instead of relying on "
        f"detection ({_GUIDE}: format probing).",
    ),
    "format-not-allowed": Kind(
        CRITICAL,
        "Format not in the allowed list",
        "Only accept formats that your policy allows; convert others on an isolated host.",
    ),
    "backing-file": Kind(
        CRITICAL,
        "Image names a backing (parent) file",
        f"Reject uploaded images with backing files, or flatten them on an isolated host with the backing "
        f"format pinned; a backing name can point at any host file ({_GUIDE}: backing files).",
    ),
    "backing-network": Kind(
        CRITICAL,
        "Backing reference is a network source or pseudo-protocol",
        f"Never open it: a network backing makes the host connect out, and json: names can carry any "
        f"driver options ({_GUIDE}: backing files).",
    ),
    "backing-format-unspecified": Kind(
        WARNING,
        "Backing file without a recorded format",
        f"Following this backing file would mean probing its format; record the format explicitly "
        f"({_GUIDE}: format probing).",
    ),
    "backing-outside-roots": Kind(
        CRITICAL,
        "Backing file outside the allowed folders",
        f"The chain was not followed: after resolving symbolic links the name leads outside the folders you "
        f"allowed, or it is a Windows path that cannot be checked. A backing name can point at any host file; "
        f"allow another folder only if you trust what is in it ({_GUIDE}: backing files).",
    ),
    "backing-missing": Kind(
        WARNING,
        "Backing file not found",
        "The image cannot be used without its parent. Find the parent, put it in an allowed folder and inspect "
        "the chain again, or reject the image.",
    ),
    "backing-loop": Kind(
        CRITICAL,
        "Backing chain loops back on itself",
        "A chain that names one of its own links cannot be opened by any tool; it is damaged or crafted. Reject it.",
    ),
    "backing-depth": Kind(
        WARNING,
        "Backing chain longer than the limit",
        "Links past the limit were not inspected. Flatten long chains (qemu-img convert, qemu-img commit) on an "
        "isolated host, or raise the limit (--max-depth) for a chain you trust.",
    ),
    "external-data-file": Kind(
        CRITICAL,
        "Image stores its data in an external file",
        f"A qcow2 external data file names a host path whose contents become guest-visible; reject the "
        f"image ({_GUIDE}: backing files).",
    ),
    "external-extent": Kind(
        CRITICAL,
        "Extent stored in another file",
        f"A VMDK extent outside the image makes a reader open a host file; reject it ({_GUIDE}: backing files).",
    ),
    "virtual-size-limit": Kind(
        CRITICAL,
        "Logical size above the allowed maximum",
        f"Check the virtual size against a limit before use; a small file can claim terabytes and fill the "
        f"host when converted or written ({_GUIDE}: size validation).",
    ),
    "encrypted": Kind(
        INFO,
        "Image is encrypted",
        f"The image needs a key to be used; check who holds it ({_GUIDE}: storage encryption).",
    ),
    "weak-encryption": Kind(
        WARNING,
        "Weak legacy encryption",
        f"qcow/qcow2 AES-CBC with a plain IV is deprecated and insecure; re-encrypt with LUKS "
        f"({_GUIDE}: storage encryption).",
    ),
    "unencrypted": Kind(
        INFO,
        "Image is not encrypted",
        f"Data on shared or network storage is readable by its operators; use LUKS encryption where that "
        f"matters ({_GUIDE}: storage encryption).",
    ),
    "malformed": Kind(
        CRITICAL,
        "Malformed structure",
        "The image does not follow its format; tools may read it differently. Reject it or repair it on an "
        "isolated host.",
    ),
    "checksum-mismatch": Kind(
        WARNING,
        "Checksum does not match",
        "A header checksum is wrong: the image is damaged or was edited by hand. Repair or reject it.",
    ),
    "unknown-features": Kind(
        CRITICAL,
        "Unknown incompatible feature bits",
        "A reader that does not know these features must refuse the image; reject it.",
    ),
    "dirty": Kind(
        WARNING,
        "Image was not closed cleanly",
        "Metadata may be stale; let a trusted tool check and repair it (qemu-img check -r) on an isolated host.",
    ),
    "corrupt": Kind(
        CRITICAL,
        "Image is marked corrupt",
        "The writer found corrupt metadata; reject the image.",
    ),
    "image-changed": Kind(
        CRITICAL,
        "Image changed while it was inspected",
        "The file's size or times differ before and after the engine read it: something is writing to it, so "
        "what was read may not be what a consumer will open. Inspect a copy that nothing writes to.",
    ),
    "read-budget": Kind(
        WARNING,
        "Structure larger than the read budget",
        "The engine reads at most a fixed number of bytes per image; the part past it was not inspected. "
        "Treat what was not read as unknown.",
    ),
    "size-disagreement": Kind(
        WARNING,
        "Readers disagree on the logical size",
        f"The image records its size in more than one way and different programs use different ones; the "
        f"limit was checked against the largest. Convert it on an isolated host with the size you expect "
        f"({_GUIDE}: size validation).",
    ),
    "report-capped": Kind(
        WARNING,
        "Report cut to its caps",
        "The image holds more than a report may carry (references, findings, fields, long text); the part "
        "left out was not shown. Critical when references were left out: treat the image as hostile.",
    ),
    "snapshots": Kind(
        INFO,
        "Image holds internal snapshots",
        "Snapshots keep older guest data in the file; remove them before sharing the image.",
    ),
    "guest-encrypted-volume": Kind(
        INFO,
        "The guest holds an encrypted volume",
        f"Its contents cannot be examined without the key; check who holds it ({_GUIDE}: storage encryption).",
    ),
    "guest-filesystem-errors": Kind(
        INFO,
        "A guest filesystem records errors or was not cleanly unmounted",
        "Let a trusted fsck check it on an isolated host before the guest uses it again; never on this host.",
    ),
    "guest-layout": Kind(
        WARNING,
        "The guest's disk layout is suspicious",
        "Partitions that overlap, reach past the disk, disagree between table copies or nest tables are "
        "read differently by different tools; find out why before the image is used.",
    ),
    "guest-malformed": Kind(
        WARNING,
        "A guest volume or filesystem structure is damaged",
        f"The guest's own metadata does not follow its format (a loop, an out-of-range number, bad "
        f"text); the part behind it was not read. Never mount it on the host ({_GUIDE}: data access).",
    ),
    "guest-budget": Kind(
        WARNING,
        "The guest view stopped at its read budget or a count limit",
        "The parts named were not examined; treat them as unknown, or raise the guest budget for an image "
        "you are prepared to read further.",
    ),
    "guest-not-in-file": Kind(
        INFO,
        "Guest data lies outside this file",
        "The blocks named fall through to a backing file or an external extent that was not opened; they "
        "were read as zeros, so what the view shows there is unknown.",
    ),
    "deep-budget": Kind(
        WARNING,
        "Deep inspection stopped at its budget or a limit",
        "The metadata named was not checked; treat it as unknown, or raise the deep budget (--deep-budget) for "
        "an image you are prepared to read further.",
    ),
    "deep-outside-file": Kind(
        CRITICAL,
        "A metadata table or data cluster lies past the end of the file",
        "Consumers read what lies past the end as zeros or fail; a table that points there was made by a "
        "broken or hostile writer. Do not use the image; repair it only on an isolated host.",
    ),
    "deep-overlap": Kind(
        CRITICAL,
        "Two structures claim the same bytes of the file",
        "A data cluster inside the header or a table, or two tables sharing bytes, lets a guest write rewrite "
        "the image's own metadata (its backing name, its tables). Reject the image.",
    ),
    "deep-invalid-entry": Kind(
        CRITICAL,
        "A mapping table entry cannot be followed",
        "A misaligned entry, reserved bits set or an offset past the file: consumers refuse or misread "
        "it. Reject the image or repair it on an isolated host.",
    ),
    "deep-refcount": Kind(
        CRITICAL,
        "qcow2 refcounts or refcount structures are corrupt",
        "A cluster in use with a refcount lower than its references (or a broken refcount table) is freed "
        "and reused by the next writer, overwriting live data or metadata; qemu-img check counts these as "
        "corruptions. Do not use the image; repair it only on an isolated host.",
    ),
    "deep-refcount-leak": Kind(
        INFO,
        "qcow2 clusters are leaked",
        "Clusters with a refcount but no reference waste space and may hold old guest data; "
        "qemu-img check -r leaks frees them (on an isolated host).",
    ),
    "deep-copied-flag": Kind(
        CRITICAL,
        "qcow2 copied flag contradicts the refcount",
        "A cluster marked as owned alone while shared (or the reverse) is written in place by the next "
        "writer, changing a snapshot's data; qemu-img check counts these as corruptions. Reject the image.",
    ),
}


# Finding ids whose findings name the rule they break with a check id (``qcow2.l1-outside-file``): one id
# covers many rules, so the check says which one fired (listed per format in docs/formats.md).
CHECKED = frozenset({"malformed"})
CHECK_ID = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)+")


class Finding(Record):
    __slots__ = ("id", "detail", "severity", "offset", "check")

    def __init__(
        self, id: str, detail: str, severity: str, offset: int | None = None, check: str | None = None
    ) -> None:
        self.id, self.detail, self.severity = id, detail, severity
        self.offset = offset
        self.check = check  # the rule that fired, for the ids in CHECKED

    def to_json(self) -> dict[str, Any]:
        kind = CATALOGUE[self.id]
        return {
            "id": self.id,
            "check": self.check,
            "severity": self.severity,
            "title": kind.title,
            "detail": self.detail,
            "recommendation": kind.recommendation,
            "offset": self.offset,
        }

    def as_report(self) -> schema.Finding:
        """:meth:`to_json`, typed as the report's finding: for the parent, which adds findings to a validated
        :class:`~workbench.schema.Report` (policy, chains, audits, the undeclared format)."""
        from typing import cast  # the parent's only: the child does not import typing

        return cast("schema.Finding", self.to_json())


def make(
    finding_id: str, detail: str, offset: int | None = None, severity: str | None = None, check: str | None = None
) -> Finding:
    """A finding of a catalogued kind; ``severity`` overrides the default (say, a legitimate polyglot).

    A finding of a CHECKED id needs its ``check`` (a stable id, ``format.rule``); other ids take none.
    """
    kind = CATALOGUE[finding_id]
    if (finding_id in CHECKED) != (check is not None) or (check is not None and not CHECK_ID.fullmatch(check)):
        raise ValueError(f"finding {finding_id!r} with check {check!r}")
    return Finding(finding_id, detail, severity or kind.severity, offset, check)
