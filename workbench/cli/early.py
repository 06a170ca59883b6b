"""``workbench inspect FILE``'s engine child, started before the command line is built.

The child reads its request only after its own imports (tens of milliseconds), and nothing the parent imports
before it can be spawned (``argparse``, the subcommands, the settings, the validator, the policy) is needed
until that request is written. So for the plainest form of the command, a few options that change neither
the open nor the child's start and one local file, the file is opened and the child spawned first
(:func:`start`); then the command line is parsed as always, and the inspect command takes the child
(:func:`take`) only if the parsed arguments name the same file, the same way. Anything else (a usage error,
``--help``, another form) ends the child unused (:func:`discard`): it never got a request, so it never read
the image. Every check of the inspection is the command's, unchanged.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..host.direct import Child

DEFAULT_TIMEOUT = 20.0  # what ``--timeout`` is without ``--deep`` (``cli.commands._common.timeout_of`` returns it)
FLAGS = frozenset({"--json", "-v", "--verbose", "--guest", "--follow-symlinks"})  # change nothing before the request
WITH_VALUE = frozenset({"-f", "--declared-format"})  # its value is checked by the parser; it is in the request only
_started: tuple[str, bool, Child] | None = None


def plain_target(args: list[str]) -> tuple[str, bool] | None:
    """For ``inspect``'s arguments of the plainest form (the :data:`FLAGS`, :data:`WITH_VALUE` options spelt in
    full and one local file): the file and whether ``--follow-symlinks`` was given; else None."""
    files: list[str] = []
    follow = False
    values = iter(args)
    for arg in values:
        if arg in WITH_VALUE:
            if next(values, None) is None:
                return None
        elif arg in FLAGS:
            follow = follow or arg == "--follow-symlinks"
        elif arg.startswith("-"):
            return None
        else:
            files.append(arg)
    if len(files) != 1:
        return None
    from ..host.urls import is_remote

    return None if is_remote(files[0]) else (files[0], follow)


def start(args: list[str]) -> None:
    """Open the file and spawn its child when ``args`` (after ``inspect``) are of the plainest form."""
    global _started
    target = plain_target(args)
    if target is None:
        return
    from ..host import direct

    if direct.available(deep=False):
        _started = (*target, direct.Child(*target, None, DEFAULT_TIMEOUT))


def take(path: str, follow_symlinks: bool, timeout: float) -> Child | None:
    """The child :func:`start` made, if it was made for ``path`` opened this way within ``timeout``; else None
    (and that child, if any, is ended)."""
    global _started
    started, _started = _started, None
    if started is None:
        return None
    if started[:2] == (path, follow_symlinks) and timeout == DEFAULT_TIMEOUT:
        return started[2]
    started[2].close()
    return None


def discard() -> None:
    """End a child that no command took."""
    global _started
    if _started is not None:
        _started[2].close()
        _started = None
