"""Child-side hardening, applied after the engine's imports and before the first byte of the image.

Layers run in :data:`ORDER` (their names and how a status reads: :mod:`.layers`); each reports
``on (...)``, ``unavailable: why``, ``failed: why`` or ``off: not requested``, and nothing fails
silently. The parent decides from the policy which layers are required. Order matters: privileges are
dropped before the namespaces are made (so the child is nobody on the host), Landlock comes before the
descriptor limit (its ruleset needs a descriptor), and seccomp comes last because it forbids the calls
the other layers make. Anything that opens a file (imports, codecs, libseccomp itself) happens in
:func:`_prepare`, before any layer.

On Windows the ``job`` layer is the parent's job object (:mod:`winjob`), which the child verifies; on
macOS the resource limits leave out memory, which macOS does not limit (see ``docs/sandbox.md``).
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import os
import sys
import time
from collections.abc import Callable

from ...schema import ADDRESS_SPACE, CPU_SECONDS
from ..record import Record
from . import landlock, seccomp_filter
from .layers import DEGRADED, LINUX_ONLY
from .layers import ORDER as ORDER  # the layer vocabulary, for the worker, the zygote and the tests
from .layers import degraded as degraded
from .layers import is_on as is_on
from .layers import layer_order as layer_order
from .layers import missing_required as missing_required

NOBODY = 65534  # the overflow uid and gid, "nobody" on Debian, Fedora and Arch alike
ZYGOTE_NOFILE = 256  # the fork server holds a few descriptors per image in flight
MAX_FD_SCAN = 1 << 16  # where no descriptor listing can be read, fstat these many numbers
CLOSE_ALL = 0xFFFFFFFF  # close_range's "to the last descriptor" (~0U)
EMPTY_ROOT = "/tmp"  # mount point of the empty read-only tmpfs that becomes the child's root
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 0x4000, 0x40000
CAPABILITY_VERSION_3 = 0x20080522
# Codecs that parsers use through bytes.decode: their modules are imported on first use.
CODECS = ("ascii", "latin-1", "utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "cp437")


class Plan(Record):
    """What one process applies. The zygote forks, so it keeps ``fork_allowed`` and no CPU limit."""

    __slots__ = (
        "expected_fds",
        "layers",
        "cpu_seconds",
        "fork_allowed",
        "rules",
        "prebuilt",
        "job",
        "moved",
        "timings",
        "empty_root",
        "_filter",
    )

    def __init__(self, expected_fds: set[int], layers: tuple[str, ...] = ORDER) -> None:
        self.expected_fds = expected_fds
        self.layers = layers
        self.cpu_seconds = CPU_SECONDS
        self.fork_allowed = False
        self.rules: Callable[[], list[seccomp_filter.Rule]] = seccomp_filter.parse_rules
        self.prebuilt: seccomp_filter.Loadable | None = None
        self.job: str | None = None  # on Windows: what the parent says of the job object it put this process in
        self.moved: dict[int, int] = {}  # descriptors the fds layer renumbered: old -> new
        self.timings: dict[str, float] = {}  # seconds each step took, for the benchmark
        self.empty_root = False  # already in an empty root (a fork server's child): no descriptor listing to read
        self._filter: seccomp_filter.Loadable | str | None = None


_preloaded = False


def _preload() -> None:
    """Import what parsing may import lazily, while files can still be opened. Once per process: a child the fork
    server forked has it all from the server (0.1 ms of each child's CPU, measured)."""
    global _preloaded
    if _preloaded:
        return
    import json  # noqa: F401
    import zlib  # noqa: F401

    for name in CODECS:
        codecs.lookup(name)
    _has_resource()
    if sys.platform == "win32":  # the job layer's check (elsewhere only tests run it, unhardened)
        from . import winjob  # noqa: F401
    _preloaded = True


def _prepare(plan: Plan) -> None:
    """Everything that opens a file: imports, and libseccomp with its compiled rules."""
    _preload()
    if "seccomp" not in plan.layers or not sys.platform.startswith("linux"):
        return
    if plan.prebuilt is not None:
        plan._filter = plan.prebuilt
        return
    try:
        plan._filter = seccomp_filter.Filter(plan.rules())
    except (seccomp_filter.SeccompUnavailable, OSError) as exc:
        plan._filter = str(exc)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _listed_fds() -> set[int] | None:
    """The open descriptors as /proc or /dev/fd lists them; None where neither can be read (an empty root)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            listed = {int(name) for name in os.listdir(folder)}
        except OSError:
            continue
        return {fd for fd in listed if _is_open(fd)}  # drops the descriptor listdir itself used
    return None


def _probed_fds() -> set[int]:
    """The open descriptors found by trying each number below the descriptor limit (0.3 ms for 256)."""
    return {fd for fd in range(min(os.sysconf("SC_OPEN_MAX"), MAX_FD_SCAN)) if _is_open(fd)}


def _close_from(low: int) -> bool:
    """Close every descriptor from ``low`` up in one ``close_range`` call; False where the C library, the kernel
    (before Linux 5.9) or a seccomp filter does not offer it. Under a descriptor limit as low as the fork server's
    (no descriptor can lie above it: its children's case) ``os.closerange`` does it without ``ctypes`` (about
    0.1 ms less per child, measured), by ``close_range`` where the interpreter has it, else number by number."""
    if _has_resource():
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if 0 <= hard <= ZYGOTE_NOFILE:
            os.closerange(low, hard)
            return True
    close_range = _close_range()
    return close_range is not None and close_range(ctypes.c_uint(low), ctypes.c_uint(CLOSE_ALL), 0) == 0


@functools.cache
def _close_range() -> Callable[..., int] | None:
    """libc's ``close_range``, looked up once (in the fork server, before its children need it)."""
    return getattr(_libc(), "close_range", None) if sys.platform.startswith("linux") else None


def _compact(plan: Plan) -> None:
    """Move each kept descriptor above 2 down to the lowest free number, so that the descriptor limit set
    later (highest kept + 1) leaves no free slot in which anything new could be created."""
    kept = set(plan.expected_fds)
    for fd in sorted(kept):
        free = min(set(range(fd)) - kept, default=None)
        if fd > 2 and free is not None:
            os.dup2(fd, free, inheritable=False)
            os.close(fd)
            kept = (kept - {fd}) | {free}
            plan.moved[fd] = free
    plan.expected_fds = kept


def _fds(plan: Plan) -> str:
    """Close every descriptor but the expected ones. Where no listing can be read (a child the fork server forked
    is in its empty root), the kept ones move down first and one ``close_range`` closes all above them: nothing
    is left to name, so the status says what stays. Elsewhere the listing names what was closed, and
    ``close_range`` above the kept ones then closes whatever a listing could miss."""
    if sys.platform == "win32":  # no descriptor listing; handles are inherited only through the parent's list
        return "on (the parent's handle list passes only the pipes and the image)"
    listed = None if plan.empty_root else _listed_fds()
    if listed is None and not plan.fork_allowed:
        _compact(plan)  # a dup2 onto an unexpected descriptor closes it, as close_range would
        if _close_from(max(plan.expected_fds) + 1):
            return _fds_status(plan, [])
    extra = sorted((_probed_fds() if listed is None else listed) - plan.expected_fds)
    for fd in extra:
        os.close(fd)
    if not plan.fork_allowed:  # the fork server keeps its numbers (it holds them) and a wider limit
        _compact(plan)
    _close_from(max(plan.expected_fds) + 1)
    return _fds_status(plan, extra)


def _fds_status(plan: Plan, extra: list[int]) -> str:
    kept = ", ".join(map(str, sorted(plan.expected_fds)))
    moved = "".join(f"; moved {old} to {new}" for old, new in plan.moved.items())
    return f"on (kept {kept}{moved}; closed unexpected {extra})" if extra else f"on (only {kept}{moved})"


def _ids() -> tuple[int, ...]:
    return (*os.getresuid(), *os.getresgid(), *os.getgroups())


def _user(plan: Plan) -> str:
    """As root: no groups, then gid and uid 65534; then the ids are read back, and any 0 left fails the layer."""
    if not hasattr(os, "setresuid"):
        return "unavailable: no setresuid() on this system"
    if 0 not in os.getresuid() + os.getresgid():
        return f"on (not root: uid {os.getuid()})"
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    if 0 in _ids():
        return f"failed: an id is still 0 after dropping root (uids, gids, groups: {_ids()})"
    return f"on (uid and gid {NOBODY}, no supplementary groups)"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _namespaces(plan: Plan) -> str:
    """New user, network and mount namespaces; an empty read-only root; then no capabilities at all."""
    libc = _libc()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0:
        return f"unavailable: unshare: {os.strerror(ctypes.get_errno())} (user namespaces not allowed here)"
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    _check(libc.mount(b"none", EMPTY_ROOT.encode(), b"tmpfs", flags, b"size=4k,mode=0555"), "mounting an empty root")
    _check(libc.chroot(EMPTY_ROOT.encode()), "chroot")
    os.chdir("/")
    _check(libc.capset(ctypes.byref(_CapHeader(CAPABILITY_VERSION_3, 0)), (_CapData * 2)()), "dropping capabilities")
    return "on (user, network and mount namespaces; empty read-only root; no capabilities)"


def _prctl(option: int, arg: int) -> str:
    _check(_libc().prctl(option, arg, 0, 0, 0), "prctl")
    return "on"


def _no_new_privs(plan: Plan) -> str:
    return _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _not_dumpable(plan: Plan) -> str:
    return _prctl(PR_SET_DUMPABLE, 0)


def _landlock(plan: Plan) -> str:
    return landlock.restrict_self()


def _rlimits(plan: Plan) -> str:
    import resource

    # macOS accepts RLIMIT_AS and RLIMIT_DATA (or refuses AS with EINVAL) but limits no memory with them
    memory = sys.platform != "darwin"
    limits = {"AS": (resource.RLIMIT_AS, ADDRESS_SPACE)} if memory else {}
    limits |= {
        "FSIZE": (resource.RLIMIT_FSIZE, 0),
        "CORE": (resource.RLIMIT_CORE, 0),
        "NOFILE": (resource.RLIMIT_NOFILE, ZYGOTE_NOFILE if plan.fork_allowed else max(plan.expected_fds) + 1),
    }
    if not plan.fork_allowed:
        limits["CPU"] = (resource.RLIMIT_CPU, plan.cpu_seconds)
        limits["NPROC"] = (resource.RLIMIT_NPROC, 0)
    failed = []
    for name, (which, value) in limits.items():
        try:
            resource.setrlimit(which, (value, value + 1 if name == "CPU" else value))
        except (ValueError, OSError) as exc:
            failed.append(f"{name}: {exc}")
    if failed:
        return f"failed: {'; '.join(failed)}"
    shown = ", ".join(
        f"{name} {value >> 20} MiB" if name == "AS" else f"{name} {value}" for name, (_, value) in limits.items()
    )
    free = 0 if plan.fork_allowed else limits["NOFILE"][1] - len(plan.expected_fds)
    if free:  # only when the fds layer did not compact the table: say it, it is a weakness
        shown += f"; {DEGRADED} {free} free descriptor slot(s) below NOFILE"
    return f"on ({shown})" if memory else f"on ({shown}; {DEGRADED} no memory limit: macOS does not enforce one)"


def _seccomp(plan: Plan) -> str:
    if isinstance(plan._filter, str):
        return f"unavailable: {plan._filter}"
    if plan._filter is None:
        return "failed: the filter was not prepared"
    return plan._filter.load()


def _job(plan: Plan) -> str:
    """The parent made the job object and said so in the request; the child checks that it is in a job."""
    told = plan.job or "failed: the parent put this process in no job object"
    if not is_on(told):
        return told
    from . import winjob  # loaded by _preload on Windows: 0.3 ms of every child's start elsewhere

    return told if winjob.in_job() else "failed: the parent reported a job object, but this process is in none"


Layer = Callable[[Plan], str]
LAYERS: dict[str, Layer] = {
    "fds": _fds,
    "user": _user,
    "namespaces": _namespaces,
    "no_new_privs": _no_new_privs,
    "not_dumpable": _not_dumpable,
    "landlock": _landlock,
    "rlimits": _rlimits,
    "seccomp": _seccomp,
    "job": _job,
}


def _apply(name: str, plan: Plan) -> str:
    if name not in plan.layers:
        return "off: not requested"
    if name in LINUX_ONLY and not sys.platform.startswith("linux"):
        return f"unavailable: Linux only (this is {sys.platform})"
    if name == "rlimits" and not _has_resource():
        return "unavailable: no resource limits on this system"
    try:
        return LAYERS[name](plan)
    except Exception as exc:  # a layer that breaks is reported, never hidden
        return f"failed: {type(exc).__name__}: {exc}"


def _has_resource() -> bool:
    try:
        import resource  # noqa: F401
    except ImportError:
        return False
    return True


def _timed(plan: Plan, name: str, step: Callable[..., str | None], *args: object) -> str | None:
    started = time.perf_counter()
    try:
        return step(*args)
    finally:
        plan.timings[name] = time.perf_counter() - started


def harden(plan: Plan) -> dict[str, str]:
    """Apply the plan's layers in :data:`ORDER` and say how each went."""
    _timed(plan, "prepare", _prepare, plan)
    return {name: str(_timed(plan, name, _apply, name, plan)) for name in layer_order()}
