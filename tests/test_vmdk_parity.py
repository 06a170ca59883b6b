"""VMDK read the way qemu reads it: every file qemu-img opens (traced with strace) is a reference.

Each hostile image below made qemu-img 7.2 open, or try to open, another file while an earlier
workbench accepted it or missed the name (issue 13). The oracle runs ``qemu-img info --backing-chain
-f vmdk`` under strace in a throwaway folder; the workbench must name every path qemu tried and reject.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.builders import vmdk
from tests.conftest import required_tool
from tests.helpers import assert_no_parser_error, finding_ids, inspect_file
from workbench import inspector
from workbench.engine.formats import _vmdk_text as text
from workbench.engine.inspection import MAX_LIST

_TRACED = re.compile(r'\b(?:open|openat|stat|newfstatat|statx)\((?:[^,"]*, )?"((?:[^"\\]|\\.)*)"')


@pytest.fixture(scope="session")
def strace() -> str:
    return required_tool("strace", "strace")


def qemu_opened(strace: str, qemu_img: str, image: Path) -> set[str]:
    """Every path qemu-img tried to open or stat in the image's folder, other than the image."""
    folder = image.parent
    trace = folder.parent / f"{folder.name}.trace"
    cmd = [strace, "-f", "-qq", "-o", str(trace), "-e", "trace=openat,open,stat,newfstatat,statx"]
    cmd += [qemu_img, "info", "--backing-chain", "-f", "vmdk", str(image)]
    subprocess.run(cmd, cwd=folder, capture_output=True, timeout=120, check=False)
    paths = {os.path.normpath(os.path.join(folder, p)) for p in _TRACED.findall(trace.read_text())}
    return {p for p in paths if os.path.dirname(p) == str(folder) and p != str(image)}


def oracle(strace: str, qemu_img: str, tmp_path: Path, data: bytes, **siblings: bytes) -> dict[str, Any]:
    """The image in a throwaway folder: qemu must open another file, the workbench must name it and reject."""
    folder = tmp_path / "oracle"
    folder.mkdir()
    image = folder / "image.vmdk"
    image.write_bytes(data)
    for name, content in siblings.items():
        (folder / name.replace("_", ".")).write_bytes(content)
    opened = qemu_opened(strace, qemu_img, image)
    rep = asyncio.run(inspector.inspect(inspector.Request(str(image), "vmdk")))
    named = {os.path.normpath(os.path.join(folder, r["name"])) for r in rep["references"]}
    assert opened, "qemu opened no other file: the sample is not hostile"
    assert opened <= named, (opened - named, rep["findings"])
    assert rep["verdict"] == "reject"
    return rep


def details(rep: dict[str, Any], finding_id: str) -> str:
    return " | ".join(f["detail"] for f in rep["findings"] if f["id"] == finding_id)


@pytest.mark.qemu
@pytest.mark.parametrize("where", vmdk.HINT_PLACES)
def test_parent_hint_where_qemu_looks(where: str, strace: str, qemu_img: str, tmp_path: Path) -> None:
    rep = oracle(strace, qemu_img, tmp_path, vmdk.hint_outside_descriptor(where, "wb-parent.vmdk"))
    assert "wb-parent.vmdk" in {r["name"] for r in rep["references"] if r["role"].startswith("backing file")}
    assert "backing-file" in finding_ids(rep)


CAPACITY_ZERO = {
    # the extent line lies past the one declared sector
    "past-declared-size": vmdk.capacity_zero(vmdk.flat_descriptor("#" * 600 + '\nRW 8 FLAT "wb-extent" 0\n')),
    # (2**55 + 1) << 9 wraps to 512 in qemu's uint64 arithmetic
    "wrapping-offset": vmdk.capacity_zero(vmdk.flat_descriptor('RW 8 FLAT "wb-extent" 0\n'), desc_offset=(1 << 55) + 1),
    # 300 KiB of comments: past the old 64 KiB cap, within qemu's 1 MiB
    "large": vmdk.capacity_zero(vmdk.flat_descriptor("#" * (300 << 10) + '\nRW 8 FLAT "wb-extent" 0\n')),
}


@pytest.mark.qemu
@pytest.mark.parametrize("case", CAPACITY_ZERO)
def test_capacity_zero_descriptor_as_qemu_reads_it(case: str, strace: str, qemu_img: str, tmp_path: Path) -> None:
    rep = oracle(strace, qemu_img, tmp_path, CAPACITY_ZERO[case])
    assert [e["filename"] for e in rep["extents"]] == ["wb-extent"]
    assert rep["virtual_size"] == 8 * 512
    assert "read-budget" not in finding_ids(rep)


@pytest.mark.qemu
@pytest.mark.parametrize("case", vmdk.SSCANF_LINES)
def test_extent_line_as_qemu_tokenises_it(case: str, strace: str, qemu_img: str, tmp_path: Path) -> None:
    rep = oracle(strace, qemu_img, tmp_path, vmdk.sscanf_descriptor(case, "wb-extent"))
    assert [e["filename"] for e in rep["extents"] if e["external"]] == ["wb-extent"]
    assert "unparsable" not in details(rep, "malformed")


@pytest.mark.qemu
def test_text_descriptor_past_the_probe_window(strace: str, qemu_img: str, tmp_path: Path) -> None:
    """The probe does not match, but qemu -f vmdk reads any file without a sparse magic as a descriptor."""
    rep = oracle(strace, qemu_img, tmp_path, vmdk.late_descriptor("wb-extent"))
    assert rep["format"] == "vmdk" and rep["format_matches"] == []
    assert "reads it as a text descriptor" in details(rep, "format-mismatch")


@pytest.mark.qemu
def test_extent_past_the_list_cap(strace: str, qemu_img: str, tmp_path: Path) -> None:
    """qemu opens the 1100th extent; the list keeps 1024, the reference and a critical finding remain."""
    data = vmdk.many_extents(1100, "data.raw", "wb-far-extent")
    rep = oracle(strace, qemu_img, tmp_path, data, data_raw=bytes(512))
    assert len(rep["extents"]) == MAX_LIST
    assert {r["name"] for r in rep["references"]} == {"data.raw", "wb-far-extent"}
    budget = [f for f in rep["findings"] if f["id"] == "read-budget"]
    assert budget and all(f["severity"] == "critical" for f in budget)
    assert "descriptor has 1100 extents; every line read was examined" in budget[0]["detail"]
    assert "76 past the first 1024 listed" in details(rep, "external-extent")


def test_descriptor_up_to_qemus_limit_is_read_whole(tmp_path: Path) -> None:
    """A 900 KiB descriptor is read to its end, like qemu's 1 MiB - 1 (the old cap was 64 KiB)."""
    path = tmp_path / "big.vmdk"
    path.write_bytes(vmdk.flat_descriptor("#" * (900 << 10) + '\nRW 8 FLAT "far" 0\n').encode())
    rep = inspect_file(path, "vmdk")
    assert [e["filename"] for e in rep["extents"]] == ["far"]
    assert "read-budget" not in finding_ids(rep)
    assert_no_parser_error(rep)


def test_descriptor_past_qemus_limit_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "huge.vmdk"
    path.write_bytes(vmdk.capacity_zero(vmdk.flat_descriptor("#" * (2 << 20)), pad_to=3 << 20))
    rep = inspect_file(path, "vmdk")
    (finding,) = [f for f in rep["findings"] if f["id"] == "read-budget"]
    assert finding["severity"] == "critical" and "not examined" in finding["detail"]
    assert rep["bytes_read"] <= rep["read_budget"]


def test_unterminated_hint_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "open.vmdk"
    path.write_bytes(vmdk.sparse(2048, vmdk.descriptor() + 'parentFileNameHint="no-end\n'))
    rep = inspect_file(path, "vmdk")
    assert "has no closing quote" in details(rep, "malformed")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'RW -8 FLAT "x" 0', ("RW", -8, "FLAT", "x", 0)),
        (b'RW 8 FLAT "x" 99999999999999999999', ("RW", 8, "FLAT", "x", (1 << 63) - 1)),
        (b'RW 8 FLAT "x" -99999999999999999999', ("RW", 8, "FLAT", "x", -(1 << 63))),
        (b'RW 8 FLAT ""', ("RW", 8, "FLAT", "", None)),  # an empty name fails %[: three conversions
        (b"RDONLY 8 ZERO", ("RDONLY", 8, "ZERO", "", None)),
        (b'RW 0x10 FLAT "x" 0', ("RW", 0, "x10", "", None)),  # %lld stops at the x, which becomes the type
        (b"RW 8 " + b"A" * 12 + b' "x"', ("RW", 8, "A" * 10, "", None)),  # %10s, then "AA" where a quote must be
        (b'RW8 FLAT "x" 0', None),  # %10s takes "RW8"
    ],
)
def test_sscanf_emulation(line: bytes, expected: tuple[Any, ...] | None) -> None:
    """What sscanf stores for one line; lines it reads without a name are never opened by qemu."""
    qemu = [e for e in text.parse(line + b"\n", 0).extents if e.grammar in ("qemu", "both")]
    assert [(e.access, e.sectors, e.type, e.filename, e.offset) for e in qemu] == ([expected] if expected else [])
    assert all(e.qemu_opens == (e.filename == "x" and e.sectors > 0 and (e.offset or 0) >= 0) for e in qemu)
