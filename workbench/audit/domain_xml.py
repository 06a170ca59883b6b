"""libvirt domain XML (``virsh dumpxml`` output): the disk checks.

Parsed with defusedxml and no document type declaration allowed: a DTD is where entities are defined
(billion laughs, external files), and libvirt's domain XML never has one. Every disk and every level of
its ``<backingStore>`` chain is checked, the chain walked iteratively up to ``MAX_CHAIN`` levels. Paths
named in the file are compared as strings only: never opened, stat'ed or resolved.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml  # noqa: N813  # the defused parser, named for what it is
from defusedxml import DTDForbidden

from . import DEFAULT_IMAGE_ROOTS, AuditError
from .findings import AuditFinding

MAX_DISKS = 1024
MAX_CHAIN = 64
TEXT_CAP = 256
LUKS_FORMATS = frozenset({"luks", "luks2", "luks-any"})  # luks2 and luks-any: the librbd encryption engine
WEAK_FORMATS = {
    "qcow": "is the legacy qcow AES scheme",
    "default": "leaves the scheme to the image format: the legacy qcow AES scheme for qcow and qcow2",
}
NO_FORMAT = frozenset({"", "none", "auto"})
_EXTERNAL_ENTITY = re.compile(rb"<!ENTITY\s+(?:%\s+)?[^\s>]+\s+(?:SYSTEM|PUBLIC)\b")
_PATH_ATTRIBUTE = {"file": "file", "block": "dev", "dir": "dir"}  # <disk type=...> -> <source attribute=...>


def _cut(text: str | None, cap: int = TEXT_CAP) -> str:
    text = "" if text is None else text
    return text if len(text) <= cap else text[:cap] + "…"


def parse(data: bytes) -> Element:
    """The ``<domain>`` root element; :class:`AuditError` for anything else, with a one-line reason."""
    try:
        # forbid_dtd stops at <!DOCTYPE, before any entity or external reference could be declared
        root = safe_xml.fromstring(data, forbid_dtd=True)
    except DTDForbidden as exc:
        raise AuditError(f"XML refused: <!DOCTYPE {_cut(exc.name, 40)}> {_doctype_reason(data, exc)}") from None
    except ParseError as exc:
        raise AuditError(f"not well-formed XML: {exc}") from None
    if root.tag != "domain":
        raise AuditError(f"not a libvirt domain XML: the root element is <{_cut(root.tag, 80)}>, not <domain>")
    return root


def _doctype_reason(data: bytes, exc: DTDForbidden) -> str:
    """Why the declaration is refused, named after what it carries (the parser stopped before reading it)."""
    if _EXTERNAL_ENTITY.search(data):
        what = "declares an external entity (a file or URL to read in)"
    elif b"<!ENTITY" in data:
        what = "declares entities (nested expansion, as in 'billion laughs')"
    elif exc.sysid:
        what = f"names the external DTD {_cut(exc.sysid, 80)!r}"
    else:
        what = "is a document type declaration"
    return f"{what}; DTDs are refused because libvirt domain XML has none"


@dataclass(frozen=True)
class _Level:
    """The disk itself (level 0) or one <backingStore> below it."""

    element: Element
    location: str
    label: str
    format: str | None
    backing: bool


def _chain(disk: Element, location: str, label: str) -> tuple[list[_Level], bool]:
    """The disk and its explicit backing levels; ``True`` when the chain goes past ``MAX_CHAIN``."""
    levels = [_Level(disk, location, label, _attribute(disk.find("driver"), "type"), False)]
    node = disk.find("backingStore")
    while node is not None and (node.attrib or len(node)):  # an empty <backingStore/> ends the chain
        if len(levels) > MAX_CHAIN:
            return levels, True
        location += "/backingStore"
        depth = len(levels)
        levels.append(
            _Level(node, location, f"{label} backing level {depth}", _attribute(node.find("format"), "type"), True)
        )
        node = node.find("backingStore")
    return levels, False


def _attribute(element: Element | None, name: str) -> str | None:
    return None if element is None else element.get(name)


def _describe_network(source: Element) -> str:
    protocol = _cut(source.get("protocol") or "network", 20)
    host = source.find("host")
    where = ""
    if host is not None:
        port = f":{_cut(host.get('port'), 8)}" if host.get("port") else ""
        where = f" on {_cut(host.get('name') or host.get('socket'), 120)}{port}"
    return f"{protocol} source {_cut(source.get('name'), 120)!r}{where}"


def _is_local_socket(source: Element) -> bool:
    """NBD and friends over a UNIX socket on this host: the data does not cross a network."""
    hosts = source.findall("host")
    return bool(hosts) and all(host.get("transport") == "unix" for host in hosts)


def _inside(path: str, roots: Sequence[str]) -> bool:
    normal = posixpath.normpath(path)
    if normal.startswith("//"):  # POSIX keeps a leading "//"; Linux treats it as "/"
        normal = "/" + normal.lstrip("/")
    return any(normal == root or normal.startswith(root.rstrip("/") + "/") for root in roots)


class _DiskChecks:
    def __init__(self, image_roots: Sequence[str]) -> None:
        self.roots = tuple(image_roots)
        self.findings: list[AuditFinding] = []

    def add(self, finding_id: str, detail: str, level: _Level) -> None:
        self.findings.append(AuditFinding(finding_id, f"{level.label}: {detail}", level.location))

    def disk(self, disk: Element, location: str) -> None:
        target = _attribute(disk.find("target"), "dev")
        label = f"disk {_cut(target, 40)}" if target else "disk without a target"
        levels, truncated = _chain(disk, location, label)
        for level in levels:
            self.level(level)
        if truncated:
            self.add(
                "audit-truncated", f"backing chain deeper than {MAX_CHAIN} levels; the rest not checked", levels[-1]
            )

    def level(self, level: _Level) -> None:
        source = level.element.find("source")
        if source is None:
            return  # an empty removable drive (or a level libvirt would reject): nothing is opened
        self.format(level)
        self.encryption(level, source)
        if level.element.get("type") == "network" or source.get("protocol") is not None:
            self.network(level, source)
        else:
            self.local_path(level, source)

    def format(self, level: _Level) -> None:
        value = level.format
        if value is not None and value.strip().lower() not in NO_FORMAT:
            return
        element = "<format type=...>" if level.backing else "<driver type=...>"
        if value is None:
            detail = f"no {element}: the format would be assumed or probed"
        else:
            detail = f"{element} is {_cut(value, 40)!r}, which names no format"
        self.add("disk-format-unspecified", detail, level)

    def encryption(self, level: _Level, source: Element) -> None:
        found = _encryption(level.element, source)
        if found is None:
            return
        scheme = found.get("format")
        if scheme in LUKS_FORMATS:
            return
        if scheme in WEAK_FORMATS:
            detail = f"<encryption format={scheme!r}> {WEAK_FORMATS[scheme]}"
        else:
            detail = f"<encryption format={_cut(scheme, 40)!r}> is not a LUKS format this audit knows"
        self.add("disk-encryption-weak", detail, level)

    def network(self, level: _Level, source: Element) -> None:
        described = _describe_network(source)
        if level.backing:
            self.add("backing-network-source", f"the backing chain continues on the network: {described}", level)
        if _is_local_socket(source):
            return
        if _encryption(level.element, source) is None:
            self.add("network-disk-unencrypted", f"{described} has no <encryption>", level)
        if source.get("protocol") == "nbd" and source.get("tls") != "yes":
            tls = source.get("tls")
            state = (
                f"tls={_cut(tls, 20)!r} turns TLS off" if tls else "no tls attribute: TLS only if qemu.conf nbd_tls = 1"
            )
            self.add("nbd-without-tls", f"{described}: {state}", level)

    def local_path(self, level: _Level, source: Element) -> None:
        kind = level.element.get("type") or "file"
        attribute = _PATH_ATTRIBUTE.get(kind)
        path = source.get(attribute) if attribute else None
        if not path or _inside(path, self.roots):
            return
        shown = _cut(path)
        if not path.startswith("/"):
            why = "is a relative path, resolved against whatever folder libvirt runs in"
        elif ".." in path.split("/"):
            why = f"is {_cut(posixpath.normpath(path))!r} once '..' is resolved, outside the image folders"
        else:
            why = "is outside the image folders"
        roots = ", ".join(self.roots)
        self.add("disk-outside-image-folders", f"{kind} source {shown!r} {why} ({_cut(roots, 400)})", level)


def _encryption(element: Element, source: Element) -> Element | None:
    """libvirt accepts <encryption> under <source> and directly under <disk> or <backingStore>."""
    found = source.find("encryption")
    return found if found is not None else element.find("encryption")


def audit(data: bytes, image_roots: Sequence[str] = DEFAULT_IMAGE_ROOTS) -> tuple[list[AuditFinding], dict[str, Any]]:
    """Findings and a small summary for one domain XML document."""
    root = parse(data)
    checks = _DiskChecks(image_roots)
    disks = root.findall("./devices/disk")
    for index, disk in enumerate(disks[:MAX_DISKS], start=1):
        checks.disk(disk, f"/domain/devices/disk[{index}]")
    if len(disks) > MAX_DISKS:
        checks.findings.append(
            AuditFinding("audit-truncated", f"{len(disks)} disks; only the first {MAX_DISKS} were checked")
        )
    summary = {"name": _cut(root.findtext("name")), "disks": len(disks)}
    return checks.findings, summary
