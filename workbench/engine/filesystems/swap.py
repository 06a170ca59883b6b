"""Linux swap: the SWAPSPACE2 signature in the last 10 bytes of the first page, the header at 1024."""

from __future__ import annotations

from typing import Any

from ..fields import Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock

PAGE_SIZES = (4096, 8192, 16384, 65536)
MAGICS = (b"SWAPSPACE2", b"SWAP-SPACE")
SPECS = [
    Spec("version", 0, "I"),
    Spec("last_page", 4, "I", "last usable page"),
    Spec("nr_badpages", 8, "I"),
    Spec("uuid", 12, "16s", "", "uuid"),
    Spec("label", 28, "16s", "", "text"),
]


def _page(view: View) -> int | None:
    for page in PAGE_SIZES:
        if view.read(page - 10, 10) in MAGICS:
            return page
    return None


def probe(view: View) -> bool:
    return _page(view) is not None


def parse(view: View, info: Inspection) -> dict[str, Any]:
    page = _page(view) or PAGE_SIZES[0]
    values, _, _ = superblock(view, info, "swap header", 1024, 44, SPECS, "<")
    return summary(
        "swap",
        label=values.get("label") or None,
        uuid=values.get("uuid"),
        size=(values.get("last_page", 0) + 1) * page,
        block_size=page,
        version=values.get("version"),
    )
