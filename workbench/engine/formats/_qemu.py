"""What qcow, qcow2 and qed share: the backing file name as qemu reads it, and tables placed against the file."""

from __future__ import annotations

from ..checks import aligned, ends_past
from ..fields import MAX_TEXT, Field, clean_text
from ..inspection import Inspection
from ..reader import Reader


def read_backing_name(
    reader: Reader,
    info: Inspection,
    offset: int,
    length: int,
    *,
    max_length: int,
    region_end: int | None,
    fmt: str | None,
    field_offset: int,
) -> None:
    """Report a backing file name stored at ``offset`` (qcow, qcow2, qed).

    Every violation of the limits qemu enforces is ``malformed``; the name is still reported (its first
    bytes when it is too long) because another tool might follow it.
    """
    where = f"backing file name at offset {offset}, {length} bytes"
    if length > max_length:
        info.malformed(
            f"{info.format}.backing-name-too-long",
            f"{where}: longer than the {max_length} bytes qemu accepts",
            field_offset,
        )
    if region_end is not None and offset + length > region_end:
        info.malformed(
            f"{info.format}.backing-name-past-header-area",
            f"{where}: runs past the header area, which ends at {region_end}",
            field_offset,
        )
    if offset + length > reader.size:
        info.malformed(
            f"{info.format}.backing-name-past-eof",
            f"{where}: runs past the end of the file ({reader.size} bytes)",
            field_offset,
        )
    raw = reader.read(offset, min(length, MAX_TEXT))
    name = clean_text(raw, "utf-8")  # qemu keeps the bytes up to the first NUL; host paths are UTF-8
    if not name:
        _empty_backing_name(info, raw, offset, where, field_offset)
        return
    info.fields.append(Field("backing file name", offset, len(raw), name, "never opened by the workbench"))
    info.set_backing(name, fmt, offset, stored=raw)
    if fmt is None:
        info.add("backing-format-unspecified", f"backing file {name!r} has no recorded format", field_offset)


def _empty_backing_name(info: Inspection, raw: bytes, offset: int, where: str, field_offset: int) -> None:
    """The header points at a name that qemu reads as empty (``bs->backing_file[0] == 0``): qemu opens no
    backing file, but the header claims one, and a reader that keeps the bytes after a NUL sees them."""
    detail = f"{where}: the header names a backing file, but the name qemu reads is empty, so it opens none"
    rest = clean_text(raw.replace(b"\0", b""), "utf-8")
    if rest:
        info.reference("backing file (after a NUL)", rest, offset)
        detail += f"; the bytes after the NUL read {rest!r}"
    info.malformed(f"{info.format}.backing-name-empty", detail, field_offset)


def no_backing_offset(info: Inspection, size: int, field_offset: int) -> None:
    """A backing name length without its offset: qemu reads no name (the header is inconsistent)."""
    if size:
        info.malformed(
            f"{info.format}.backing-size-without-offset",
            f"backing file name length {size} with offset 0: qemu reads no name",
            field_offset,
        )


def check_extent(
    reader: Reader,
    info: Inspection,
    check: str,
    name: str,
    offset: int,
    size: int,
    align: int | None,
    limit: int | None,
) -> Field:
    """Check where a table lies (without reading it) and return its node for the field tree; ``check`` is
    the prefix of the check ids (``qcow2.l1``: ``qcow2.l1-unaligned``, ``qcow2.l1-outside-file``...)."""
    if limit is not None and size > limit:
        info.malformed(check + "-too-large", f"{name} of {size} bytes is larger than qemu's limit of {limit}", offset)
    if align and not aligned(offset, align):
        info.malformed(
            check + "-unaligned", f"{name} offset {offset} is not aligned to the cluster size {align}", offset
        )
    if size and offset == 0:
        info.malformed(check + "-overlaps-header", f"{name} of {size} bytes at offset 0 overlaps the header", offset)
    elif size and ends_past(offset, size, reader.size):
        info.malformed(
            check + "-outside-file",
            f"{name} at offset {offset} ({size} bytes) ends past the end of the file ({reader.size} bytes)",
            offset,
        )
    return Field(name, offset, size, f"{size} bytes", "placement checked against the file size; not read")
