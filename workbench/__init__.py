"""Disk Image Workbench: inspect untrusted virtual disk images without trusting them.

Nothing at this level imports Qt: the engine child imports ``workbench.engine`` through here.
"""

__version__ = "0.1.0"
