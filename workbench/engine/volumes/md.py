"""Linux MD RAID member superblocks: 0.90 (64 KiB-aligned, at the end) and 1.x (1.0 end, 1.1 at 0,
1.2 at 4 KiB), magic 0xa92b4efc, little-endian as written on x86 (md_p.h)."""

from __future__ import annotations

from typing import Any

from ..fields import Layout, Spec, uuid_text
from ..guest_disk import View
from ..inspection import Inspection

MAGIC = 0xA92B4EFC
V1 = Layout(
    "MD 1.x superblock",
    [
        Spec("magic", 0, "I", "", "hex"),
        Spec("major_version", 4, "I"),
        Spec("feature_map", 8, "I", "", "hex"),
        Spec("set_uuid", 16, "16s", "", "uuid"),
        Spec("set_name", 32, "32s", "", "text"),
        Spec("ctime", 64, "Q"),
        Spec("level", 72, "i"),
        Spec("size", 80, "Q", "sectors used per device"),
        Spec("raid_disks", 92, "I"),
        Spec("data_offset", 128, "Q", "sectors"),
        Spec("data_size", 136, "Q", "sectors"),
        Spec("super_offset", 144, "Q", "sectors"),
        Spec("dev_number", 160, "I"),
    ],
    "<",
)
V1_READ = 256
HEAD = V1.only("magic", "major_version")  # what every version starts with
V090 = Layout(
    "MD 0.90 superblock",
    [
        Spec("magic", 0, "I", "", "hex"),
        Spec("major_version", 4, "I"),
        Spec("minor_version", 8, "I"),
        Spec("set_uuid0", 20, "4s", "", "bytes"),
        Spec("level", 28, "i"),
        Spec("size", 32, "I", "KiB used per device"),
        Spec("raid_disks", 40, "I"),
        Spec("set_uuid1", 52, "12s", "", "bytes"),
    ],
    "<",
)
V090_READ = 128


def _locations(size: int) -> list[tuple[str, int]]:
    end_1 = ((size >> 9) - 16 & ~7) << 9 if size >= 8192 else -1
    end_090 = ((size >> 16) - 1) << 16 if size >= 65536 else -1
    return [("1.2", 4096), ("1.1", 0), ("1.0", end_1), ("0.90", end_090)]


def _find(view: View) -> tuple[str, int] | None:
    for version, offset in _locations(view.size):
        if offset < 0:
            continue
        head = HEAD.unpack_from(view.read(offset, HEAD.size))
        if head["magic"] == MAGIC and (head["major_version"] == 0) == (version == "0.90"):
            return version, offset
    return None


def probe(view: View) -> bool:
    return _find(view) is not None


def read(view: View, info: Inspection) -> tuple[dict[str, Any], View | None]:
    """The member's summary, and for a mirror (RAID 1) the data area as a view (each member is a copy)."""
    version, offset = _find(view) or ("1.2", 4096)
    if version == "0.90":
        values, group = V090.read(view.read(offset, V090_READ), view.guest_offset(offset))
        raw_uuid = values.get("set_uuid0", b"") + values.get("set_uuid1", b"")
        set_uuid: str | None = uuid_text(raw_uuid)  # as far as the bytes go
        data = (0, values.get("size", 0) * 1024)
        name = None
    else:
        values, group = V1.read(view.read(offset, V1_READ), view.guest_offset(offset), f"MD {version} superblock")
        set_uuid, name = V1.shown(values, "set_uuid"), V1.shown(values, "set_name") or None
        data = (values.get("data_offset", 0) * 512, values.get("data_size", 0) * 512)
    info.fields.append(group)
    level = values.get("level")
    container = {
        "type": "linux_raid_member",
        "version": version,
        "uuid": set_uuid,
        "name": name,
        "level": level,
        "raid_disks": values.get("raid_disks"),
        "data_offset": data[0],
        "data_size": data[1],
    }
    if data[0] + data[1] > view.size:
        info.add("guest-layout", f"MD member data area {data[0]}+{data[1]} reaches past its volume ({view.size} bytes)")
    return container, view.sub(data[0], data[1]) if level == 1 and data[1] else None
