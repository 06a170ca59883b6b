"""The sandbox's layers by name, and how a layer's status reads: what the parent needs to judge a child's layer
line, without the hardening code (:mod:`.sandbox`, which loads ``ctypes`` and applies the layers)."""

from __future__ import annotations

import sys

ORDER = ("fds", "user", "namespaces", "no_new_privs", "not_dumpable", "landlock", "rlimits", "seccomp", "job")
DEGRADED = "weaker:"  # marks an ``on`` status that holds less than the layer promises
LINUX_ONLY = frozenset({"namespaces", "no_new_privs", "not_dumpable", "landlock", "seccomp"})
WINDOWS_ONLY = frozenset({"job"})  # not reported elsewhere: it is the name of a Windows mechanism


def layer_order() -> tuple[str, ...]:
    """The layers this system reports, in :data:`ORDER`."""
    return ORDER if sys.platform == "win32" else tuple(name for name in ORDER if name not in WINDOWS_ONLY)


def is_on(status: str) -> bool:
    return status.startswith("on")


def missing_required(status: dict[str, str], required: list[str]) -> list[str]:
    """Required layers that are not on; ``a|b`` means at least one of them. (``is_on`` written out here and in
    :func:`degraded`: the parent asks both of every reply of a batch.)"""
    missing = []
    for need in required:
        for option in need.split("|"):
            if status.get(option, "").startswith("on"):
                break
        else:
            missing.append(need)
    return missing


def degraded(status: dict[str, str]) -> dict[str, str]:
    """Layers that are not on, or on but weaker than they promise, with their status."""
    return {name: text for name, text in status.items() if not text.startswith("on") or DEGRADED in text}
