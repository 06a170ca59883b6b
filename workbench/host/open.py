"""Open an image the way every inspection does: judged by a stat before the open, opened read-only with
``O_NOFOLLOW``, checked to be what was looked at; a walked file reopened from its folder down; every
file-system call off the event loop (:func:`off_loop`), so a hung filesystem freezes nothing (a batch opens a
walked file on a local disk or in memory on the loop: :mod:`.mounts`).
"""

from __future__ import annotations

import _queue
import _thread
import errno
import os
import stat

# ``inspect FILE`` imports this module before its child starts: no ``typing``, ``threading`` (with ``functools``
# and ``collections``) or ``Walked`` (``typing``; its users import it from ``host.walked``) at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from .walked import Walked

    T = TypeVar("T")


_KINDS = {
    stat.S_ISREG: "a regular file",
    stat.S_ISDIR: "a directory",
    stat.S_ISLNK: "a symbolic link",
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}
# Every open of an image or a folder on its way: read-only, never a controlling terminal, and non-blocking so
# a FIFO swapped in cannot hang the open. Windows has none of these flags.
OPEN_FLAGS = os.O_RDONLY
for _flag in ("O_CLOEXEC", "O_NONBLOCK", "O_NOCTTY"):
    OPEN_FLAGS |= getattr(os, _flag, 0)
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
MAX_STUCK_CALLS = 64  # file-system calls of the parent's that may hang in the kernel at once; past it, refuse
_running_lock = _thread.allocate_lock()
_running_calls = 0  # calls in threads of their own that have not returned
IDLE_SECONDS = 5.0  # how long a worker thread waits for another call before it ends


class InspectError(Exception):
    """The image could not be inspected; the message is one line for the user."""

    def __init__(self, message: str, sandbox: dict[str, str] | None = None, finding: str | None = None) -> None:
        super().__init__(message)
        self.sandbox = sandbox
        self.finding = finding  # a finding id the failed report carries (``image-changed``)


def kind_of(mode: int) -> str:
    """What a file is, in words, from its ``st_mode``."""
    return next((what for test, what in _KINDS.items() if test(mode)), "an unknown kind of file")


def _refuse_link(path: str) -> InspectError:
    return InspectError(f"is a symbolic link to {os.readlink(path)!r}: refused (use --follow-symlinks)")


def _refuse_kind(st: os.stat_result) -> None:
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InspectError(f"is {kind_of(st.st_mode)}, not an image file")


def _look(seen: os.stat_result, path: str) -> None:
    """Refuse from a stat, before any open: a symbolic link, or anything but a regular file or block device."""
    if stat.S_ISLNK(seen.st_mode):
        raise _refuse_link(path)
    _refuse_kind(seen)


def _open_walked(walked: Walked, path: str) -> int:
    """Open a walked file through directory descriptors, each folder below the root with O_NOFOLLOW: a folder
    replaced by a symbolic link since the walk ends the open instead of redirecting it."""
    if os.open not in os.supports_dir_fd:  # Windows: by name; the identity check still applies
        _look(os.stat(path, follow_symlinks=False), path)
        return os.open(path, OPEN_FLAGS | O_NOFOLLOW)
    folder = os.open(walked.root, OPEN_FLAGS | O_DIRECTORY)
    try:
        for name in walked.names[:-1]:
            inner = os.open(name, OPEN_FLAGS | O_DIRECTORY | O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        _look(os.stat(walked.names[-1], dir_fd=folder, follow_symlinks=False), path)
        return os.open(walked.names[-1], OPEN_FLAGS | O_NOFOLLOW, dir_fd=folder)
    finally:
        os.close(folder)


def _open_error(exc: OSError, path: str, walked: Walked | None) -> InspectError:
    if isinstance(exc, FileNotFoundError):
        return InspectError("no such file (removed since it was checked?)" if walked else "no such file")
    if isinstance(exc, PermissionError):
        return InspectError("permission denied")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and walked is not None:
        return InspectError(
            "it or a folder on its path was replaced since it was checked (by a symbolic link?): refused"
        )
    if exc.errno == errno.ELOOP and os.path.islink(path):
        return _refuse_link(path)
    if exc.errno == errno.ENXIO:
        return InspectError("is a socket or a device without a reader: refused")
    return InspectError(f"cannot open: {exc.strerror}")


def open_image(path: str, follow_symlinks: bool = False, walked: Walked | None = None) -> tuple[int, os.stat_result]:
    """Open ``path`` read-only for the engine: a regular file or block device only, decided before the open (a
    device node, FIFO or socket is never opened) and checked again on the descriptor, which must be the very
    file that was looked at (same ``st_dev``/``st_ino``). ``walked``: reopen what a folder walk found (the
    identity is the walk's). Returns the descriptor and its ``fstat``. Blocking: see :func:`off_loop`."""
    try:
        if walked is not None:
            expected = walked.identity
            fd = _open_walked(walked, path)
        else:
            seen = os.stat(path, follow_symlinks=follow_symlinks)
            _look(seen, path)
            expected = seen.st_dev, seen.st_ino
            fd = os.open(path, OPEN_FLAGS | (0 if follow_symlinks else O_NOFOLLOW))
    except OSError as exc:
        raise _open_error(exc, path, walked) from None
    try:
        st = os.fstat(fd)
        _refuse_kind(st)
        if (st.st_dev, st.st_ino) != expected:
            raise InspectError("was replaced between its check and its open: refused")
        if hasattr(os, "set_blocking"):  # not on Windows before Python 3.12, where nothing was non-blocking
            os.set_blocking(fd, True)
    except OSError as exc:
        os.close(fd)
        raise InspectError(f"cannot check the open file: {exc.strerror}") from None
    except InspectError:
        os.close(fd)
        raise
    return fd, st


def close_opened(opened: tuple[int, os.stat_result]) -> None:
    """The ``discard`` of an abandoned :func:`open_image`."""
    os.close(opened[0])


class _Workers:
    """Threads for blocking file-system calls, kept between calls (a thread started per call cost the batch a
    thread creation and a wait for its start on each open and fstat). An idle thread waits :data:`IDLE_SECONDS`
    for more work, then ends. A call stuck in the kernel keeps its thread, so the next call takes another one,
    as many as :data:`MAX_STUCK_CALLS` allows. Built on ``_thread`` and ``_queue`` (``threading`` and ``queue``
    would cost ``inspect FILE`` their imports before its child starts); the threads are never waited for at exit."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._idle = 0  # threads waiting on ``_jobs``; each job put is matched by one taken from this count
        self._jobs: _queue.SimpleQueue[Callable[[], None]] = _queue.SimpleQueue()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._jobs.put(job)
                return
        _thread.start_new_thread(self._work, (job,))

    def _work(self, job: Callable[[], None]) -> None:
        while True:
            job()
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=IDLE_SECONDS)
                continue
            except _queue.Empty:
                pass
            with self._lock:  # a job put meanwhile was counted against this thread: take it
                if self._jobs.empty():
                    self._idle -= 1
                    return
                job = self._jobs.get_nowait()


_workers = _Workers()


def _in_thread(call: Callable[[], T], what: str, settle: Callable[[T | None, BaseException | None], None]) -> None:
    """Run ``call()`` in a worker thread (:class:`_Workers`), at most :data:`MAX_STUCK_CALLS` at once, and hand its
    result or error (an OSError as a one-line InspectError) to ``settle`` in that thread."""
    global _running_calls
    with _running_lock:
        if _running_calls >= MAX_STUCK_CALLS:
            raise InspectError(f"{what}: {MAX_STUCK_CALLS} earlier file-system calls are still stuck: refused")
        _running_calls += 1

    def work() -> None:
        global _running_calls
        result: T | None = None
        error: Exception | None = None
        try:
            result = call()
        except OSError as exc:
            error = InspectError(f"{what}: {exc.strerror or exc}")
        except Exception as exc:  # handed to the waiting caller, raised there
            error = exc
        finally:
            with _running_lock:
                _running_calls -= 1
        settle(result, error)

    _workers.submit(work)


def _abandoned(what: str, timeout: float) -> InspectError:
    return InspectError(f"{what} timed out after {timeout:g} s (a hung filesystem?) and was abandoned")


async def off_loop(
    call: Callable[[], T], timeout: float, what: str, discard: Callable[[T], None] = lambda _: None
) -> T:
    """``call()`` in a worker thread, awaited for at most ``timeout`` seconds, so a hung network filesystem
    freezes neither the window nor a batch. A thread stuck in the kernel cannot be killed: on timeout it is
    abandoned, and whatever it returns later goes to ``discard`` (say, closing a descriptor). At most
    :data:`MAX_STUCK_CALLS` run at once; past that, calls are refused rather than piling up threads."""
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # abandoned: timed out or cancelled
            if error is None:
                discard(result)  # type: ignore[arg-type]
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def deliver(result: T | None, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits
            if error is None:
                discard(result)  # type: ignore[arg-type]

    _in_thread(call, what, deliver)
    try:
        async with asyncio.timeout(timeout):
            return await future
    except TimeoutError:
        raise _abandoned(what, timeout) from None


def off_thread(call: Callable[[], T], timeout: float, what: str, discard: Callable[[T], None] = lambda _: None) -> T:
    """:func:`off_loop` without an event loop (the single-image command): waited for at most ``timeout``
    seconds, then abandoned the same way."""
    lock = _thread.allocate_lock()
    done = _thread.allocate_lock()  # held until the call is settled
    done.acquire()
    outcome: list[tuple[T | None, BaseException | None]] = []
    abandoned = False

    def settle(result: T | None, error: BaseException | None) -> None:
        with lock:
            if not abandoned:
                outcome.append((result, error))
                done.release()
                return
        if error is None:  # abandoned: timed out
            discard(result)  # type: ignore[arg-type]

    _in_thread(call, what, settle)
    if timeout > 0:
        done.acquire(timeout=min(timeout, _thread.TIMEOUT_MAX))
    with lock:
        if not outcome:
            abandoned = True  # whatever comes later is discarded
            raise _abandoned(what, timeout)
    result, error = outcome[0]
    if error is not None:
        raise error
    return result  # type: ignore[return-value]
