"""Audit of libvirt configuration (domain XML, qemu.conf) against the "Secure Usage of Libvirt" guidance.

Pure Python, no Qt: :func:`workbench.audit.report.audit_path` turns one file into a report dict that the
command line and the window both show. Configuration files are treated as hostile input, like images.
"""

from __future__ import annotations

# Here rather than in the modules that use them, so that the command line's help imports no XML parser.
KINDS = ("domain-xml", "qemu-conf")
DEFAULT_IMAGE_ROOTS = ("/var/lib/libvirt/images", "/var/lib/libvirt/boot", "/var/lib/nova/instances")


class AuditError(ValueError):
    """A file that cannot be audited; the message is one line meant for the user."""
