"""One structure-aware fuzzing harness for every format (fuzz/README.md).

Each seed image (every builder in tests.builders, and qemu-img's own images) is inspected once; its
report's field tree says where every field lies. Hypothesis then edits those fields: integers set to
boundary values in the field's own byte order (0, 1, max, 2**31, 2**63, past the end of the file...),
numbers and names inside text (VMDK descriptors, LUKS2 JSON) replaced by huge numbers, hostile text or
nothing, ranges filled with patterns, bytes flipped where the engine read, checksums recomputed so edits
reach past them, files cut at field boundaries or extended. Every report must hold the invariants of
fuzz/checks.py, within a deterministic call budget. A small subset goes through the real sandboxed child,
where a hang or crash would turn the verdict into ``failed``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import checks
from fuzz.corpus import DECLARED, QEMU_IMAGES, Seed, builder_seeds, qemu_seeds
from workbench import inspector
from workbench.policy.policy import Policy

SECTOR = 512
FILL_CAP = 4096
TEXT_VALUES = (
    b"0",
    b"-1",
    b"4294967296",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9" * 40,
    b"1e999",
    b"nan",
    b"null",
    b"[]",
    b"{}",
    b"",
    b'"',
    b"\\",
    b"\x00",
    b"\x1b]0;owned\x07\x9b31m",
    "\u202eevil\u2066".encode(),
    b"../../../../etc/shadow",
    b"nbd://attacker:10809/disk",
    b'json:{"file":{"driver":"file","filename":"/etc/shadow"}}',
    b"A" * 5000,
)
FILL_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x20)


@dataclass(frozen=True)
class Target:
    """A seed and where its fields are, from its own report."""

    seed: Seed
    numbers: tuple[tuple[int, int, str], ...]  # offset, size, byte order of integer fields
    texts: tuple[tuple[int, int, int, int], ...]  # field offset, size; where its value's text sits, how long
    ranges: tuple[tuple[int, int], ...]  # every field's range, clamped to the file
    regions: tuple[tuple[int, int], ...]  # bytes the engine read


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            return None
    return None


def _text_position(region: bytes, value: Any) -> tuple[int, int] | None:
    """Where ``value`` (a name, or a number written as text) appears inside its field's bytes."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    text = str(value)
    for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
        needle = text.encode(encoding, "replace")
        at = region.find(needle)
        if at >= 0:
            return at, len(needle)
    return None


def _nodes(fields: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    stack = list(fields)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.get("children", []))


def prepare(seed: Seed) -> Target:
    image = checks.Image()
    try:
        rep, _ = checks.inspect(image, seed.data, seed.declared)
    finally:
        image.close()
    data = seed.data
    numbers, texts, ranges = set(), set(), set()
    for node in _nodes(rep["fields"]):
        offset, size = node["offset"], node["size"]
        if size <= 0 or offset >= len(data):
            continue
        size = min(size, len(data) - offset)
        ranges.add((offset, size))
        raw = data[offset : offset + size]
        number = _as_int(node["value"])
        if number is not None and size in (1, 2, 4, 8):
            orders = [o for o in ("little", "big") if int.from_bytes(raw, o) == number]  # type: ignore[arg-type]
            numbers.update((offset, size, order) for order in orders or ["little", "big"])
        else:
            found = _text_position(raw, node["value"])
            if found:
                texts.add((offset, size, *found))
    regions = tuple((r["offset"], len(r["hex"]) // 2) for r in rep["byte_regions"] if r["hex"])
    # a raw image without a partition table has no field with a size: its read regions stand in
    return Target(seed, tuple(sorted(numbers)), tuple(sorted(texts)), tuple(sorted(ranges)) or regions, regions)


class Mutant:
    """A mutated seed; its repr names the edits, not the bytes, so that a failing example reads well."""

    def __init__(self, seed: Seed) -> None:
        self.seed = seed.name
        self.data = bytearray(seed.data)
        self.edits: list[str] = []
        self.declared = seed.declared

    def __repr__(self) -> str:
        return f"Mutant({self.seed!r} as {self.declared!r}, {len(self.data)} bytes: {'; '.join(self.edits)})"


def boundaries(size: int, original: int, file_size: int) -> st.SearchStrategy[int]:
    top = (1 << 8 * size) - 1
    specials = [0, 1, 2, top, top - 1, top >> 1, (top >> 1) + 1, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 63]
    specials += [file_size, file_size + 1, file_size - 1, file_size // SECTOR, file_size // SECTOR + 1]
    specials += [original + 1, original - 1, original * 2, original << 9, original >> 9]
    return st.sampled_from(sorted({v & top for v in specials})) | st.integers(0, top)


@st.composite
def number_edit(draw: st.DrawFn, target: Target, m: Mutant) -> None:
    offset, size, order = draw(st.sampled_from(target.numbers))
    original = int.from_bytes(m.data[offset : offset + size], order)  # type: ignore[arg-type]
    value = draw(boundaries(size, original, len(m.data)))
    m.data[offset : offset + size] = value.to_bytes(size, order)  # type: ignore[arg-type]
    m.edits.append(f"{size}-byte {order}-endian @{offset} = {value:#x}")


@st.composite
def text_edit(draw: st.DrawFn, target: Target, m: Mutant) -> None:
    """Replace a value written as text; keep the field's length (a cut or NUL-padded value) or splice."""
    offset, size, at, length = draw(st.sampled_from(target.texts))
    start = offset + at
    replacement = draw(st.sampled_from(TEXT_VALUES))
    keep = draw(st.booleans())
    if keep:
        field = bytes(m.data[offset:start]) + replacement + bytes(m.data[start + length : offset + size])
        m.data[offset : offset + size] = field[:size].ljust(size, b"\0")
    else:
        m.data[start : start + length] = replacement
    m.edits.append(f"text @{start}+{length} {'in place' if keep else 'spliced'} = {replacement[:40]!r}")


@st.composite
def fill_edit(draw: st.DrawFn, target: Target, m: Mutant) -> None:
    offset, size = draw(st.sampled_from(target.ranges))
    size = min(size, FILL_CAP)
    byte = draw(st.sampled_from(FILL_BYTES))
    m.data[offset : offset + size] = bytes([byte]) * size
    m.edits.append(f"fill @{offset}+{size} with {byte:#04x}")


@st.composite
def flip_edit(draw: st.DrawFn, target: Target, m: Mutant) -> None:
    offset, size = draw(st.sampled_from(target.regions))
    for _ in range(draw(st.integers(1, 8))):
        at, mask = draw(st.integers(offset, offset + size - 1)), draw(st.integers(1, 255))
        if at < len(m.data):
            m.data[at] ^= mask
            m.edits.append(f"xor @{at} {mask:#04x}")


@st.composite
def resize(draw: st.DrawFn, target: Target, m: Mutant) -> None:
    """Most often nothing; else cut at a field boundary or anywhere, or grow the file."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        offset, size = draw(st.sampled_from(target.ranges))
        cut = draw(st.sampled_from([offset, offset + 1, offset + size - 1]))
    elif choice == 1:
        cut = draw(st.integers(0, len(m.data)))
    elif choice == 2:
        byte, count = draw(st.sampled_from(FILL_BYTES)), draw(st.sampled_from([1, SECTOR, 65536]))
        m.data += bytes([byte]) * count
        m.edits.append(f"append {count} x {byte:#04x}")
        return
    else:
        return
    del m.data[cut:]
    m.edits.append(f"cut at {cut}")


@st.composite
def mutant(draw: st.DrawFn, target: Target) -> Mutant:
    """A mutated seed, declared as the seed's own format (now and then as another)."""
    m = Mutant(target.seed)
    kinds = [flip_edit, fill_edit]
    kinds += [number_edit] * 3 if target.numbers else []
    kinds += [text_edit] * 2 if target.texts else []
    for _ in range(draw(st.integers(1, 4))):
        draw(draw(st.sampled_from(kinds))(target, m))
    if target.seed.fix is not None and draw(st.booleans()):
        target.seed.fix(m.data)
        m.edits.append("checksums fixed")
    draw(resize(target, m))
    if not draw(st.integers(0, 7)):
        m.declared = draw(st.sampled_from(DECLARED))
    return m


def assert_holds(image: checks.Image, m: Mutant) -> None:
    rep, _ = checks.inspect(image, bytes(m.data), m.declared)  # raises CallBudgetExceeded past the budget
    checks.check(rep, len(m.data))


TARGETS = {seed.name: prepare(seed) for seed in builder_seeds()}
# Examples per seed; a long run raises it: WORKBENCH_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py (fuzz/README.md)
EXAMPLES = int(os.environ.get("WORKBENCH_FUZZ_EXAMPLES", "50"))
# CI runs the same examples every time (a test that passes only sometimes is a defect); set
# WORKBENCH_FUZZ_RANDOM=1 to explore new ones, and keep what they find as regression tests.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("WORKBENCH_FUZZ_RANDOM") != "1",
)


@pytest.fixture(scope="module")
def image() -> Iterator[checks.Image]:
    holder = checks.Image()
    yield holder
    holder.close()


def test_every_seed_has_fields_to_mutate() -> None:
    assert len(TARGETS) >= 50
    for target in TARGETS.values():
        assert target.ranges and target.regions, target.seed.name
    image_formats = set(DECLARED) - {None, "raw", "mbr", "gpt"}  # MBR and GPT seeds are declared raw
    assert all(any(t.numbers for t in TARGETS.values() if t.seed.declared == fmt) for fmt in image_formats)
    described = {name for name, t in TARGETS.items() if t.texts}
    assert {"descriptor.vmdk", "luks2.luks", "bootable.iso"} <= described


@pytest.mark.parametrize("name", list(TARGETS))
@FUZZ
@given(data=st.data())
def test_mutated_seed_gives_a_sound_report(image: checks.Image, name: str, data: st.DataObject) -> None:
    assert_holds(image, data.draw(mutant(TARGETS[name])))


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    yield folder
    shutil.rmtree(folder)


_QEMU_TARGETS: dict[str, Target] = {}


def qemu_target(qemu_img: str, name: str, folder: Path) -> Target:
    """The prepared qemu-img seeds, made once per session (a cache rather than a fixture: hypothesis prints
    a falsifying example's arguments, and these hold whole images)."""
    if not _QEMU_TARGETS:
        _QEMU_TARGETS.update((seed.name, prepare(seed)) for seed in qemu_seeds(folder, qemu_img))
    return _QEMU_TARGETS[name]


@pytest.mark.qemu
@pytest.mark.parametrize("name", [name for name, *_ in QEMU_IMAGES])
@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(data=st.data())
def test_mutated_qemu_image_gives_a_sound_report(
    image: checks.Image, qemu_img: str, scratch: Path, name: str, data: st.DataObject
) -> None:
    assert_holds(image, data.draw(mutant(qemu_target(qemu_img, name, scratch))))


def test_call_budget_stops_unbounded_work() -> None:
    def spin() -> None:
        while True:
            len("")

    with pytest.raises(checks.CallBudgetExceeded), checks.call_budget(1000) as calls:
        spin()
    assert calls[0] == 1001


@settings(FUZZ, max_examples=max(1, EXAMPLES // 5))
@given(data=st.data())
def test_mutants_in_the_sandboxed_child_never_fail(scratch: Path, data: st.DataObject) -> None:
    """A hang (timeout), crash, memory blow-up or refused reply in the real child makes the verdict ``failed``."""
    target = TARGETS[data.draw(st.sampled_from(sorted(TARGETS)))]
    m = data.draw(mutant(target))
    path = scratch / "mutant.img"
    path.write_bytes(m.data)
    request = inspector.Request(str(path), m.declared or inspector.DETECT, policy=Policy(), timeout=30)
    report = asyncio.run(inspector.inspect(request))
    assert report["verdict"] != "failed", report.get("error")
    assert report["file_size"] == os.stat(path).st_size
