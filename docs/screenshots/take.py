"""Retake the screenshots in this folder from the running window, under an X server (see docs/gui.md).

    Xvfb :99 -screen 0 1920x1080x24 & export DISPLAY=:99
    python docs/screenshots/take.py [NAME...]      # default: all of them; needs qemu-img and ImageMagick's import

Each picture is the real window (or triage table) driven through its own methods, then captured by
``import -window`` from the X server. The images are built at start in a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="workbench-shots-")  # default settings, nothing kept

import qasync  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from tests.builders.guest_disks import MIB, luks_volume, partition, place, root_tree, run, sparse  # noqa: E402
from tests.remote_servers import RangeServer  # noqa: E402
from workbench.demo import images as demo  # noqa: E402
from workbench.policy import settings as settings_mod  # noqa: E402
from workbench.ui import theme  # noqa: E402
from workbench.ui.icons import icon  # noqa: E402
from workbench.ui.main_window import MainWindow  # noqa: E402
from workbench.ui.open_url import OpenUrlDialog  # noqa: E402

QEMU_IMAGES = [  # (name, format, options) for the triage folder
    ("base.raw", "raw", []),
    ("disk.qcow2", "qcow2", []),
    ("overlay.qcow2", "qcow2", ["-b", "disk.qcow2", "-F", "qcow2"]),
    ("disk.vmdk", "vmdk", []),
    ("disk.vhdx", "vhdx", []),
    ("disk.vdi", "vdi", []),
    ("disk.vhd", "vpc", []),
    ("disk.qed", "qed", []),
    ("luks.luks", "luks", ["--object", "secret,id=s0,data=example", "-o", "key-secret=s0"]),
]


def qemu_img(folder: Path, name: str, fmt: str, options: list[str], size: str | None = "1G") -> None:
    """``qemu-img create``; ``size=None``: the backing file's size."""
    sizes = [size] if size else []
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, *options, name, *sizes], cwd=folder, check=True)


GUEST_GPT = (  # a Linux-like guest disk: BIOS boot, ESP, root, swap, an encrypted home, free space at the end
    "label: gpt\n"
    "start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios\n"
    "size=64MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP\n"
    "size=160MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n"
    "size=48MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=swap\n"
    "size=64MiB, type=CA7D7CCB-63ED-4C53-861C-1742536059CC, name=home\n"
)


def guest_disk(folder: Path) -> Path:
    """A raw GPT disk made by sfdisk, mkfs.vfat, mkfs.ext4 (with an os-release), mkswap and cryptsetup."""
    disk = sparse(folder / "linux-guest.raw", 400 * MIB)
    parts = partition(disk, GUEST_GPT)
    start, size = [p["start"] * 512 for p in parts], [p["size"] * 512 for p in parts]
    run("mkfs.vfat", "-F", "16", "-n", "ESP", "--offset", str(start[1] // 512), disk, str(size[1] // 1024))
    tree = root_tree(folder / "root")
    run("mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", f"offset={start[2]}", "-d", tree, disk, f"{size[2] // 1024}k")
    swap = sparse(folder / "swap", size[3])
    run("mkswap", "-L", "swap", swap)
    place(disk, swap, start[3])
    luks = luks_volume(folder / "luks", size[4])
    place(disk, luks, start[4])
    return disk


DEEP_WRITES = (  # qemu-io commands for the Allocation picture: data, zeros, compressed clusters, a discard
    "write -P 0xaa 0 24M",
    "write -z 32M 8M",
    "write -c -P 0x55 48M 4M",
    "write -P 0x11 128M 16M",
    "write -c -P 0x66 200M 2M",
    "discard 8M 4M",
)


def deep_disk(folder: Path) -> Path:
    """A 256 MiB qcow2 written by qemu-io, so the Deep check draws every kind qemu-img map knows."""
    qemu_img(folder, "written.qcow2", "qcow2", [], "256M")
    commands = [arg for command in DEEP_WRITES for arg in ("-c", command)]
    subprocess.run(["qemu-io", "-f", "qcow2", *commands, "written.qcow2"], cwd=folder, check=True, capture_output=True)
    return folder / "written.qcow2"


def build(work: Path) -> None:
    """A triage folder of 30 mixed images (the demonstration set three times, and qemu-img's) and a chain."""
    for number in (1, 2, 3):
        batch = work / "triage" / f"batch{number}"
        batch.mkdir(parents=True)
        demo.write_demo(batch)
    (work / "triage" / "qemu-img").mkdir()
    for name, fmt, options in QEMU_IMAGES:
        qemu_img(work / "triage" / "qemu-img", name, fmt, options)
    (work / "guest").mkdir()
    guest_disk(work / "guest")
    (work / "deep").mkdir()
    deep_disk(work / "deep")
    (work / "chain").mkdir()
    qemu_img(work / "chain", "base.raw", "raw", [], "2G")
    qemu_img(work / "chain", "snapshot-1.qcow2", "qcow2", ["-b", "base.raw", "-F", "raw"], None)
    qemu_img(work / "chain", "snapshot-2.qcow2", "qcow2", ["-b", "snapshot-1.qcow2", "-F", "qcow2"], None)


class Shots:
    def __init__(self, app: QApplication, work: Path) -> None:
        self.app = app
        self.work = work
        self.window = MainWindow(settings_mod.Settings())
        self.dialog: QWidget | None = None  # shown over the window in the picture

    async def until(self, done: Callable[[], bool], timeout: float = 60) -> None:
        for _ in range(int(timeout / 0.05)):
            if done():
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the window did not finish in time")

    async def idle(self) -> None:
        entries = self.window.model.entries
        await self.until(lambda: not self.window.busy() and all(e.state == "done" for e in entries))

    async def demo(self, name: str) -> None:
        self.window.open_demo()
        await self.idle()
        self.window.select(next(e for e in self.window.model.entries if e.path.endswith("/" + name)))

    async def demo_light(self) -> QWidget:
        """A backing file name selected in the field tree (from its finding) and its bytes."""
        await self.demo("backing-host-file.qcow2")
        report = self.window.current.report if self.window.current else {}
        self.window.go_to_finding(next(f for f in report["findings"] if f["id"] == "backing-file"))
        return self.window

    async def demo_dark(self) -> QWidget:
        """The findings of a raw disk that carries a qcow2 header, the first one read in full."""
        await self.demo("guest-raw-disk.img")
        self.window.tabs.setCurrentWidget(self.window.findings)
        tree = self.window.findings.tree
        tree.setCurrentIndex(tree.model().index(0, 0))
        tree.setFocus()
        return self.window

    async def demo_sizes_dark(self) -> QWidget:
        await self.demo("claims-16TiB.qcow2")
        self.window.tabs.setCurrentWidget(self.window.overview)
        return self.window

    async def sized(self, name: str, size: tuple[int, int]) -> None:
        self.window.resize(*size)
        self.window.move(0, 0)
        await self.demo(name)

    async def small_overview_light(self) -> QWidget:
        """1024x640: the verdict banner of a raw disk carrying a qcow2 header, mismatch rows highlighted."""
        await self.sized("guest-raw-disk.img", SMALL)
        self.window.tabs.setCurrentWidget(self.window.overview)
        return self.window

    async def small_fields_dark(self) -> QWidget:
        """1024x640: the bytes found by Ctrl+F (text), the data inspector beside them."""
        await self.sized("backing-host-file.qcow2", SMALL)
        self.window.tabs.setCurrentWidget(self.window.fields)
        pane = self.window.fields.pane
        pane.find_bar.open()
        pane.find_bar.mode.setCurrentText("text")
        pane.find_bar.text.setText("/etc/passwd")
        pane.find()
        return self.window

    async def large_fields_light(self) -> QWidget:
        """1920x1080: the magic selected in the bytes (Shift+arrows), the inspector reading it."""
        await self.sized("clean.qcow2", LARGE)
        self.window.tabs.setCurrentWidget(self.window.fields)
        hex_view = self.window.fields.hex
        hex_view.setFocus()
        hex_view.select_byte(0)
        hex_view.extend_to(3)
        return self.window

    async def large_overview_dark(self) -> QWidget:
        """1920x1080: a 448 KiB file claiming 16 TiB, above the size limit."""
        await self.sized("claims-16TiB.qcow2", LARGE)
        self.window.tabs.setCurrentWidget(self.window.overview)
        return self.window

    async def triage(self) -> QWidget:
        table = self.window.open_triage([str(self.work / "triage")])
        table.move(0, 0)
        await self.until(lambda: table.state == "done")
        table.view.setCurrentIndex(table.proxy.index(0, 0))
        table.view.setFocus()
        return table

    async def chain(self) -> QWidget:
        """A three-link chain; the middle link selected (the other pages show its report)."""
        self.window.add_files([str(self.work / "chain" / "snapshot-2.qcow2")])
        await self.idle()
        entry = self.window.model.entries[0]
        self.window.follow_chain()
        await self.until(lambda: entry.chain is not None and not self.window.busy())
        page = self.window.chain
        page.tree.setCurrentIndex(page.model.index_of(page.model.nodes()[0].children[0]))
        page.tree.setFocus()
        return self.window

    async def audit(self) -> QWidget:
        data = HERE.parent.parent / "tests" / "data" / "audit"
        files = [data / "domain-risky.xml", data / "qemu-risky.conf", self.work / "chain" / "base.raw"]
        self.window.open_paths([str(f) for f in files], remember=False)
        await self.idle()
        tree = self.window.audit.findings.tree
        tree.setCurrentIndex(tree.model().index(1, 0))
        tree.setFocus()
        return self.window

    async def guest(self) -> QWidget:
        """The Guest tab of a raw GPT disk, read on demand; the root filesystem's block selected."""
        self.window.add_files([str(self.work / "guest" / "linux-guest.raw")])
        await self.idle()
        entry = self.window.model.entries[0]
        self.window.select(entry)
        self.window.tabs.setCurrentWidget(self.window.guest)
        await self.until(lambda: "guest" in (entry.report or {}) and not self.window.busy())
        page = self.window.guest
        page.tree.expandAll()
        root = next(b for b in page.layout_view.blocks() if b.volume and b.volume.get("name") == "root")
        page.layout_view.select(root)
        return self.window

    async def guest_small_dark(self) -> QWidget:
        """The Guest tab at 1024x640 in the dark theme: narrow blocks keep their index, the tree scrolls."""
        self.window.resize(*SMALL)
        return await self.guest()

    async def allocation_dark(self) -> QWidget:
        """The Allocation view in the dark theme: the run colours and legends against a dark page."""
        return await self.allocation()

    async def allocation(self) -> QWidget:
        """The Allocation view of a qcow2 written by qemu-io, after a real Deep check; a data run's bytes shown."""
        self.window.resize(1360, 480)  # the strips, their legends and the counters: no empty page below
        self.window.add_files([str(self.work / "deep" / "written.qcow2")])
        await self.idle()
        entry = self.window.model.entries[0]
        self.window.select(entry)
        self.window.deep_check(entry)
        await self.until(lambda: entry not in self.window.session.loads and not self.window.busy())
        deep = (entry.report or {}).get("deep")
        assert isinstance(deep, dict) and "map" in deep, "the engine returned no deep report"
        self.window.tabs.setCurrentWidget(self.window.allocation)
        return self.window

    async def open_url(self) -> QWidget:
        """A presigned URL opened from the local HTTP server of the tests: the list, title and tooltip carry
        the redacted URL; File > Open URL shown over the window for the next one."""
        server = RangeServer()
        server.state.objects["/uploads/customer-42.qcow2"] = (self.work / "chain" / "snapshot-1.qcow2").read_bytes()
        url = server.url("/uploads/customer-42.qcow2") + "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=0123abcd"
        entry = self.window.open_url(url)
        await self.idle()
        self.window.select(entry)
        self.window.tabs.setCurrentWidget(self.window.overview)
        self.dialog = OpenUrlDialog("https://minio.internal:9000", "s3://uploads/2026/11/ticket-1234.vmdk", self.window)
        self.dialog.move(self.window.x() + 560, self.window.y() + 560)  # the list, title and Path row in sight
        self.dialog.show()
        return self.window

    async def take(self, name: str, out: Path) -> None:
        theme.apply(self.app, "dark" if name.endswith("dark") else "light")
        self.window.show()
        await asyncio.sleep(0.3)
        shot: Callable[[], Coroutine[Any, Any, QWidget]] = getattr(self, name.replace("-", "_"))
        widget = await shot()
        await asyncio.sleep(0.8)  # painted
        if self.dialog is None:
            subprocess.run(["import", "-window", hex(int(widget.winId())), str(out)], check=True)
        else:  # the window with its dialog over it: the screen, cut to the window's frame
            frame = widget.frameGeometry()
            crop = f"{frame.width()}x{frame.height()}+{frame.x()}+{frame.y()}"
            subprocess.run(["import", "-window", "root", "-crop", crop, str(out)], check=True)
        self.window.close()


SMALL, LARGE = (1024, 640), (1920, 1080)
NAMES = ("demo-light", "demo-dark", "demo-sizes-dark", "triage", "chain", "audit")
NAMES += (
    "small-overview-light",
    "small-fields-dark",
    "large-fields-light",
    "large-overview-dark",
    "guest",
    "guest-small-dark",
    "allocation",
    "allocation-dark",
    "open-url",
)


def take(name: str, work: Path) -> None:
    """One picture from a fresh window (a QApplication per process: each name runs in its own process)."""
    app = QApplication([sys.argv[0]])
    app.setApplicationDisplayName("Disk Image Workbench")
    app.setWindowIcon(icon("workbench"))
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(Shots(app, work).take(name, HERE / f"{name}.png"))


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--one":
        take(argv[1], Path(os.environ["WORKBENCH_SHOTS_WORK"]))
        return 0
    with tempfile.TemporaryDirectory(prefix="workbench-shots-") as tmp:
        build(Path(tmp))
        for name in argv or NAMES:
            if name not in NAMES:
                raise SystemExit(f"unknown screenshot {name!r}; one of {', '.join(NAMES)}")
            env = {**os.environ, "WORKBENCH_SHOTS_WORK": tmp}
            subprocess.run([sys.executable, __file__, "--one", name], env=env, check=True)
            print(f"wrote {HERE / name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
