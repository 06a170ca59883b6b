"""Backing chains: followed only on request, only inside the allowed folders, each link in its own child."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.builders import vhdx, vpc
from workbench import chain
from workbench.chain import TooManyLinks, follow, resolve
from workbench.inspector import Request

ROOT = Path(__file__).resolve().parents[1]
Create = Callable[..., Path]


def chain_of(path: Path, *roots: Path, max_depth: int = 16, declared: str | None = None) -> dict[str, Any]:
    return asyncio.run(follow(Request(str(path), declared), [str(r) for r in roots], max_depth))


def ids(link: dict[str, Any]) -> list[str]:
    return [f["id"] for f in link["findings"]]


def run_cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-config"}
    cmd = [*prefix, sys.executable, "-m", "workbench", "inspect", "--chain", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


def qcow2_child(qemu_create: Create, name: str, backing: str, fmt: str = "qcow2") -> Path:
    """A qcow2 image naming ``backing`` (recorded as is, never opened by qemu-img: ``-u``)."""
    return qemu_create(name, "qcow2", "1M", "-u", "-b", backing, "-F", fmt)


# --- chains made by qemu-img -----------------------------------------------------------------------------


def test_qcow2_qcow2_raw_with_relative_names(qemu_create: Create, tmp_path: Path) -> None:
    qemu_create("base.raw", "raw", "1M")
    qemu_create("mid.qcow2", "qcow2", "1M", "-b", "base.raw", "-F", "raw")
    top = qemu_create("top.qcow2", "qcow2", "1M", "-b", "mid.qcow2", "-F", "qcow2")
    report = chain_of(top)
    chain = report["chain"]
    assert [link["path"] for link in chain] == [str(top), str(tmp_path / "mid.qcow2"), str(tmp_path / "base.raw")]
    assert [link["format"] for link in chain] == ["qcow2", "qcow2", "raw"]
    assert [link["declared_format"] for link in chain] == ["qcow2", "qcow2", "raw"]
    assert [link["named_as"] for link in chain] == [None, "mid.qcow2", "base.raw"]
    assert [link["probed"] for link in chain] == [False, False, False]
    assert [link["verdict"] for link in chain] == ["reject", "reject", "accept"]
    assert ids(chain[0]) == ["backing-file", "unencrypted"]  # the link's own findings, nothing added
    assert report["chain_end"]["reason"] == "base"
    assert report["chain_verdict"] == "reject"
    assert report["path"] == str(top) and report["backing"]["filename"] == "mid.qcow2"  # the image's own report


def test_absolute_names_inside_the_folder_are_followed(qemu_create: Create, tmp_path: Path) -> None:
    base = qemu_create("base.qcow2", "qcow2", "1M")
    top = qemu_create("top.qcow2", "qcow2", "1M", "-b", str(base), "-F", "qcow2")
    report = chain_of(top)
    assert [link["named_as"] for link in report["chain"]] == [None, str(base)]
    assert report["chain"][1]["verdict"] == "accept"
    assert report["chain_end"]["reason"] == "base"


def test_qed_over_qcow2_records_no_format_so_the_parent_is_probed(qemu_create: Create) -> None:
    qemu_create("base.qcow2", "qcow2", "1M")
    top = qemu_create("top.qed", "qed", "1M", "-b", "base.qcow2", "-F", "qcow2")
    chain = chain_of(top)["chain"]
    assert "backing-format-unspecified" in ids(chain[0])
    assert chain[1]["probed"] is True and chain[1]["declared_format"] is None
    assert chain[1]["format"] == "qcow2"
    assert "format-undeclared" in ids(chain[1])
    assert chain[1]["verdict"] == "review"


def test_vmdk_over_vmdk(qemu_create: Create) -> None:
    qemu_create("base.vmdk", "vmdk", "1M")
    top = qemu_create("top.vmdk", "vmdk", "1M", "-b", "base.vmdk", "-F", "vmdk")
    chain = chain_of(top)["chain"]
    assert [(link["format"], link["named_as"]) for link in chain] == [("vmdk", None), ("vmdk", "base.vmdk")]
    assert chain[1]["verdict"] == "accept"


def test_non_ascii_names_are_found_as_recorded(qemu_create: Create, tmp_path: Path) -> None:
    qemu_create("bäse.raw", "raw", "1M")
    top = qcow2_child(qemu_create, "top.qcow2", "bäse.raw", "raw")
    report = chain_of(top)
    assert report["chain"][-1]["path"] == str(tmp_path / "bäse.raw")
    assert report["chain_end"]["reason"] == "base"


def test_a_symlink_inside_the_folder_to_a_file_inside_is_followed(qemu_create: Create, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    qemu_create("store/base.raw", "raw", "1M")
    (tmp_path / "current.raw").symlink_to("store/base.raw")
    top = qcow2_child(qemu_create, "top.qcow2", "current.raw", "raw")
    chain = chain_of(top)["chain"]
    assert chain[1]["path"] == str(tmp_path / "store" / "base.raw")
    assert chain[1]["named_as"] == "current.raw"
    assert chain[1]["verdict"] == "accept"


# --- where the chain stops --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3])
def test_loops_end_with_backing_loop(length: int, qemu_create: Create, tmp_path: Path) -> None:
    names = [f"l{i}.qcow2" for i in range(length)]
    for i, name in enumerate(names):
        qcow2_child(qemu_create, name, names[(i + 1) % length])
    report = chain_of(tmp_path / names[0])
    assert [link["named_as"] for link in report["chain"]] == [None, *names[1:]]
    assert report["chain"][-1]["findings"][-1]["id"] == "backing-loop"
    assert report["chain_end"] == {
        "reason": "loop",
        "detail": f"'l0.qcow2' ({tmp_path / 'l0.qcow2'}) is link 1 of this chain again",
        "finding": "backing-loop",
        "name": "l0.qcow2",
        "resolved": str(tmp_path / "l0.qcow2"),
    }


def test_a_hard_link_to_the_image_is_a_loop(qemu_create: Create, tmp_path: Path) -> None:
    top = qcow2_child(qemu_create, "top.qcow2", "other.qcow2")
    os.link(top, tmp_path / "other.qcow2")
    report = chain_of(top)
    assert len(report["chain"]) == 1
    assert report["chain_end"]["reason"] == "loop"
    assert "backing-loop" in ids(report["chain"][0])


def test_twenty_deep_chain_stops_at_sixteen(qemu_create: Create, tmp_path: Path) -> None:
    qemu_create("d0.qcow2", "qcow2", "1M")
    for i in range(1, 20):
        qcow2_child(qemu_create, f"d{i}.qcow2", f"d{i - 1}.qcow2")
    report = chain_of(tmp_path / "d19.qcow2")
    chain = report["chain"]
    assert len(chain) == 16
    assert chain[-1]["path"] == str(tmp_path / "d4.qcow2")
    assert "backing-depth" in ids(chain[-1])
    assert report["chain_end"]["reason"] == "depth"
    assert report["chain_end"]["name"] == "d3.qcow2"


def test_missing_parent(qemu_create: Create, tmp_path: Path) -> None:
    top = qcow2_child(qemu_create, "top.qcow2", "gone.qcow2")
    report = chain_of(top)
    assert len(report["chain"]) == 1
    assert report["chain_end"]["reason"] == "missing"
    assert report["chain_end"]["resolved"] == str(tmp_path / "gone.qcow2")
    finding = report["chain"][0]["findings"][-1]
    assert finding["id"] == "backing-missing" and "No such file" in finding["detail"]


def test_a_parent_that_cannot_be_opened_fails_the_chain(qemu_create: Create, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.raw")
    top = qcow2_child(qemu_create, "top.qcow2", "pipe.raw", "raw")
    report = chain_of(top)
    assert report["chain"][1]["verdict"] == "failed"
    assert "FIFO" in report["chain"][1]["error"]
    assert report["chain_end"]["reason"] == "failed"
    assert report["chain_verdict"] == "failed"


def test_a_raw_parent_with_a_qcow2_header_is_not_followed_further(qemu_create: Create, tmp_path: Path) -> None:
    """libvirt's probing attack: the guest wrote a qcow2 header naming a host file into its raw disk."""
    qemu_create("host-secret.raw", "raw", "1M")
    disguised = qcow2_child(qemu_create, "guest.qcow2", "host-secret.raw", "raw")
    os.rename(disguised, tmp_path / "guest.raw")
    top = qcow2_child(qemu_create, "top.qcow2", "guest.raw", "raw")
    report = chain_of(top)
    assert [link["path"] for link in report["chain"]] == [str(top), str(tmp_path / "guest.raw")]
    assert "format-mismatch" in ids(report["chain"][1])
    assert report["chain_end"]["reason"] == "format-mismatch"


# --- refusals: outside the allowed folders, network and pseudo-protocol names --------------------------


@pytest.fixture
def refused(qemu_create: Create, tmp_path: Path) -> dict[str, Path]:
    """Images in ``allowed/`` whose parents lead to ``outside/secret.qcow2`` (a real image) or the network."""
    (tmp_path / "allowed").mkdir()
    (tmp_path / "outside").mkdir()
    secret = qemu_create("outside/secret.qcow2", "qcow2", "1M")
    (tmp_path / "allowed" / "link.qcow2").symlink_to("../outside/secret.qcow2")
    names = {
        "dotdot": "../outside/secret.qcow2",
        "absolute": str(secret),
        "symlink": "link.qcow2",
        "dotdot-after-subfolder": "sub/../../outside/secret.qcow2",
        "network": "nbd://127.0.0.1:10809/secret",
        "json": f'json:{{"file": {{"driver": "file", "filename": "{secret}"}}}}',
        "protocol": f"file:{secret}",
        "windows": "C:\\outside\\secret.qcow2",
    }
    return {key: qcow2_child(qemu_create, f"allowed/{key}.qcow2", name) for key, name in names.items()}


REFUSALS = {
    "dotdot": ("outside-roots", "backing-outside-roots"),
    "absolute": ("outside-roots", "backing-outside-roots"),
    "symlink": ("outside-roots", "backing-outside-roots"),
    "dotdot-after-subfolder": ("outside-roots", "backing-outside-roots"),
    "network": ("network", "backing-network"),
    "json": ("network", "backing-network"),
    "protocol": ("network", "backing-network"),
    "windows": ("windows-path", "backing-outside-roots"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_links_say_why(case: str, refused: dict[str, Path]) -> None:
    report = chain_of(refused[case])
    reason, finding = REFUSALS[case]
    assert len(report["chain"]) == 1
    assert report["chain_end"]["reason"] == reason
    assert report["chain_end"]["finding"] == finding
    assert finding in ids(report["chain"][0])
    assert report["chain_verdict"] == "reject"


def test_an_allowed_root_lets_the_chain_reach_another_folder(refused: dict[str, Path], tmp_path: Path) -> None:
    report = chain_of(refused["dotdot"], tmp_path / "outside")
    assert [link["path"] for link in report["chain"]][1:] == [str(tmp_path / "outside" / "secret.qcow2")]
    assert report["chain_end"]["reason"] == "base"


def test_strace_shows_no_access_to_refused_targets(refused: dict[str, Path], tmp_path: Path) -> None:
    """One traced run over every refused image: no system call names the outside file, none connects.

    The only call allowed to mention it is the readlink of ``allowed/link.qcow2`` (inside the allowed
    folder), whose result is the link's relative target text.
    """
    trace = tmp_path / "trace"  # -ff: one file per process, so no call is split across lines
    strace = ("strace", "-ff", "-qq", "-s", "4096", "-e", "trace=%file,%network", "-o", str(trace))
    result = run_cli("--json", *map(str, refused.values()), prefix=strace)
    reports = json.loads(result.stdout)
    assert [r["chain_end"]["reason"] for r in reports] == [reason for reason, _ in REFUSALS.values()]
    traces = list(tmp_path.glob("trace.*"))
    assert len(traces) > len(refused)  # the command and one engine child per image were traced
    lines = [line for part in traces for line in part.read_text().splitlines()]
    assert any("allowed/dotdot.qcow2" in line and "openat(" in line for line in lines)  # the trace sees opens
    touching = [line for line in lines if "secret" in line and "readlink" not in line]
    assert touching == []
    readlinks = [line for line in lines if "secret" in line]
    assert all(f'readlink("{tmp_path}/allowed/link.qcow2", "../outside/secret.qcow2"' in x for x in readlinks)
    assert not [line for line in lines if "connect(" in line]


# --- resolution and VHD/VHDX locators ---------------------------------------------------------------------


def test_resolve_never_looks_outside_the_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "up").symlink_to("..")
    (root / "loop").symlink_to("loop")
    roots = [str(root)]
    assert resolve("sub/../x", str(root), roots) == str(root / "x")
    assert resolve(str(root / "sub"), str(root), roots) == str(root / "sub")
    assert resolve("up/root/sub", str(root), roots) == str(root / "sub")  # above the root and back in
    assert resolve("up/elsewhere", str(root), roots) is None
    assert resolve("/etc/passwd", str(root), roots) is None
    with pytest.raises(TooManyLinks):
        resolve("loop", str(root), roots)


def test_vhd_parent_is_followed_through_its_relative_locator(tmp_path: Path) -> None:
    locators = [vpc.Locator(b"W2ku", "C:\\Images\\base.vhd"), vpc.Locator(b"W2ru", ".\\base.vhd")]
    (tmp_path / "child.vhd").write_bytes(vpc.differencing(locators, parent_name="base.vhd"))
    (tmp_path / "base.vhd").write_bytes(vpc.dynamic())
    report = chain_of(tmp_path / "child.vhd")
    assert report["chain"][0]["backing"]["filename"] == "C:\\Images\\base.vhd"  # shown as recorded
    assert [link["named_as"] for link in report["chain"]] == [None, ".\\base.vhd"]
    assert report["chain"][1]["format"] == "vpc" and report["chain"][1]["verdict"] == "accept"


def test_vhd_with_only_absolute_windows_paths_is_not_followed(tmp_path: Path) -> None:
    locators = [vpc.Locator(b"W2ku", "C:\\Images\\base.vhd"), vpc.Locator(b"MacX", "file:///etc/passwd")]
    (tmp_path / "child.vhd").write_bytes(vpc.differencing(locators, parent_name="base.vhd"))
    (tmp_path / "base.vhd").write_bytes(vpc.dynamic())
    report = chain_of(tmp_path / "child.vhd")
    assert len(report["chain"]) == 1
    assert report["chain_end"]["reason"] == "windows-path"
    assert "backing-outside-roots" in ids(report["chain"][0])


def test_vhdx_parent_follows_the_relative_path_key(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.vhdx").write_bytes(vhdx.vhdx())
    pairs = [
        ("parent_linkage", vhdx.PARENT_LINKAGE),
        ("absolute_win32_path", "C:\\Images\\base.vhdx"),
        ("relative_path", ".\\sub\\base.vhdx"),
    ]
    (tmp_path / "child.vhdx").write_bytes(vhdx.vhdx(parent=pairs))
    report = chain_of(tmp_path / "child.vhdx")
    assert [link["path"] for link in report["chain"]][1:] == [str(tmp_path / "sub" / "base.vhdx")]


def test_vhdx_relative_locator_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "child.vhdx").write_bytes(vhdx.vhdx(parent=vhdx.HOST_PATHS))
    report = chain_of(tmp_path / "child.vhdx")
    assert report["chain_end"]["reason"] == "outside-roots"
    assert report["chain_end"]["name"] == "..\\..\\..\\..\\etc\\shadow"


# --- command line -----------------------------------------------------------------------------------------


def test_cli_prints_each_link_and_exits_with_the_chain_verdict(qemu_create: Create, tmp_path: Path) -> None:
    qemu_create("base.raw", "raw", "1M")
    qemu_create("mid.qcow2", "qcow2", "1M", "-b", "base.raw", "-F", "raw")
    top = qemu_create("top.qcow2", "qcow2", "1M", "-b", "mid.qcow2", "-F", "qcow2")
    result = run_cli(str(top))
    assert result.returncode == 20, result.stderr
    assert f"chain of {top}: REJECT (3 link(s))" in result.stdout
    assert "[link 2: named 'mid.qcow2']" in result.stdout
    assert "[chain ends: base: no backing file" in result.stdout
    short = json.loads(run_cli("--json", "--max-depth", "2", str(top)).stdout)
    assert [link["format"] for link in short["chain"]] == ["qcow2", "qcow2"]
    assert short["chain_end"]["reason"] == "depth"


def test_cli_allow_root_and_usage_errors(refused: dict[str, Path], tmp_path: Path) -> None:
    allowed = run_cli("--json", "--allow-root", str(tmp_path / "outside"), str(refused["symlink"]))
    assert [link["named_as"] for link in json.loads(allowed.stdout)["chain"]] == [None, "link.qcow2"]
    assert run_cli("--max-depth", "0", str(refused["symlink"])).returncode == 2


def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(
    qemu_create: Create, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent is opened through its folders from the allowed folder down (O_NOFOLLOW each): a folder
    replaced by a symbolic link between the check and the open ends the chain instead of leaving the roots."""
    (tmp_path / "sub").mkdir()
    qemu_create("sub/base.raw", "raw", "1M")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "base.raw").write_bytes(bytes(1 << 20))
    top = qcow2_child(qemu_create, "top.qcow2", "sub/base.raw", "raw")
    real_next_link = chain.next_link

    def next_link_then_swap(*args: Any) -> Any:
        step = real_next_link(*args)
        if isinstance(step, chain.Parent):
            (tmp_path / "sub").rename(tmp_path / "sub.old")
            (tmp_path / "sub").symlink_to(outside, target_is_directory=True)
        return step

    monkeypatch.setattr(chain, "next_link", next_link_then_swap)
    report = chain_of(top)
    assert report["chain"][1]["verdict"] == "failed"
    assert report["chain"][1]["error"] == (
        "it or a folder on its path was replaced since it was checked (by a symbolic link?): refused"
    )
