"""Audit finding ids, their severity, title and the recommendation citing the guidance section they come from.

The ids are a contract like the engine's (add new ones, never rename). ``detail`` is built by the checks
from what the file says; ``location`` is ``line N`` for qemu.conf and an XPath-like path for domain XML
(``None`` when the finding is about a setting the file leaves out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.findings import CRITICAL, INFO, WARNING, Kind

_GUIDE = "Secure Usage of Libvirt"
_PROBING = f"{_GUIDE}: disk image format probing"
_BACKING = f"{_GUIDE}: disk image backing files"
_MIGRATION = f"{_GUIDE}: guest migration network"
_ENCRYPTION = f"{_GUIDE}: storage encryption"

CATALOGUE: dict[str, Kind] = {
    # domain XML
    "disk-format-unspecified": Kind(
        WARNING,
        "Disk or backing image without an explicit format",
        "Give every disk <driver type='...'/> and every <backingStore> a <format type='...'/>, and end the "
        "chain with an empty <backingStore/>; a format left out is assumed or probed from contents a guest "
        f"can write ({_PROBING}).",
    ),
    "network-disk-unencrypted": Kind(
        WARNING,
        "Network disk without LUKS encryption",
        "Encrypt non-local storage with <encryption format='luks'> (a libvirt secret holds the key) so "
        f"storage and network administrators cannot read the guest's data ({_ENCRYPTION}).",
    ),
    "nbd-without-tls": Kind(
        WARNING,
        "NBD disk without TLS",
        "Set tls='yes' on the NBD <source> (or nbd_tls = 1 in qemu.conf and leave tls out): NBD sends "
        f"disk contents in clear text and does not authenticate the server otherwise ({_ENCRYPTION}).",
    ),
    "disk-outside-image-folders": Kind(
        WARNING,
        "Disk source outside the image folders",
        "Keep guest disks in dedicated image folders or storage pools: a path elsewhere can hand a host file "
        "or device to the guest, and libvirt may relabel and re-own it for QEMU. If the folder is intended, "
        f"add it to the image folders (workbench audit --image-root). The risk is the one in {_BACKING}.",
    ),
    "backing-network-source": Kind(
        CRITICAL,
        "Backing chain names a network source",
        "A backing level on the network makes the host connect out for a disk's parent; if the image "
        "metadata put it there, an uploaded image chose the server. Flatten the image or pin a trusted "
        f"chain explicitly ({_BACKING}).",
    ),
    "disk-encryption-weak": Kind(
        WARNING,
        "Weak or legacy disk encryption",
        "qcow/'default' encryption is the deprecated AES-CBC scheme with a predictable IV; convert the disk "
        f"to LUKS (<encryption format='luks'>) ({_ENCRYPTION}).",
    ),
    # qemu.conf
    "format-probing-enabled": Kind(
        CRITICAL,
        "Disk format probing is enabled",
        "Remove allow_disk_format_probing or set it to 0: with probing a guest that writes a qcow2 header "
        "into its raw disk makes the host open any file as its backing file. Current libvirt refuses to "
        f"start with it ({_PROBING}).",
    ),
    "migration-listen-all": Kind(
        WARNING,
        "Incoming migrations listen on every address",
        "Set migration_address to an address on a network only the virtualization hosts can reach, not "
        f"guests or libvirt clients, and firewall the migration port range ({_MIGRATION}).",
    ),
    "migration-host-default": Kind(
        INFO,
        "Migration sources connect to the default hostname",
        "Set migration_host to this host's name or address on the dedicated migration network, so sources "
        f"connect there and not over a network guests or clients share ({_MIGRATION}).",
    ),
    "migration-unencrypted": Kind(
        WARNING,
        "Migration is not forced to use TLS",
        "Set migrate_tls_force = 1 and deploy certificates (migrate_tls_x509_cert_dir or "
        "default_tls_x509_cert_dir): migrations started without --tls send guest memory and disks in clear "
        f"text ({_MIGRATION}).",
    ),
    "migration-tls-unverified": Kind(
        WARNING,
        "Migration TLS does not verify client certificates",
        "Set migrate_tls_x509_verify = 1 (or default_tls_x509_verify = 1) and issue client certificates, so "
        f"only the other hosts can connect and start an incoming migration ({_MIGRATION}).",
    ),
    "nbd-tls-disabled": Kind(
        INFO,
        "NBD disks do not use TLS by default",
        "Set nbd_tls = 1 so every NBD disk uses TLS unless its XML says tls='no'; NBD has no encryption of "
        f"its own ({_ENCRYPTION}).",
    ),
    "conf-unparsable": Kind(
        WARNING,
        "Line libvirt cannot parse",
        "libvirt refuses a qemu.conf with a syntax error and the daemon does not start; fix the line. "
        "Settings read around it may not be what libvirt would use.",
    ),
    "conf-invalid-value": Kind(
        WARNING,
        "Setting with a value libvirt rejects",
        "libvirt refuses to start with a value of the wrong type or range; fix it so the intended "
        "security setting takes effect.",
    ),
    "conf-duplicate-setting": Kind(
        INFO,
        "Setting appears more than once",
        "libvirt uses the first occurrence and ignores later ones; keep one line per setting so the file "
        "says what is in force.",
    ),
    # either kind
    "audit-truncated": Kind(
        WARNING,
        "Audit stopped at a limit",
        "The file has more disks, backing levels, errors or findings than the audit examines; what lies "
        "past the limit was not checked. Treat it as unknown.",
    ),
}


@dataclass(frozen=True)
class AuditFinding:
    id: str
    detail: str
    location: str | None = None

    @property
    def severity(self) -> str:
        return CATALOGUE[self.id].severity

    def to_json(self) -> dict[str, Any]:
        kind = CATALOGUE[self.id]
        return {
            "id": self.id,
            "severity": kind.severity,
            "title": kind.title,
            "detail": self.detail,
            "recommendation": kind.recommendation,
            "location": self.location,
        }
