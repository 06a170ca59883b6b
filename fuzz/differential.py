"""Differential harness against the consumer: every file qemu tries to open must be in the references.

Seeds are made by ``qemu-img create`` with sentinel names (every name a seed or a mutation writes starts
with ``SNTL``). Each case mutates the parts of a seed that carry or locate references (descriptor text and
offsets, header extensions, name offsets and lengths, size fields), then:

- runs ``qemu-img info --backing-chain --output=json -f FMT`` and ``qemu-img map`` under ``strace -f`` with
  cwd in a throwaway folder that holds only the image (and the seed's own companion files, so that qemu
  gets past them);
- keeps every path qemu tried to open, stat, access or readlink that is not the image itself, not a path
  qemu also touches for a plain raw image (the loader, locale, /proc, /sys) and that lies in the throwaway
  folder or is named by the image's bytes (its full path or its base name);
- inspects the image through the normal inspect path (the sandboxed fork server) with the format declared;
- reports a differential when such a path is not named by any reference, or when the verdict is not reject.

``python -m fuzz.differential --cases N [--seed S] [--only SEED...] [--save DIR]`` runs N cases per seed
(see fuzz/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz.qemu_create import qemu_img_create
from workbench import inspector
from workbench.host.runner import ForkServerRunner
from workbench.policy import policy

SENTINEL = "SNTL"
TRACED = "open,openat,stat,newfstatat,statx,lstat,access,readlink"
_CALL = re.compile(r'^(?:\d+\s+)?(\w+)\((?:AT_FDCWD|-?\d+)?,?\s*"((?:\\x[0-9a-f]{2})*)"')
QEMU_TIMEOUT = 20.0
_CID = re.compile(rb"(?m)^((?:parent)?CID=)(?!ffffffff)[0-9a-f]{1,8}\b")  # qemu-img writes random ones


@dataclass(frozen=True)
class Int:
    """An integer field of a seed header: where it is, how wide, which byte order."""

    offset: int
    size: int
    endian: str  # "<" or ">"


@dataclass
class Seed:
    name: str
    fmt: str
    filename: str
    data: bytes
    companions: dict[str, bytes | int] = field(default_factory=dict)  # bytes, or the size of a zero file
    ints: tuple[Int, ...] = ()
    pointers: tuple[tuple[Int, Int], ...] = ()  # (offset field, length field) pairs that locate a name
    area: tuple[int, int] = (0, 4096)  # bytes where references live
    text: tuple[int, int] | None = None  # descriptor text range
    text_file: bool = False  # the whole file is a text descriptor
    protocols: bool = False  # new names may carry qemu protocol prefixes (json:, blkdebug:, fat:)


@dataclass
class Case:
    id: str
    seed: Seed
    data: bytes
    edits: list[str]


@dataclass
class Outcome:
    case_id: str
    opened: list[str]  # paths qemu tried, other than the image and the system's own
    missing: list[str]  # of those, the ones no reference names
    verdict: str
    references: list[str]
    edits: list[str]

    @property
    def differential(self) -> bool:
        return bool(self.missing) or (bool(self.opened) and self.verdict != "reject")

    def describe(self) -> str:
        return (
            f"{self.case_id}: qemu opened {self.opened}, not in references {self.missing}; "
            f"verdict {self.verdict}; references {self.references}; edits {self.edits}"
        )


# --- seeds -----------------------------------------------------------------------------------------------


def _create(qemu_img: str, folder: Path, fmt: str, name: str, size: str, *options: str) -> None:
    cmd = [qemu_img, "create", "-q", "-f", fmt, *options, name, size]
    qemu_img_create(cmd, folder, QEMU_TIMEOUT)


def _companions(folder: Path, names: Iterable[str]) -> dict[str, bytes | int]:
    out: dict[str, bytes | int] = {}
    for name in names:
        size = (folder / name).stat().st_size
        out[name] = size if size > 1 << 20 else (folder / name).read_bytes()  # large ones are qemu-img's zeros
    return out


def _fixed_cids(data: bytes) -> bytes:
    """VMDK content ids are random (1 to 8 hex digits): fixed ones keep every case reproducible."""
    if not data.startswith(b"KDMV"):
        return _CID.sub(rb"\g<1>5eed0c1d", data)
    start, size = struct.unpack_from("<QQ", data, 28)
    region = data[start * 512 : (start + size) * 512]
    text = _CID.sub(rb"\g<1>5eed0c1d", region.split(b"\0", 1)[0])
    return data[: start * 512] + text.ljust(len(region), b"\0") + data[(start + size) * 512 :]


def make_seeds(qemu_img: str) -> list[Seed]:
    """The seed images, made by qemu-img with sentinel names (deterministic but for VMDK's random CID)."""
    be, le = ">", "<"
    with tempfile.TemporaryDirectory(prefix="wb-seeds-") as tmp:
        d = Path(tmp)
        _create(
            qemu_img,
            d,
            "qcow2",
            "SNTLa.qcow2",
            "64M",
            "-o",
            "cluster_size=4096",
            "-u",
            "-b",
            "SNTLbk.qcow2",
            "-F",
            "qcow2",
        )
        _create(qemu_img, d, "qcow2", "SNTLw.qcow2", "64M", "-u", "-b", "SNTLbk2.qcow2", "-F", "qcow2")
        _create(qemu_img, d, "qcow2", "SNTLe.qcow2", "64M", "-o", "cluster_size=4096,data_file=SNTLdata.raw")
        _create(qemu_img, d, "qed", "SNTLd.qed", "64M", "-u", "-b", "SNTLbk.qed", "-F", "qed")
        _create(qemu_img, d, "qcow", "SNTLg.qcow", "64M", "-u", "-b", "SNTLbk.raw", "-F", "raw")
        _create(qemu_img, d, "vmdk", "SNTLparent.vmdk", "64M")
        _create(qemu_img, d, "vmdk", "SNTLc.vmdk", "64M", "-b", "SNTLparent.vmdk", "-F", "vmdk")
        _create(qemu_img, d, "vmdk", "SNTLb.vmdk", "1M", "-o", "subformat=monolithicFlat")
        _create(qemu_img, d, "vmdk", "SNTLf.vmdk", "3G", "-o", "subformat=twoGbMaxExtentSparse")
        read = {p.name: _fixed_cids(p.read_bytes()) for p in d.iterdir() if p.stat().st_size <= 1 << 20}
        qcow2_ints = (Int(8, 8, be), Int(16, 4, be), Int(100, 4, be), Int(72, 8, be), Int(104, 1, be), Int(20, 4, be))
        qcow2_ptr = ((Int(8, 8, be), Int(16, 4, be)),)
        vmdk_ints = (Int(28, 8, le), Int(36, 8, le), Int(12, 8, le), Int(8, 4, le), Int(4, 4, le), Int(20, 8, le))
        seeds = [
            Seed("qcow2-backing", "qcow2", "SNTLa.qcow2", read["SNTLa.qcow2"], ints=qcow2_ints, pointers=qcow2_ptr),
            Seed(
                "qcow2-datafile",
                "qcow2",
                "SNTLe.qcow2",
                read["SNTLe.qcow2"],
                _companions(d, ["SNTLdata.raw"]),
                ints=qcow2_ints,
                pointers=qcow2_ptr,
            ),
            Seed(
                "qed-backing",
                "qed",
                "SNTLd.qed",
                read["SNTLd.qed"],
                ints=(Int(56, 4, le), Int(60, 4, le), Int(16, 8, le), Int(12, 4, le), Int(4, 4, le), Int(8, 4, le)),
                pointers=((Int(56, 4, le), Int(60, 4, le)),),
            ),
            Seed(
                "qcow-backing",
                "qcow",
                "SNTLg.qcow",
                read["SNTLg.qcow"],
                ints=(Int(8, 8, be), Int(16, 4, be), Int(32, 1, be), Int(33, 1, be), Int(36, 4, be)),
                pointers=((Int(8, 8, be), Int(16, 4, be)),),
                area=(0, 1024),
            ),
            Seed(
                "vmdk-sparse-parent",
                "vmdk",
                "SNTLc.vmdk",
                read["SNTLc.vmdk"],
                ints=vmdk_ints,
                area=(0, 12288),
                text=(512, 10752),
            ),
            Seed(
                "vmdk-flat",
                "vmdk",
                "SNTLb.vmdk",
                read["SNTLb.vmdk"],
                _companions(d, ["SNTLb-flat.vmdk"]),
                text_file=True,
            ),
            Seed(
                "vmdk-2gb-sparse",
                "vmdk",
                "SNTLf.vmdk",
                read["SNTLf.vmdk"],
                _companions(d, ["SNTLf-s001.vmdk", "SNTLf-s002.vmdk"]),
                text_file=True,
            ),
            Seed(
                "qcow2-wide",
                "qcow2",
                "SNTLw.qcow2",
                read["SNTLw.qcow2"],
                ints=qcow2_ints,
                pointers=qcow2_ptr,
                area=(0, 65536),
                protocols=True,
            ),
        ]
    return seeds


SEED_NAMES = (
    "qcow2-backing",
    "qcow2-datafile",
    "qed-backing",
    "qcow-backing",
    "vmdk-sparse-parent",
    "vmdk-flat",
    "vmdk-2gb-sparse",
    "qcow2-wide",
)


# --- mutations -------------------------------------------------------------------------------------------


def _names(rng: random.Random, protocols: bool = False) -> str:
    """A fresh sentinel name, sometimes with a folder, a protocol prefix or odd characters."""
    base = f"{SENTINEL}{rng.randrange(10**6):06d}"
    choices = [base, base + ".img", f"sub/{base}", f"./{base}", f"../{base}", f"{base} x", f'"{base}"']
    choices += [f"file:{base}", f"{base}\t"]
    if protocols:
        choices += [f'json:{{"file.filename": "{base}"}}', f"blkdebug::{base}", f"fat:rw:{base}", f"file:./{base}"]
    return rng.choice(choices)


def _put(data: bytearray, offset: int, raw: bytes) -> None:
    if offset + len(raw) > len(data):
        data.extend(bytes(offset + len(raw) - len(data)))
    data[offset : offset + len(raw)] = raw


def _get(data: bytes, spot: Int) -> int:
    return int.from_bytes(data[spot.offset : spot.offset + spot.size], "little" if spot.endian == "<" else "big")


def _set(data: bytearray, spot: Int, value: int) -> None:
    value &= (1 << (8 * spot.size)) - 1
    _put(data, spot.offset, value.to_bytes(spot.size, "little" if spot.endian == "<" else "big"))


def mutate_int(rng: random.Random, seed: Seed, data: bytearray) -> str:
    spot = rng.choice(seed.ints)
    old = _get(data, spot)
    bits = 8 * spot.size
    value = rng.choice(
        [
            0,
            1,
            old + 1,
            old - 1,
            old * 2,
            old + 512,
            old - 8,
            old + rng.randrange(1, 64),
            1 << (bits - 1),
            (1 << bits) - 1,
            (1 << 31),
            len(data),
            len(data) - 1,
            rng.randrange(seed.area[1]),
            rng.getrandbits(bits),
        ]
    )
    _set(data, spot, value)
    return f"int@{spot.offset}:{old}->{value & ((1 << bits) - 1)}"


def repoint_name(rng: random.Random, seed: Seed, data: bytearray) -> str:
    """Write a new name somewhere and point an (offset, length) pair at it, sometimes off by a few bytes."""
    off_spot, len_spot = rng.choice(seed.pointers)
    name = _names(rng, seed.protocols).encode()
    where = rng.choice(
        [rng.randrange(seed.area[0], seed.area[1]), len(data), _get(data, off_spot), seed.area[1] - len(name) // 2]
    )
    if where > len(data) + (1 << 16):  # an earlier edit left the offset far away: write at the end instead
        where = len(data)
    _put(data, where, name + bytes(rng.choice([0, 1, 8])))
    length = len(name) + rng.choice([0, 0, 0, -1, 1, 3, -len(name), 1000])
    _set(data, off_spot, where)
    _set(data, len_spot, max(0, length))
    return f"name@{where}:{name!r}/{length}"


def qcow2_extension(rng: random.Random, seed: Seed, data: bytearray) -> str:
    """Add a data-file or backing-format extension, maybe after many empty or unknown ones."""
    header_length = _get(data, Int(100, 4, ">"))
    end = seed.area[1]  # the first cluster: qemu walks extensions to its end
    start = header_length if 72 <= header_length < end else 112
    name = _names(rng, seed.protocols).encode()
    magic = rng.choice([0x44415441, 0x44415441, 0xE2792ACA, 0x6803F857])
    filler = rng.choice([0, 0, 3, 200, 600]) * max(1, end // 32768)  # 1200 (past a cap of 1024) in 64 KiB
    pad = struct.pack(">II", rng.choice([0x12345678, 0x0000ABCD]), 0) * filler
    body = struct.pack(">II", magic, len(name)) + name.ljust(-(-len(name) // 8) * 8, b"\0")
    area = pad + body + bytes(8)
    if start + len(area) > end:
        area = area[: end - start]
    backing_offset = _get(data, Int(8, 8, ">"))
    if start < backing_offset < start + len(area):  # move the backing name past the new extensions
        old = data[backing_offset : backing_offset + _get(data, Int(16, 4, ">"))]
        moved = min(end - len(old), start + len(area))
        _put(data, moved, bytes(old))
        _set(data, Int(8, 8, ">"), moved)
    _put(data, start, area)
    if magic == 0x44415441 and rng.random() < 0.8:
        _set(data, Int(72, 8, ">"), _get(data, Int(72, 8, ">")) | 4)
    return f"ext@{start}:{magic:#x}x{filler}:{name!r}"


def flip(rng: random.Random, seed: Seed, data: bytearray) -> str:
    at = rng.randrange(seed.area[0], min(seed.area[1], len(data)))
    data[at] ^= 1 << rng.randrange(8)
    return f"flip@{at}"


EXTENT_TYPES = ("FLAT", "SPARSE", "ZERO", "VMFS", "VMFSSPARSE", "SESPARSE", "VMFSRDM", "VMFSRAW", "flat")
SPACES = (" ", " ", "  ", "\t", "\n", " \n ", "\r\n")


def _extent_line(rng: random.Random) -> str:
    sep = rng.choice(SPACES)
    access = rng.choice(["RW", "RW", "RDONLY", "NOACCESS", "rw"])
    sectors = rng.choice(["2048", "2048", "+2048", "002048", "99999999999999999999", "-1", "0"])
    kind = rng.choice(EXTENT_TYPES)
    name = _names(rng)
    quoted = rng.choice([f'"{name}"', f'"{name}"', name, f'"{name}', f"'{name}'"])
    tail = rng.choice(["", "", " 0", " 0 extra words", sep + "0"])
    return sep.join([access, sectors, kind, quoted]) + tail


def _hint_line(rng: random.Random) -> str:
    name = _names(rng)
    return rng.choice(
        [
            f'parentFileNameHint="{name}"',
            f"parentFileNameHint={name}",
            f'parentFileNameHint = "{name}"',
            f'parentFileNameHint="{name}" trailing',
            f'parentfilenamehint="{name}"',
            f' parentFileNameHint="{name}"',
        ]
    )


def mutate_text(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.split("\n")
    op = rng.choice(["extent", "extent", "hint", "hint", "create", "endings", "nul", "delete", "dup", "numbers", "pad"])
    at = rng.randrange(len(lines) + 1)
    if op == "extent":
        lines.insert(at, _extent_line(rng))
    elif op == "hint":
        lines.insert(at, _hint_line(rng))
    elif op == "create":
        kind = rng.choice(
            [
                "monolithicFlat",
                "vmfs",
                "twoGbMaxExtentFlat",
                "monolithicSparse",
                "streamOptimized",
                "vmfsSparse",
                "custom",
                "seSparse",
                "twoGbMaxExtentSparse",
            ]
        )
        lines = [re.sub(r"createType=.*", f'createType="{kind}"', line) for line in lines]
    elif op == "endings":
        return rng.choice(["\r\n", "\r", "\n\n"]).join(lines), op
    elif op == "nul":
        lines.insert(at, "\0" + _extent_line(rng))
    elif op == "delete" and lines:
        del lines[min(at, len(lines) - 1)]
    elif op == "dup":
        extents = [line for line in lines if line.startswith(("RW", "RDONLY"))]
        if extents:
            lines.insert(at, rng.choice(extents))
    elif op == "numbers":
        lines = [re.sub(r"\b\d+\b", lambda m: rng.choice([m.group(), "0", "+1", "4294967296"]), line) for line in lines]
    elif op == "pad":
        lines.insert(at, "#" + "x" * rng.choice([100, 20000, 70000]))
    return "\n".join(lines), op


def mutate_descriptor(rng: random.Random, seed: Seed, data: bytearray) -> str:
    if seed.text_file:
        text, op = mutate_text(rng, data.decode("latin-1"))
        data[:] = text.encode("latin-1")
        return f"text:{op}"
    start, size = seed.text or (512, 10240)
    raw = bytes(data[start : start + size]).split(b"\0", 1)[0]
    text, op = mutate_text(rng, raw.decode("latin-1"))
    move = rng.random() < 0.3
    target = rng.choice([start, 0x200, 0x1000, 0x2000]) if move else start
    encoded = text.encode("latin-1")
    _put(data, target, encoded + b"\0")
    if move or rng.random() < 0.3:
        _set(data, Int(28, 8, "<"), target // 512)
        _set(data, Int(36, 8, "<"), rng.choice([1, 2, 20, -(-len(encoded) // 512)]))
    return f"descriptor@{target}:{op}"


def mutators(seed: Seed) -> list[Callable[[random.Random, Seed, bytearray], str]]:
    out: list[Callable[[random.Random, Seed, bytearray], str]] = []
    if seed.ints:
        out += [mutate_int, mutate_int]
    if seed.pointers:
        out += [repoint_name, repoint_name]
    if seed.fmt == "qcow2":
        out += [qcow2_extension, qcow2_extension]
    if seed.fmt == "vmdk":
        out += [mutate_descriptor] * 4
    if not seed.text_file:
        out.append(flip)
    return out


def make_case(seed: Seed, index: int, base: int = 0) -> Case:
    rng = random.Random(f"{base}:{seed.name}:{index}")
    data = bytearray(seed.data)
    edits = [rng.choice(mutators(seed))(rng, seed, data) for _ in range(rng.choice([1, 1, 2, 3]))]
    prefix = "" if base == 0 else f"s{base}-"
    return Case(f"{prefix}{seed.name}-{index:03d}", seed, bytes(data), edits)


# --- the consumer: qemu-img under strace -----------------------------------------------------------------


def _decode(escaped: str) -> str:
    return bytes.fromhex(escaped.replace("\\x", "")).decode("latin-1")


def traced_paths(qemu_img: str, folder: Path, image: str, fmt: str) -> list[str]:
    """Every path (absolute, normalised) qemu-img touched, the image's own folder as cwd.

    ``info --backing-chain`` opens the backing chain; ``map`` also opens what only I/O needs (qemu skips a
    qcow2 external data file when it opens an image without I/O, as info does).
    """
    log = folder.parent / f"{folder.name}.strace"
    paths = []
    for command in (["info", "--backing-chain"], ["map"]):
        strace = ["strace", "-f", "-qq", "-xx", "-s", "4096", "-e", f"trace={TRACED}", "-o", str(log)]
        cmd = [*strace, qemu_img, *command, "--output=json", "-f", fmt, image]
        with contextlib.suppress(subprocess.TimeoutExpired):  # what it tried until then is in the log
            subprocess.run(cmd, cwd=folder, capture_output=True, timeout=QEMU_TIMEOUT, check=False)
        for line in log.read_text(encoding="latin-1").splitlines():
            match = _CALL.match(line)
            if match and match.group(2):
                paths.append(os.path.normpath(os.path.join(folder, _decode(match.group(2)))))
        log.unlink()
    return paths


def baseline(qemu_img: str) -> set[str]:
    """What qemu-img touches for a plain raw image: the loader, locale, /proc, /sys."""
    with tempfile.TemporaryDirectory(prefix="wb-diff-") as tmp:
        folder = Path(tmp) / "case"
        folder.mkdir()
        (folder / "plain.raw").write_bytes(bytes(4096))
        return set(traced_paths(qemu_img, folder, "plain.raw", "raw"))


def candidates(paths: list[str], folder: Path, image: str, data: bytes, system: set[str]) -> list[str]:
    """The paths qemu tried that the image made it try: in the case folder, or named by the image."""
    text = data.decode("latin-1")
    own = os.path.join(folder, image)
    out: list[str] = []
    for path in paths:
        if path == own or path in system or path in out:
            continue
        base = os.path.basename(path)
        inside = path == str(folder) or path.startswith(f"{folder}{os.sep}")
        if inside or path in text or (len(base) >= 4 and base in text):
            out.append(path)
    return out


def reference_name(ref: dict[str, Any]) -> str:
    """A reference's name as strace shows the path (bytes as latin-1), from its exact bytes when it has them."""
    if isinstance(raw := ref.get("name_bytes"), str):
        return bytes.fromhex(raw).decode("latin-1")
    return str(ref.get("name", ""))


def unnamed(opened: list[str], references: list[str], folder: Path) -> list[str]:
    """The paths that no reference names (by its resolved path, or by containing the path's base name)."""
    resolved = {os.path.normpath(os.path.join(folder, name)) for name in references}
    return [
        path
        for path in opened
        if path not in resolved and not any(os.path.basename(path) and os.path.basename(path) in n for n in references)
    ]


# --- one batch of cases ----------------------------------------------------------------------------------


def _stage(case: Case, root: Path) -> Path:
    folder = root / case.id / "case"
    folder.mkdir(parents=True)
    (folder / case.seed.filename).write_bytes(case.data)
    for name, content in case.seed.companions.items():
        if isinstance(content, int):
            with open(folder / name, "wb") as out:
                out.truncate(content)
        else:
            (folder / name).write_bytes(content)
    return folder


async def run_cases(qemu_img: str, cases: list[Case], jobs: int = 2) -> list[Outcome]:
    """Run every case through qemu (threads) and the sandboxed engine (the fork server)."""
    system = baseline(qemu_img)
    with tempfile.TemporaryDirectory(prefix="wb-diff-") as tmp:
        root = Path(tmp)
        folders = [_stage(case, root) for case in cases]
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(jobs) as pool:
            traces = [
                loop.run_in_executor(pool, traced_paths, qemu_img, folder, case.seed.filename, case.seed.fmt)
                for case, folder in zip(cases, folders, strict=True)
            ]
            async with ForkServerRunner(policy.Policy().required_layers) as zygote:
                requests = [
                    inspector.Request(str(folder / case.seed.filename), case.seed.fmt, include_bytes=False)
                    for case, folder in zip(cases, folders, strict=True)
                ]
                reports = await inspector.inspect_many(requests, jobs, zygote)
            paths = await asyncio.gather(*traces)
        outcomes = []
        for case, folder, rep, touched in zip(cases, folders, reports, paths, strict=True):
            opened = candidates(touched, folder, case.seed.filename, case.data, system)
            names = [reference_name(ref) for ref in rep.get("references", [])]
            short = [os.path.relpath(p, folder) for p in opened]
            missing = [os.path.relpath(p, folder) for p in unnamed(opened, names, folder)]
            outcomes.append(Outcome(case.id, short, missing, rep.get("verdict", "failed"), names, case.edits))
    return outcomes


def save_sample(case: Case, folder: Path) -> Path:
    """A found case as a regression sample: ``<case id>.<fmt>.<image name>.gz`` (the image, gzipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.id}.{case.seed.fmt}.{case.seed.filename}.gz"
    path.write_bytes(gzip.compress(case.data, mtime=0))
    return path


def sample_case(path: Path, seeds: dict[str, Seed]) -> Case:
    """A stored regression sample back as a case (companions from its seed)."""
    case_id, fmt, stem, ext, _ = path.name.rsplit(".", 4)
    seed_name = re.sub(r"^s\d+-", "", case_id).rsplit("-", 1)[0]
    seed = seeds[seed_name]
    assert seed.fmt == fmt and seed.filename == f"{stem}.{ext}", path.name
    return Case(case_id, seed, gzip.decompress(path.read_bytes()), ["regression sample"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=500, help="cases per seed")
    parser.add_argument("--seed", type=int, default=1, help="random seed (0 is the CI run's)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--save", type=Path, help="store each differential found here as a regression sample")
    parser.add_argument("--only", nargs="+", choices=SEED_NAMES, help="these seeds only")
    args = parser.parse_args(argv)
    qemu_img = shutil.which("qemu-img")
    if not qemu_img or not shutil.which("strace"):
        print("needs qemu-img and strace", file=sys.stderr)
        return 2
    seeds = [seed for seed in make_seeds(qemu_img) if not args.only or seed.name in args.only]
    cases = [make_case(seed, i, args.seed) for seed in seeds for i in range(args.cases)]
    outcomes = asyncio.run(run_cases(qemu_img, cases, args.jobs))
    found = [(case, out) for case, out in zip(cases, outcomes, strict=True) if out.differential]
    for case, out in found:
        print(out.describe())
        if args.save:
            save_sample(case, args.save)
    opened = sum(1 for out in outcomes if out.opened)
    print(f"cases tried: {len(cases)}; qemu opened another file in {opened}; differentials: {len(found)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
