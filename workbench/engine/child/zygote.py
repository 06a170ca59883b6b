"""The fork server: one sandboxed process, started by exec, that forks one child per image.

It hardens itself like an engine child (minus the CPU and process limits: it must fork) with a
seccomp filter that also allows receiving descriptors, forking and reaping. Each forked child then
tightens itself before it reads a byte: it closes everything but its image and its two pipes, sets
its own resource limits (CPU, address space, no processes) and stacks the engine child's seccomp
filter, which libseccomp compiled to BPF here before the zygote hardened (each child installs that program
with one ``prctl``). One image per process, unless the batch opted into ``--isolation batch:N``, whose
children take up to N images in turn (``docs/sandbox.md``).

Protocol: see :class:`workbench.host.runner.ForkServerRunner`. The request on stdin is ``{"fd": socket,
"require_layers": [...], "preload": {...}}`` (``preload``, optional: ``worker.preload``'s keys, what the batch
will ask for; everything when absent); the greeting on stdout is the engine child's: the layer line, then
``{"ok": ...}``. Then on the socket, the binary frames of :mod:`.frames`.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stub)
import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
from typing import Any

from ...schema import MAX_BATCH
from .. import report
from . import frames, sandbox, seccomp_filter, worker

BLANK_BYTES = 64 * 1024  # the size of the blank image the zygote warms up on
WARM_UP_ROUNDS = 2  # each warm-up image inspected this many times (the second run specializes a little more)
CHILD_LAYERS = ("fds", "rlimits", "seccomp")


def _child_filter() -> seccomp_filter.Loadable | None:
    """The children's filter, exported as BPF once here (each child then installs it with one ``prctl``)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        built = seccomp_filter.Filter(seccomp_filter.parse_rules())
    except (seccomp_filter.SeccompUnavailable, OSError):
        return None  # the children then show the zygote's own seccomp status, which says why
    try:
        return seccomp_filter.Program(built)
    except OSError:
        return built  # libseccomp generates it in each child, as it always did


class _Made:
    """An image the zygote makes itself: ``head``, then zeros up to ``size``."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head = head
        self.size = max(size, len(head))

    def pread(self, length: int, offset: int) -> bytes:
        end = min(offset + max(0, length), self.size)
        if offset >= end:
            return b""
        part = self.head[offset:end]
        return part + bytes(end - offset - len(part))


def _warm_up_images() -> list[tuple[_Made, str | None]]:
    """The images the zygote inspects before forking: zeros, and small headers of the formats whose first
    inspection in a process builds something (a qcow2 header, a VMDK descriptor, whose patterns ``re`` compiles
    and keeps, a VHDX signature, whose header checksums build the CRC-32C tables), made here from the parsers'
    own layouts. Never an image of the user's."""
    from ..formats.qcow import V3_COMPRESSION_LAYOUT

    qcow2 = V3_COMPRESSION_LAYOUT.pack(
        magic=b"QFI\xfb",
        version=3,
        cluster_bits=16,
        size=1 << 30,
        l1_size=16,
        l1_table_offset=3 << 16,
        refcount_table_offset=1 << 16,
        refcount_table_clusters=1,
        refcount_order=4,
        header_length=112,  # a multiple of 8, as qemu writes it
    )
    vmdk = b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
    vmdk += b'RW 2048 FLAT "warm-up-extent" 0\nddb.virtualHWVersion = "4"\n'
    vhdx = bytearray(320 << 10)  # the file identifier, two headers, two region tables (checksums left wrong)
    for kib, signature in ((0, b"vhdxfile"), (64, b"head"), (128, b"head"), (192, b"regi"), (256, b"regi")):
        vhdx[kib << 10 : (kib << 10) + len(signature)] = signature
    return [
        (_Made(b"", BLANK_BYTES), None),
        (_Made(qcow2, 4 << 16), "qcow2"),
        (_Made(vmdk, len(vmdk)), "vmdk"),
        (_Made(bytes(vhdx), 1 << 20), "vhdx"),
    ]


def _warm_up() -> None:
    """Inspect images made here (:func:`_warm_up_images`), twice, before forking any child, so that what the
    first inspection in a process builds (compiled struct layouts and patterns, checksum tables, detection and
    report state) is in the heap every child inherits instead of being built again in each: measured, 0.3 ms
    less CPU and about 50 fewer page faults per child for the blank image alone, and the VMDK patterns (0.9 ms)
    and CRC-32C tables (0.5 ms) of those formats' children. Best effort: a failure here changes nothing for the
    children."""
    with contextlib.suppress(Exception):
        images = _warm_up_images()
        for _ in range(WARM_UP_ROUNDS):
            for image, declared in images:
                with contextlib.suppress(Exception):
                    report.build(image, "(warm-up)", declared, include_bytes=False)


def _merge(inherited: dict[str, str], own: dict[str, str]) -> dict[str, str]:
    """The child's status: its own layers, and the zygote's for the layers it inherits."""
    merged = {}
    for name, status in own.items():
        if status.startswith("off") and name in inherited:
            status = inherited[name]
            if sandbox.is_on(status):
                status += " (inherited from the zygote)"
        merged[name] = status
    return merged


def _child(request: dict[str, Any], fds: list[int], server: Server) -> int:
    """In the forked child: drop the zygote's descriptors, take the pipes as stdout and stderr, tighten,
    inspect, reply. A remote image's first descriptor is no image but the pipe of the parent's answers: it
    becomes stdin (``worker``'s range protocol)."""
    signal.set_wakeup_fd(-1)
    # SIGCHLD back to its default through the C function: ``signal.signal``'s enum conversions touch pages that
    # each child would copy (~20 faults per child, measured)
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
    *images, out, err = fds
    remote = worker.is_remote(request)
    if remote:
        os.dup2(images[0], 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    kept = {0, 1, 2} if remote else {1, 2, *images}
    for fd in {0, *images, out, err, server.sock.fileno(), *server.own_fds} - kept:
        os.close(fd)
    if worker.is_batch(request):  # one image per item, in order
        if remote or len(images) != len(request["batch"]) or len(images) > MAX_BATCH:
            return 2
        for item, image in zip(request["batch"], images, strict=True):
            item["fd"] = image
    elif not remote:
        if len(images) != 1:
            return 2
        request["fd"] = images[0]
    empty_root = sandbox.is_on(server.layers.get("namespaces", "off"))  # the zygote's: no /proc to list
    plan = child_plan(request, kept, server.rules, empty_root)
    return worker.handle(request, _merge(server.layers, sandbox.harden(plan)), plan)


def child_plan(
    request: dict[str, Any], kept: set[int], rules: seccomp_filter.Loadable | None, empty_root: bool
) -> sandbox.Plan:
    """How a forked child hardens itself: its own layers only (the server's it inherits), with the seccomp program
    the server built (``rules``; none: no seccomp layer of its own)."""
    plan = worker.plan_for(request, kept)
    own = CHILD_LAYERS if rules is not None else tuple(name for name in CHILD_LAYERS if name != "seccomp")
    plan.layers = tuple(name for name in plan.layers if name in own)
    plan.prebuilt = rules
    plan.empty_root = empty_root
    return plan


def _request(body: bytes, flags: int) -> dict[str, Any] | None:
    """A request frame's JSON object, or None if it is not one (or was cut short: too large for a frame). A copy:
    a compact table the child's own writes copy fewer pages of (measured, ~5 faults fewer)."""
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        return None
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return dict(request) if isinstance(request, dict) else None


class Server:
    """The zygote's loop: receive a request, fork, reap, report each exit code."""

    def __init__(
        self,
        sock: socket.socket,
        wake: tuple[int, int],
        layers: dict[str, str],
        rules: seccomp_filter.Loadable | None,
    ) -> None:
        self.sock = sock
        self.wake = wake[0]
        self.own_fds = set(wake)
        self.layers = layers
        self.rules = rules
        self.children: dict[int, int] = {}  # pid -> request id

    def _send(self, kind: bytes, ident: int, body: bytes) -> None:
        with contextlib.suppress(OSError):  # the parent left; the loop ends at its EOF
            self.sock.send(frames.frame(kind, ident, body))

    def _reap(self, block: bool = False) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ident = self.children.pop(pid, None)
            if ident is not None:
                self._send(frames.STATUS, ident, frames.status_body(os.waitstatus_to_exitcode(status)))

    def _fork(self, ident: int, request: dict[str, Any], fds: list[int]) -> None:
        try:
            pid = os.fork()
        except OSError as exc:
            self._send(frames.ERROR, ident, f"fork failed: {exc.strerror}".encode())
            return
        if pid == 0:
            code = 70
            try:
                code = _child(request, fds, self)
            finally:
                os._exit(code)
        self.children[pid] = ident

    def _message(self) -> bool:
        """Handle one message; False at the parent's EOF."""
        data, fds, flags, _ = socket.recv_fds(self.sock, frames.MAX_FRAME, MAX_BATCH + 2)
        try:
            if not data:
                return False
            kind, ident, body = frames.parse(data)
            if kind == frames.KILL:
                for pid, child in self.children.items():
                    if child == ident:
                        os.kill(pid, signal.SIGKILL)
            elif kind == frames.REQUEST and len(fds) >= 3:
                request = _request(body, flags)
                if request is None:
                    self._send(frames.ERROR, ident, b"unreadable request")
                else:
                    self._fork(ident, request, fds)
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def loop(self) -> None:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self.wake, select.POLLIN)
        running = True
        while running:
            for fd, _ in poller.poll():
                if fd == self.wake:
                    os.read(self.wake, 512)
                    self._reap()
                elif not self._message():
                    running = False
        for pid in list(self.children):
            os.kill(pid, signal.SIGKILL)
        self._reap(block=True)


def serve() -> int:
    """Read the start request, harden, greet, then serve until the parent closes its socket."""
    request = worker.read_request()
    sock = socket.socket(fileno=request["fd"])
    wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake[1], warn_on_full_buffer=False)
    # its children are hardened before they read their requests: what they may run is imported here, all of it
    # unless the parent says what its batch asks for (a smaller heap is a cheaper fork)
    preload = request.get("preload")
    worker.preload(preload if isinstance(preload, dict) else worker.EVERYTHING)
    _warm_up()
    # what is alive now stays: out of the collector's reach, a child's collections touch none of its pages
    # (0.25 ms less CPU and ~70 fewer copy-on-write faults per child, measured)
    gc.collect()
    gc.freeze()
    rules = _child_filter()
    plan = worker.plan_for(request, {0, 1, 2, sock.fileno(), *wake})
    plan.fork_allowed = True
    plan.rules = seccomp_filter.zygote_rules
    layers = sandbox.harden(plan)
    if worker.report_layers(request, layers):
        return 3
    worker.reply({"ok": True})
    os.dup2(0, 1)  # ends the greeting (the parent reads to EOF) and keeps 0-2 taken, so no received fd lands there
    Server(sock, wake, layers, rules).loop()
    sock.close()
    return 0
