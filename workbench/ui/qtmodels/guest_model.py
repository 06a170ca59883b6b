"""The Guest tab's tree of layers: the partition table, then each volume with its filesystem, container and
operating system (report key ``guest``, untrusted: every string escaped and capped by the node builders)."""

from __future__ import annotations

from typing import Any

from ...render.sizes import human_size
from ...render.textsafe import printable
from .field_tree_model import FieldTreeModel
from .node_model import Node, NodeModel, walk
from .property_model import MAX_ITEMS, dict_node

HEADERS = ["Layer", "Value"]
LAYERS = ("filesystem", "container", "os")


def _volume_summary(volume: dict[str, Any]) -> str:
    start, length = volume.get("start"), volume.get("length")
    where = f"at {human_size(start)}" if isinstance(start, int) else ""
    size = human_size(length) if isinstance(length, int) else "unknown size"
    return printable(f"{volume.get('type') or 'unknown type'}, {size} {where}".strip(), 300)


def layer_nodes(guest: dict[str, Any]) -> list[Node]:
    """Nodes for a ``guest`` value that is not ``{"unavailable": ...}``; a volume's node carries the volume
    (its payload) so that selecting it selects its block."""
    nodes: list[Node] = []
    table = guest.get("partition_table")
    if isinstance(table, dict):
        nodes.append(dict_node("Partition table", table, printable(table.get("type") or "", 80)))
    else:
        nodes.append(Node(["Partition table", "none found"]))
    volumes = [v for v in guest.get("volumes") or [] if isinstance(v, dict)]
    for volume in volumes[:MAX_ITEMS]:
        name = printable(volume.get("name") or "", 80)
        node = Node([f"Volume {printable(volume.get('index'), 12)} {name}".rstrip(), _volume_summary(volume)], volume)
        for key in ("start", "length"):
            node.add(Node([key, f"{volume.get(key)}"]))
        for key in LAYERS:
            layer = volume.get(key)
            if isinstance(layer, dict):
                node.add(dict_node(key, layer, printable(layer.get("type") or layer.get("name") or "", 80)))
        nodes.append(node)
    if len(volumes) > MAX_ITEMS:
        nodes.append(Node(["…", f"{len(volumes) - MAX_ITEMS} more volumes not listed"]))
    return nodes


class GuestModel(NodeModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)

    def set_guest(self, guest: dict[str, Any] | None) -> None:
        self.set_nodes(layer_nodes(guest) if guest and "unavailable" not in guest else [])

    def node_of(self, volume: dict[str, Any]) -> Node | None:
        return next((n for n in self.nodes() if n.payload is volume), None)


def volume_field(fields: FieldTreeModel, volume: dict[str, Any]) -> Node | None:
    """The field node of a guest volume: the first structure read inside it (a filesystem's superblock),
    else its partition table entry, under the field tree's ``guest`` node (fields at guest offsets)."""
    guest = next((n for n in fields.nodes() if n.payload.get("name") == "guest"), None)
    if guest is None:
        return None
    start, length = volume.get("start"), volume.get("length")
    if isinstance(start, int) and isinstance(length, int):
        inside = [
            n for n in walk(guest.children) if n.payload["size"] > 0 and start <= n.payload["offset"] < start + length
        ]
        if inside:
            return min(inside, key=lambda n: (n.payload["offset"], n.depth()))
    name = f"entry {volume.get('index')}"
    entries = [n for n in walk(guest.children) if n.payload.get("name") == name and n.payload["size"] > 0]
    in_gpt = [n for n in entries if n.parent is not None and "partition entries" in n.parent.payload.get("name", "")]
    return next(iter(in_gpt or entries), None)  # a GPT entry, not the protective MBR's of the same number
