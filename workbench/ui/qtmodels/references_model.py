"""External references of one report (backing file, data file, extents, parent locators).

Whether a reference lies inside the allowed folders is decided from its text alone: the name is joined
to the image's folder and normalised, never opened, stat'ed or resolved through symbolic links.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from ...render.textsafe import printable
from ...schema import most_severe_first
from .node_model import Node, NodeModel

HEADERS = ["Role", "Name", "Kind", "Inside allowed folders", "Details"]
_WINDOWS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")
_SHOWN_KEYS = ("role", "name", "kind")


def local_target(image_path: str, name: str) -> str | None:
    """Where a path reference points, lexically, or ``None`` for a name that is no local path here."""
    if _WINDOWS.match(name) or "\0" in name:
        return None
    if name.startswith("file:"):
        name = name[len("file:") :]
    base = os.path.dirname(os.path.abspath(image_path))
    return os.path.normpath(os.path.join(base, name))


def allowed_status(image_path: str, ref: dict[str, Any], roots: list[str]) -> tuple[bool, str]:
    """``(inside, explanation)`` for one reference against the allowed folders."""
    if ref.get("kind") != "path":
        return False, f"no: a {ref.get('kind', 'non-path')} reference is never followed"
    target = local_target(image_path, str(ref.get("name", "")))
    if target is None:
        return False, "no: not a local path on this system"
    for root in roots:
        top = os.path.normpath(os.path.abspath(root))
        if os.path.commonpath([top, target]) == top:
            return True, f"yes: under {printable(top, 200)}"
    if not roots:
        return False, "no: no allowed folders are set"
    return False, f"no: {printable(target, 200)} is outside them"


def _details(ref: dict[str, Any]) -> str:
    extra = [
        f"{printable(k, 40)}={printable(v, 120)}" for k, v in ref.items() if k not in _SHOWN_KEYS and v is not None
    ]
    return ", ".join(extra)


def _severity(ref: dict[str, Any], findings: Any) -> str | None:
    """The worst severity among the findings about ``ref``: at its offset, or naming it in their detail."""
    name, offset = str(ref.get("name", "")), ref.get("offset")
    about = [
        f["severity"]
        for f in findings
        if (offset is not None and f.get("offset") == offset) or (name and name in str(f.get("detail", "")))
    ]
    return min(about, key=most_severe_first, default=None)


class ReferencesModel(NodeModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)

    def set_references(
        self, image_path: str, refs: list[dict[str, Any]], roots: list[str], findings: Sequence[dict[str, Any]] = ()
    ) -> None:
        """``findings`` give each reference the icon of the worst finding about it (same offset, or naming it)."""
        nodes = []
        for ref in refs:
            inside, why = allowed_status(image_path, ref, roots)
            name = printable(ref.get("name", ""), 1024)
            cells = [printable(ref.get("role", "reference"), 80), name, printable(ref.get("kind", ""), 40), why]
            cells.append(_details(ref))
            severity = _severity(ref, findings) or ("info" if inside else "warning")
            nodes.append(Node(cells, ref, f"{cells[0]}: {name}\n{why}", f"severity-{severity}"))
        self.set_nodes(nodes)
