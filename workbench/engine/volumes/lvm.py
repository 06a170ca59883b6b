"""LVM2 physical volumes: the label (``LABELONE`` in one of the first four sectors), the PV header, the
metadata area's header and its current metadata text, and the logical volumes' linear segments.

Hand-checked against LVM2's on-disk format (lib/format_text/layout.h, label.h): little-endian, CRCs
with LVM's initial value 0xf597a6cf and no final inversion.
"""

from __future__ import annotations

import zlib
from typing import Any

from ..fields import Field, Layout, Spec
from ..guest_disk import Segment, View
from ..inspection import Inspection
from . import lvm_text

SECTOR = 512
LABEL_ID, LABEL_TYPE = b"LABELONE", b"LVM2 001"
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
CRC_INIT = 0xF597A6CF
MAX_AREAS = 8
MAX_TEXT = 64 << 10
MAX_LVS = 64
MAX_SEGMENTS = 64
LABEL = Layout(
    "LVM2 label",
    [
        Spec("id", 0, "8s", "LABELONE", "text"),
        Spec("sector", 8, "Q", "sector of this label"),
        Spec("crc", 16, "I", "CRC of bytes 20..512", "hex"),
        Spec("offset", 20, "I", "PV header offset in the label sector"),
        Spec("type", 24, "8s", "LVM2 001", "text"),
    ],
    "<",
)
LABEL_CRC_FROM = LABEL.offset_of("offset")  # the label's CRC covers the rest of its sector from here
PV_HEADER = Layout("LVM2 PV header", [Spec("uuid", 0, "32s"), Spec("device_size", 32, "Q")], "<")
DISK_LOCATION = Layout("LVM2 disk location", [Spec("offset", 0, "Q"), Spec("size", 8, "Q")], "<")
MDA = Layout(
    "LVM2 metadata area header",
    [
        Spec("checksum", 0, "I", "CRC of bytes 4..512", "hex"),
        Spec("magic", 4, "16s", "", "bytes"),
        Spec("version", 20, "I"),
        Spec("start", 24, "Q", "absolute offset of the area"),
        Spec("size", 32, "Q"),
        Spec("text_offset", 40, "Q", "raw_locn: text offset in the area"),
        Spec("text_size", 48, "Q"),
        Spec("text_checksum", 56, "I", "", "hex"),
    ],
    "<",
)
MDA_CRC_FROM = MDA.size_of("checksum")  # the header's CRC covers the rest of its sector


def lvm_crc(data: bytes) -> int:
    """LVM2's calc_crc: the reflected CRC-32 register from 0xf597a6cf, no final inversion."""
    return zlib.crc32(data, CRC_INIT ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def _label_sector(view: View) -> int | None:
    for sector in range(4):
        label = LABEL.unpack_from(view.read(sector * SECTOR, LABEL.size))
        if label["id"] == LABEL_ID and label["type"] == LABEL_TYPE:
            return sector
    return None


def probe(view: View) -> bool:
    return _label_sector(view) is not None


def _pv_uuid(raw: bytes) -> str:
    text = raw.decode("ascii", errors="replace")
    return "-".join(text[a:b] for a, b in ((0, 6), (6, 10), (10, 14), (14, 18), (18, 22), (22, 26), (26, 32)))


def _areas(data: bytes, at: int) -> tuple[list[tuple[int, int]], int]:
    """A zero-terminated list of (offset, size) disk locations, at most MAX_AREAS."""
    areas: list[tuple[int, int]] = []
    while at + DISK_LOCATION.size <= len(data) and len(areas) < MAX_AREAS:
        location = DISK_LOCATION.unpack_from(data, at)
        offset, size = location["offset"], location["size"]
        at += DISK_LOCATION.size
        if not offset and not size:
            break
        areas.append((offset, size))
    return areas, at


def _metadata(view: View, info: Inspection, mda: int) -> dict[str, Any] | None:
    header = view.read(mda, SECTOR)
    values, group = MDA.read(header, view.guest_offset(mda))
    info.fields.append(group)
    if values.get("magic") != MDA_MAGIC:
        info.add(
            "guest-malformed", f"LVM2 metadata area at {mda} has no ' LVM2 x[5A%r0N*>' magic", view.guest_offset(mda)
        )
        return None
    if lvm_crc(header[MDA_CRC_FROM:SECTOR]) != values["checksum"]:
        info.add("guest-malformed", "LVM2 metadata area header CRC does not match", view.guest_offset(mda))
    size, offset = values["text_size"], values["text_offset"]
    if size > MAX_TEXT:
        info.add("guest-budget", f"LVM2 metadata text of {size} bytes not read (more than {MAX_TEXT})")
        return None
    area_start, area_size = values["start"], values["size"]
    first = min(size, max(0, area_size - offset))
    raw = view.read(area_start + offset, first) + view.read(area_start + SECTOR, size - first)  # circular buffer
    if lvm_crc(raw) != values["text_checksum"]:
        info.add("guest-malformed", "LVM2 metadata text CRC does not match", view.guest_offset(area_start + offset))
    text = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    info.fields.append(Field("LVM2 metadata text", view.guest_offset(area_start + offset), len(raw), len(text)))
    try:
        return lvm_text.parse(text)
    except lvm_text.TextError as error:
        info.add("guest-malformed", f"LVM2 metadata text not parsed: {error}", view.guest_offset(area_start + offset))
        return None


def _lv_segments(view: View, vg: dict[str, Any], lv: dict[str, Any], pv_name: str) -> tuple[list[Segment], int]:
    """Linear segments of ``lv`` that lie on this PV, at guest offsets; and the LV's size."""
    extent = vg.get("extent_size", 0) * SECTOR if isinstance(vg.get("extent_size"), int) else 0
    pv = vg.get("physical_volumes", {}).get(pv_name, {})
    pe_start = pv.get("pe_start", 0) * SECTOR if isinstance(pv.get("pe_start"), int) else 0
    segments, size = [], 0
    for key, seg in list(lv.items())[:MAX_SEGMENTS]:
        if not key.startswith("segment") or not isinstance(seg, dict):
            continue
        start, count = seg.get("start_extent"), seg.get("extent_count")
        stripes = seg.get("stripes")
        if not isinstance(start, int) or not isinstance(count, int) or count < 0 or start < 0:
            continue
        size = max(size, (start + count) * extent)
        linear = seg.get("type") == "striped" and seg.get("stripe_count") == 1
        if not (isinstance(stripes, list) and len(stripes) == 2 and stripes[0] == pv_name):
            continue  # not on this physical volume
        if linear and isinstance(stripes[1], int) and stripes[1] >= 0:
            place = pe_start + stripes[1] * extent
            segments.append(Segment(start * extent, view.guest_offset(place), count * extent))
    return segments, size


def read(view: View, info: Inspection) -> tuple[dict[str, Any], list[tuple[str, View]]]:
    """The PV's container summary and its logical volumes (``vg/lv`` name and a view over its segments)."""
    sector = _label_sector(view) or 0
    data = view.read(sector * SECTOR, SECTOR)
    values, group = LABEL.read(data, view.guest_offset(sector * SECTOR))
    info.fields.append(group)
    if lvm_crc(data[LABEL_CRC_FROM:SECTOR]) != values.get("crc"):
        info.add("guest-malformed", "LVM2 label CRC does not match", view.guest_offset(sector * SECTOR))
    at = values.get("offset", 32)
    pv_uuid = _pv_uuid(data[at : at + PV_HEADER.size_of("uuid")]) if at + PV_HEADER.size <= SECTOR else None
    _, after = _areas(data, at + PV_HEADER.size)
    mdas, _ = _areas(data, after)
    container: dict[str, Any] = {"type": "LVM2_member", "uuid": pv_uuid, "metadata_areas": len(mdas)}
    metadata = _metadata(view, info, mdas[0][0]) if mdas else None
    vg_name = next((k for k, v in (metadata or {}).items() if isinstance(v, dict)), None)
    if metadata is None or vg_name is None:
        return container, []
    vg = metadata[vg_name]
    pv_name = next(
        (k for k, v in vg.get("physical_volumes", {}).items() if isinstance(v, dict) and v.get("id") == pv_uuid), None
    )
    container |= {"vg": vg_name[:256], "vg_uuid": vg.get("id"), "seqno": vg.get("seqno"), "pv_name": pv_name}
    lvs = [(k, v) for k, v in vg.get("logical_volumes", {}).items() if isinstance(v, dict)]
    if len(lvs) > MAX_LVS:
        info.add("guest-budget", f"VG {vg_name[:64]} has {len(lvs)} logical volumes; the first {MAX_LVS} are listed")
    container["logical_volumes"] = [name[:256] for name, _ in lvs[:MAX_LVS]]
    out = []
    for name, lv in lvs[:MAX_LVS]:
        segments, size = _lv_segments(view, vg, lv, pv_name or "")
        out.append((f"{vg_name}/{name}"[:256], View(view.disk, segments, size)))
    return container, out
