"""cloop (compressed loop, V2.0): a shell-script preamble, then big-endian block size, block count and offsets.

Layout and limits from qemu's block/cloop.c. The offsets table has ``n_blocks + 1`` entries; at most
``MAX_OFFSETS`` of them are read, so the checks on later entries are reported as not done.
"""

from __future__ import annotations

from ..fields import Field, Layout, Spec, clean_text
from ..inspection import Inspection
from ..reader import Reader

NAMES = ("cloop",)
PRIORITY = 45

SHEBANG = b"#!/bin/sh\n"
MARKER = b"#V2.0 Format"
PREAMBLE = 128
SECTOR = 512
MAX_BLOCK_SIZE = 64 << 20  # qemu
MAX_OFFSETS_BYTES = 512 << 20  # qemu: "image requires too many offsets"
MAX_COMPRESSED = 2 * MAX_BLOCK_SIZE  # qemu: "invalid compressed block size"
MAX_OFFSETS = 4096  # entries read here (32 KiB)
SHOWN_OFFSETS = 16

HEADER = Layout(
    "header",
    [
        Spec("block_size", PREAMBLE, "I", "uncompressed bytes per block (multiple of 512, at most 64 MiB)"),
        Spec("n_blocks", PREAMBLE + 4, "I", "number of blocks"),
    ],
    ">",
)
HEADER_END = HEADER.size


def probe(reader: Reader) -> str | None:
    head = reader.read(0, PREAMBLE)
    return "cloop" if head.startswith(SHEBANG) and MARKER in head else None


def parse(reader: Reader, info: Inspection) -> None:
    data = reader.read(0, HEADER_END)
    values, group = HEADER.read(data, 0)
    group.children.insert(0, Field("preamble", 0, PREAMBLE, clean_text(data[:PREAMBLE]), "shell script (not run)"))
    info.fields.append(group)
    if len(data) < HEADER_END:
        info.malformed("cloop.header-truncated", f"header truncated: {len(data)} of {HEADER_END} bytes", 0)
        return
    block, count = values["block_size"], values["n_blocks"]
    if block == 0 or block % SECTOR or block > MAX_BLOCK_SIZE:
        info.malformed(
            "cloop.block-size",
            f"block size {block} is not a non-zero multiple of 512 up to 64 MiB (qemu refuses)",
            HEADER.offset_of("block_size"),
        )
        return
    info.virtual_size = count * block
    info.cluster_size = block
    table = (count + 1) * 8
    if table > MAX_OFFSETS_BYTES:
        info.malformed(
            "cloop.offsets-too-large",
            f"{count} blocks need a {table}-byte offsets table, over qemu's 512 MiB limit",
            HEADER.offset_of("n_blocks"),
        )
        return
    if HEADER_END + table > reader.size:
        info.malformed(
            "cloop.offsets-past-eof",
            f"offsets table of {count + 1} entries ends past the end of the file ({reader.size})",
            HEADER.offset_of("n_blocks"),
        )
    _check_offsets(reader, info, count + 1)


def _check_offsets(reader: Reader, info: Inspection, entries: int) -> None:
    """Offsets must grow, each compressed block stays under qemu's limit, and the last one fits the file."""
    shown = min(entries, MAX_OFFSETS)
    raw = reader.read(HEADER_END, shown * 8)
    offsets = [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw) - 7, 8)]
    group = Field("offsets", HEADER_END, len(raw), f"{entries} entries", "file offsets of the compressed blocks")
    for index, offset in enumerate(offsets[:SHOWN_OFFSETS]):
        group.add(Field(f"offset {index}", HEADER_END + 8 * index, 8, offset))
    info.fields.append(group)
    for index in range(1, len(offsets)):
        size = offsets[index] - offsets[index - 1]
        if size < 0 or size > MAX_COMPRESSED:
            info.malformed(
                "cloop.offsets-decreasing",
                f"block {index - 1}: offsets {offsets[index - 1]} -> {offsets[index]} (qemu refuses)",
            )
            break
    if offsets and max(offsets) > reader.size:
        info.malformed(
            "cloop.offset-past-eof", f"offset {max(offsets)} points past the end of the file ({reader.size})"
        )
    info.details["offsets_checked"] = len(offsets)
    if len(offsets) < entries:
        info.details["offsets_unchecked"] = entries - len(offsets)
