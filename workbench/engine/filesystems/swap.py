"""Linux swap: the SWAPSPACE2 signature in the last 10 bytes of the first page, the header at 1024."""

from __future__ import annotations

from typing import Any

from ..fields import Layout, Spec
from ..guest_disk import View
from ..inspection import Inspection
from ._common import summary, superblock

PAGE_SIZES = (4096, 8192, 16384, 65536)
MAGICS = (b"SWAPSPACE2", b"SWAP-SPACE")
HEADER_AT = 1024
HEADER = Layout(
    "swap header",
    [
        Spec("version", 0, "I"),
        Spec("last_page", 4, "I", "last usable page"),
        Spec("nr_badpages", 8, "I"),
        Spec("uuid", 12, "16s", "", "uuid"),
        Spec("label", 28, "16s", "", "text"),
    ],
    "<",
)
MAGIC_SIZE = 10  # the signature is the last bytes of the first page


def _page(view: View) -> int | None:
    for page in PAGE_SIZES:
        if view.read(page - MAGIC_SIZE, MAGIC_SIZE) in MAGICS:
            return page
    return None


def probe(view: View) -> bool:
    return _page(view) is not None


def parse(view: View, info: Inspection) -> dict[str, Any]:
    page = _page(view) or PAGE_SIZES[0]
    values, _, _ = superblock(view, info, HEADER, HEADER_AT)
    return summary(
        "swap",
        label=HEADER.shown(values, "label") or None,
        uuid=HEADER.shown(values, "uuid"),
        size=(values.get("last_page", 0) + 1) * page,
        block_size=page,
        version=values.get("version"),
    )
