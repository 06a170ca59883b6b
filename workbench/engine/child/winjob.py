"""Windows job objects through ctypes: the parent confines each engine child in a job; the child checks it is in one.

Used only on Windows, but importable everywhere (the tests run it with kernel32 replaced): the DLL is looked
up on first use. The structures follow the Win32 API reference (winnt.h):

- ``JOBOBJECT_BASIC_LIMIT_INFORMATION``: LARGE_INTEGER PerProcessUserTimeLimit, PerJobUserTimeLimit;
  DWORD LimitFlags; SIZE_T MinimumWorkingSetSize, MaximumWorkingSetSize; DWORD ActiveProcessLimit;
  ULONG_PTR Affinity; DWORD PriorityClass, SchedulingClass.
- ``IO_COUNTERS``: six ULONGLONG (Read/Write/Other OperationCount, Read/Write/Other TransferCount).
- ``JOBOBJECT_EXTENDED_LIMIT_INFORMATION``: the basic limits, IO_COUNTERS IoInfo; SIZE_T ProcessMemoryLimit,
  JobMemoryLimit, PeakProcessMemoryUsed, PeakJobMemoryUsed.
- ``JOBOBJECT_BASIC_UI_RESTRICTIONS``: DWORD UIRestrictionsClass.

https://learn.microsoft.com/windows/win32/api/winnt/ns-winnt-jobobject_extended_limit_information and the
pages it links.
"""

from __future__ import annotations

import ctypes
import functools

from ...schema import ADDRESS_SPACE as MEMORY_LIMIT  # committed memory per process, as the address space on Linux

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

# JOBOBJECTINFOCLASS
BASIC_UI_RESTRICTIONS = 4
EXTENDED_LIMIT_INFORMATION = 9
# LimitFlags
LIMIT_ACTIVE_PROCESS = 0x00000008
LIMIT_PROCESS_MEMORY = 0x00000100
LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x00000400  # no error-reporting dialog: the child just dies
LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
LIMIT_FLAGS = LIMIT_ACTIVE_PROCESS | LIMIT_PROCESS_MEMORY | LIMIT_DIE_ON_UNHANDLED_EXCEPTION | LIMIT_KILL_ON_JOB_CLOSE
# UIRestrictionsClass: USER handles of other processes, clipboard read and write, system parameters, display
# settings, global atoms, desktops, logging off
UILIMIT_ALL = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40 | 0x80
PROCESS_TERMINATE = 0x0001
PROCESS_SET_QUOTA = 0x0100  # AssignProcessToJobObject needs both rights on the process handle
STATUS = (
    f"on (committed memory {MEMORY_LIMIT >> 20} MiB, 1 process, killed when the parent closes the job, "
    "no desktops, clipboard, global atoms or other processes' windows)"
)

DWORD = ctypes.c_uint32
SIZE_T = ctypes.c_size_t
ULONG_PTR = ctypes.c_size_t  # pointer-sized and unsigned, like SIZE_T on every Windows ABI
HANDLE = ctypes.c_void_p
BOOL = ctypes.c_int


class JOBOBJECT_BASIC_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", DWORD),
        ("MinimumWorkingSetSize", SIZE_T),
        ("MaximumWorkingSetSize", SIZE_T),
        ("ActiveProcessLimit", DWORD),
        ("Affinity", ULONG_PTR),
        ("PriorityClass", DWORD),
        ("SchedulingClass", DWORD),
    ]


class IO_COUNTERS(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "ReadOperationCount",
            "WriteOperationCount",
            "OtherOperationCount",
            "ReadTransferCount",
            "WriteTransferCount",
            "OtherTransferCount",
        )
    ]


class JOBOBJECT_EXTENDED_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", JOBOBJECT_BASIC_LIMIT_INFORMATION),
        ("IoInfo", IO_COUNTERS),
        ("ProcessMemoryLimit", SIZE_T),
        ("JobMemoryLimit", SIZE_T),
        ("PeakProcessMemoryUsed", SIZE_T),
        ("PeakJobMemoryUsed", SIZE_T),
    ]


class JOBOBJECT_BASIC_UI_RESTRICTIONS(ctypes.Structure):
    _fields_ = [("UIRestrictionsClass", DWORD)]


@functools.cache
def _kernel32() -> Any:
    """kernel32 with the prototypes used here (a HANDLE must not be truncated to a C int)."""
    kernel = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]  # Windows only
    prototypes = {
        "CreateJobObjectW": (HANDLE, [ctypes.c_void_p, ctypes.c_wchar_p]),
        "SetInformationJobObject": (BOOL, [HANDLE, ctypes.c_int, ctypes.c_void_p, DWORD]),
        "OpenProcess": (HANDLE, [DWORD, BOOL, DWORD]),
        "AssignProcessToJobObject": (BOOL, [HANDLE, HANDLE]),
        "CloseHandle": (BOOL, [HANDLE]),
        "GetCurrentProcess": (HANDLE, []),
        "IsProcessInJob": (BOOL, [HANDLE, HANDLE, ctypes.POINTER(BOOL)]),
    }
    for name, (restype, argtypes) in prototypes.items():
        function = getattr(kernel, name)
        function.restype, function.argtypes = restype, argtypes
    return kernel


def _failed(what: str) -> OSError:
    code = ctypes.get_last_error() if hasattr(ctypes, "get_last_error") else 0
    return OSError(f"{what} failed (Windows error {code})")


def limits() -> JOBOBJECT_EXTENDED_LIMIT_INFORMATION:
    info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
    info.BasicLimitInformation.LimitFlags = LIMIT_FLAGS
    info.BasicLimitInformation.ActiveProcessLimit = 1  # the child itself: it cannot start another process
    info.ProcessMemoryLimit = MEMORY_LIMIT
    return info


class Job:
    """A job object holding one engine child. Closing the parent's (only) handle kills the child."""

    def __init__(self, handle: int | None, status: str) -> None:
        self.handle = handle
        self.status = status

    def close(self) -> None:
        if self.handle:
            _kernel32().CloseHandle(self.handle)
            self.handle = None


def _set(kernel: Any, job: int, info_class: int, info: ctypes.Structure) -> None:
    if not kernel.SetInformationJobObject(job, info_class, ctypes.pointer(info), ctypes.sizeof(info)):
        raise _failed(f"SetInformationJobObject({info_class})")


def _assign(kernel: Any, job: int, pid: int) -> None:
    process = kernel.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, False, pid)
    if not process:
        raise _failed("OpenProcess")
    try:
        if not kernel.AssignProcessToJobObject(job, process):
            raise _failed("AssignProcessToJobObject")
    finally:
        kernel.CloseHandle(process)


def confine(pid: int) -> Job:
    """Put process ``pid`` (the parent's own child, so its id is not reused) in a new job with the engine's
    limits. Never raises: what went wrong is the job's status, which the child reports as its ``job`` layer."""
    try:
        kernel = _kernel32()
    except (AttributeError, OSError) as exc:
        return Job(None, f"failed: kernel32 is not available ({exc})")
    job = kernel.CreateJobObjectW(None, None)
    if not job:
        return Job(None, f"failed: {_failed('CreateJobObjectW')}")
    try:
        _set(kernel, job, EXTENDED_LIMIT_INFORMATION, limits())
        _set(kernel, job, BASIC_UI_RESTRICTIONS, JOBOBJECT_BASIC_UI_RESTRICTIONS(UILIMIT_ALL))
        _assign(kernel, job, pid)
    except OSError as exc:
        kernel.CloseHandle(job)
        return Job(None, f"failed: {exc}")
    return Job(job, STATUS)


def in_job() -> bool:
    """Whether this process is in a job object (``IsProcessInJob`` with no job named: any job)."""
    kernel = _kernel32()
    result = BOOL()
    if not kernel.IsProcessInJob(kernel.GetCurrentProcess(), None, ctypes.pointer(result)):
        raise _failed("IsProcessInJob")
    return bool(result.value)
