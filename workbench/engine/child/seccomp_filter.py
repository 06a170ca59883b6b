"""A seccomp allowlist built with libseccomp, called through a small ctypes binding.

libseccomp (the C library, Debian's ``libseccomp2``) is the well-kept part: it resolves system call
names for the running architecture, kills calls made through a foreign ABI (i386 or x32 on x86-64)
and compiles the BPF program. Its official Python bindings are not on PyPI, and ``pyseccomp`` (the
PyPI ctypes wrapper) has not been released since 2021; the handful of functions needed here are a
stable C ABI (``libseccomp.so.2``), so this module binds them itself rather than adding a dependency.

Actions: an allowed call runs; a call an attacker alone would make (exec, ptrace, mounts, new
namespaces, kernel modules, BPF, ...) kills the process, which the parent reports as SIGSYS; every other
call fails with ENOSYS, so that libc and Python fall back cleanly when they probe for something new.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from collections.abc import Iterable

from ..record import Record

ACT_KILL_PROCESS = 0x80000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
MAX_PROGRAM = 32 << 10  # bytes of BPF a filter may export (the engine's is a few hundred instructions)
ACT_ALLOW = 0x7FFF0000
CMP_EQ = 4
CMP_MASKED_EQ = 7


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


# What the engine child does between its last import and its exit: read the image and the request,
# write the reply, allocate, and leave. Found by running every format under strace (see docs/sandbox.md).
PARSE = (
    "read",
    "pread64",
    "lseek",
    "close",
    "fstat",
    "newfstatat",
    "brk",
    "munmap",
    "mremap",
    "madvise",
    "rt_sigreturn",
    "rt_sigprocmask",
    "futex",
    "getrandom",
    "clock_gettime",
    "gettimeofday",
    "getpid",
    "gettid",
    "exit",
    "exit_group",
)

# The zygote also receives requests with their descriptors, forks, reaps and tightens each child.
ZYGOTE = (
    "write",
    "recvmsg",
    "sendmsg",
    "sendto",
    "poll",
    "ppoll",
    "clone",
    "wait4",
    "kill",
    "dup2",
    "dup3",
    "close_range",  # a forked child closes the descriptors it does not keep in one call (the fds layer)
    "fcntl",
    "prctl",
    "seccomp",
    "prlimit64",
    "rt_sigaction",
    "set_robust_list",
)

# Calls that no parse reaches by accident: whoever makes one has taken over the child.
KILL = (
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "open_by_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
)


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class Rule(Record):
    """One rule: ``action`` for ``syscall`` when every ``(arg, op, a, b)`` comparison holds."""

    __slots__ = ("syscall", "action", "args")

    def __init__(self, syscall: str, action: int = ACT_ALLOW, args: tuple[tuple[int, int, int, int], ...] = ()) -> None:
        self.syscall, self.action, self.args = syscall, action, args


def _no_exec_memory(name: str) -> list[Rule]:
    """Mappings may be read or written but never made executable: no injected code runs."""
    exec_bit = ((2, CMP_MASKED_EQ, mmap.PROT_EXEC, 0),)
    with_exec = ((2, CMP_MASKED_EQ, mmap.PROT_EXEC, mmap.PROT_EXEC),)
    return [Rule(name, ACT_ALLOW, exec_bit), Rule(name, act_errno(errno.EACCES), with_exec)]


def parse_rules(write_fds: Iterable[int] = (1, 2)) -> list[Rule]:
    """The engine child's rules: ``write`` only to its reply and error streams."""
    rules = [Rule(name) for name in PARSE]
    rules += [Rule("write", ACT_ALLOW, ((0, CMP_EQ, fd, 0),)) for fd in sorted(set(write_fds))]
    rules += _no_exec_memory("mmap") + _no_exec_memory("mprotect")
    rules += [Rule(name, ACT_KILL_PROCESS) for name in KILL]
    return rules


def zygote_rules() -> list[Rule]:
    """The fork server's rules: the child's, plus what receiving, forking and reaping need."""
    rules = [rule for rule in parse_rules() if rule.syscall != "write"]
    return rules + [Rule(name) for name in ZYGOTE]


class SeccompUnavailable(Exception):
    """libseccomp cannot be loaded here."""


def _library() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp.so.2 not found ({exc})") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_load.restype = ctypes.c_int
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


class Filter:
    """A compiled-on-load allowlist. Build it while the libraries can still be opened; load it last."""

    def __init__(self, rules: Iterable[Rule], default: int = act_errno(errno.ENOSYS)) -> None:
        self._lib = _library()
        self._ctx = self._lib.seccomp_init(default)
        if not self._ctx:
            raise SeccompUnavailable("seccomp_init failed")
        self.allowed: list[str] = []
        for rule in rules:
            number = self._lib.seccomp_syscall_resolve_name(rule.syscall.encode())
            if number < 0:
                continue  # not a system call on this architecture (e.g. no plain fstat on arm64)
            cmps = (ArgCmp * max(1, len(rule.args)))(*(ArgCmp(*arg) for arg in rule.args))
            code = self._lib.seccomp_rule_add_array(self._ctx, rule.action, number, len(rule.args), cmps)
            if code < 0:
                raise OSError(-code, f"seccomp_rule_add({rule.syscall}): {errno.errorcode.get(-code, code)}")
            if rule.action == ACT_ALLOW and rule.syscall not in self.allowed:
                self.allowed.append(rule.syscall)

    def load(self) -> str:
        """Install the filter on this process for good; return a status line."""
        code = self._lib.seccomp_load(self._ctx)
        if code < 0:
            return f"failed: seccomp_load: {errno.errorcode.get(-code, code)}"
        return _loaded(self.allowed)

    def export(self) -> bytes:
        """The BPF program libseccomp generates for this filter (what ``seccomp_load`` installs)."""
        read, write = os.pipe()
        try:
            code = self._lib.seccomp_export_bpf(self._ctx, write)
            os.close(write)
            write = -1
            if code < 0:
                raise OSError(-code, f"seccomp_export_bpf: {errno.errorcode.get(-code, code)}")
            program = b""
            while (chunk := os.read(read, MAX_PROGRAM + 1 - len(program))) and len(program) <= MAX_PROGRAM:
                program += chunk
        finally:
            os.close(read)
            if write >= 0:
                os.close(write)
        if not program or len(program) % 8 or len(program) > MAX_PROGRAM:
            raise OSError(errno.EINVAL, f"seccomp_export_bpf: a program of {len(program)} bytes")
        return program


def _loaded(allowed: list[str]) -> str:
    return f"on (allowlist of {len(allowed)} system calls; others ENOSYS, {len(KILL)} kill)"


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Program:
    """A :class:`Filter` exported once as BPF and installed with one ``prctl`` per process: the fork server's
    children load the same filter, which libseccomp would otherwise generate again in each of them. Like
    ``seccomp_load``, it sets ``no_new_privs`` first."""

    def __init__(self, built: Filter) -> None:
        self.allowed = list(built.allowed)
        program = built.export()
        self._code = ctypes.create_string_buffer(program, len(program))
        self._fprog = SockFprog(len(program) // 8, ctypes.cast(self._code, ctypes.c_void_p))
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl
        self._prctl.restype = ctypes.c_int
        self._prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    def load(self) -> str:
        """Install the program on this process for good; return the status line :meth:`Filter.load` gives."""
        if self._prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return f"failed: prctl(PR_SET_NO_NEW_PRIVS): {errno.errorcode.get(ctypes.get_errno(), '?')}"
        if self._prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self._fprog), 0, 0) != 0:
            return f"failed: prctl(PR_SET_SECCOMP): {errno.errorcode.get(ctypes.get_errno(), '?')}"
        return _loaded(self.allowed)


Loadable = Filter | Program  # what a hardening plan installs
