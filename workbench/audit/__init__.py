"""Audit of libvirt configuration (domain XML, qemu.conf) against the "Secure Usage of Libvirt" guidance.

Pure Python, no Qt: :func:`workbench.audit.report.audit_path` turns one file into a report dict that the
command line and the window both show. Configuration files are treated as hostile input, like images.
"""

from __future__ import annotations


class AuditError(ValueError):
    """A file that cannot be audited; the message is one line meant for the user."""
