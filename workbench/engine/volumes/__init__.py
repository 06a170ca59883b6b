"""What sits between the guest disk and its filesystems: partition tables, LVM2, MD RAID, encryption.

Each module reads through a :class:`workbench.engine.guest_disk.View` and reports into an
:class:`workbench.engine.inspection.Inspection` with ``guest-*`` findings.
"""
