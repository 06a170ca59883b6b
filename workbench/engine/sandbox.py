"""Child-side hardening, applied after the engine's imports and before the first byte of the image.

Each layer reports ``on``, ``unavailable: why`` or ``failed: why``; nothing fails silently. The parent
decides from the policy which layers are required.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

ADDRESS_SPACE = 1 << 30  # 1 GiB: the interpreter plus a bounded parse
CPU_SECONDS = 10
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38

Layer = Callable[[set[int]], str]


def _preload() -> None:
    """Import what parsing may import lazily, while files can still be opened."""
    import encodings.ascii  # noqa: F401
    import encodings.latin_1  # noqa: F401
    import encodings.utf_8  # noqa: F401
    import encodings.utf_16_be  # noqa: F401
    import encodings.utf_16_le  # noqa: F401
    import hashlib  # noqa: F401
    import json  # noqa: F401
    import uuid  # noqa: F401
    import zlib  # noqa: F401


def _fds(expected: set[int]) -> str:
    try:
        open_fds = {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError as exc:
        return f"unavailable: cannot list descriptors ({exc.strerror})"
    extra = []
    for fd in sorted(open_fds - expected):
        try:
            os.fstat(fd)
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
        os.close(fd)
        extra.append(fd)
    return f"on (closed unexpected descriptors {extra})" if extra else "on"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int) -> str:
    if _libc().prctl(option, arg, 0, 0, 0) != 0:
        return f"failed: prctl errno {ctypes.get_errno()}"
    return "on"


def _rlimits(expected: set[int]) -> str:
    try:
        import resource
    except ImportError:
        return "unavailable: no resource module on this system"
    limits = [
        (resource.RLIMIT_AS, ADDRESS_SPACE),
        (resource.RLIMIT_CPU, CPU_SECONDS),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, max(expected) + 1),
        (resource.RLIMIT_NPROC, 0),
    ]
    failed = []
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as exc:
            failed.append(f"{which}: {exc}")
    return f"failed: {'; '.join(failed)}" if failed else "on"


def _no_new_privs(expected: set[int]) -> str:
    if not sys.platform.startswith("linux"):
        return "unavailable: Linux only"
    return _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _not_dumpable(expected: set[int]) -> str:
    if not sys.platform.startswith("linux"):
        return "unavailable: Linux only"
    return _prctl(PR_SET_DUMPABLE, 0)


LAYERS: dict[str, Layer] = {
    "fds": _fds,
    "rlimits": _rlimits,
    "no_new_privs": _no_new_privs,
    "not_dumpable": _not_dumpable,
}


def harden(expected_fds: set[int]) -> dict[str, str]:
    """Apply every layer in order and say how each went."""
    _preload()
    status: dict[str, str] = {}
    for name, layer in LAYERS.items():
        try:
            status[name] = layer(expected_fds)
        except Exception as exc:  # a layer that breaks is reported, never hidden
            status[name] = f"failed: {type(exc).__name__}: {exc}"
    return status


def missing_required(status: dict[str, str], required: list[str]) -> list[str]:
    """Required layers that are not on; ``a|b`` means at least one of them."""
    missing = []
    for need in required:
        options = need.split("|")
        if not any(status.get(option, "").startswith("on") for option in options):
            missing.append(need)
    return missing
