"""Landlock through ctypes: a ruleset that handles every right the kernel knows and grants none.

No maintained Python binding of Landlock exists (the PyPI packages are pre-releases or a few months
old), and the interface is three system calls and one struct, so this module calls them directly.
The ruleset is masked to the kernel's ABI version: asking an older kernel to handle a right it does
not know fails with EINVAL, and a right left out would silently not be denied.

Descriptors opened before :func:`restrict_self` keep their access (Landlock checks at open time), so
the image and the pipes stay usable while every later open, exec, connect or bind is refused.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

# Landlock's system call numbers are the same on every architecture (the unified table from 5.13 on).
SYS_CREATE_RULESET = 444
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1

# Filesystem rights by the ABI version that introduced them (include/uapi/linux/landlock.h).
_FS_BY_ABI = {
    1: (1 << 13) - 1,  # execute, write/read file, read dir, remove/make anything
    2: 1 << 13,  # refer: link or rename across directories
    3: 1 << 14,  # truncate
    5: 1 << 15,  # ioctl on devices
}
_NET_BY_ABI = {4: 0b11}  # bind and connect TCP
_SCOPE_BY_ABI = {6: 0b11}  # abstract unix sockets and signals outside the domain


class RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


def _mask(table: dict[int, int], abi: int) -> int:
    value = 0
    for version, bits in table.items():
        if version <= abi:
            value |= bits
    return value


def _syscall() -> Callable[..., int]:
    libc = ctypes.CDLL(None, use_errno=True)
    func = libc.syscall
    func.restype = ctypes.c_long
    return func


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is absent or disabled."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _syscall()(ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    return max(0, int(version))


def deny_all_attr(abi: int) -> RulesetAttr:
    """Every right that ABI ``abi`` can handle, none of them granted by any rule."""
    return RulesetAttr(_mask(_FS_BY_ABI, abi), _mask(_NET_BY_ABI, abi), _mask(_SCOPE_BY_ABI, abi))


def restrict_self() -> str:
    """Enforce the deny-all ruleset on this process (and its future children); return a status."""
    abi = abi_version()
    if abi == 0:
        return "unavailable: the kernel has no Landlock (or it is disabled)"
    syscall = _syscall()
    attr = deny_all_attr(abi)
    fd = syscall(ctypes.c_long(SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0)
    if fd < 0:
        return f"failed: landlock_create_ruleset: {os.strerror(ctypes.get_errno())}"
    try:
        if syscall(ctypes.c_long(SYS_RESTRICT_SELF), ctypes.c_int(fd), 0) != 0:
            return f"failed: landlock_restrict_self: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(fd)
    scope = "files, TCP and signals" if abi >= 6 else "files and TCP" if abi >= 4 else "files"
    return f"on (ABI {abi}: deny all {scope})"
