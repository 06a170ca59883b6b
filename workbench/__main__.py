"""Entry point. Engine mode is dispatched first, before anything imports Qt."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--engine-worker":
        import os

        os.chdir("/")  # as engine_command's child does: host.spawn.spawn cannot set it
        from workbench.engine.child.worker import main as engine_main

        engine_main()
    if sys.argv[1:] == ["--version"]:  # answered before the command line's imports, as fast as a shell builtin
        from workbench import __version__

        print(f"workbench {__version__}")
        sys.exit(0)
    if sys.argv[1:2] != ["inspect"]:
        from workbench.cli.main import main as cli_main

        code = cli_main()
        if sys.argv[1:2] == ["triage"]:  # its outputs are closed and its fork server gone when it returns
            exit_now(code)
        sys.exit(code)
    from workbench.cli import early

    early.start(sys.argv[2:])  # the engine child of ``inspect FILE`` starts while the command line is built
    try:
        from workbench.cli.main import main as cli_main

        code = cli_main()
    finally:
        early.discard()
    exit_now(code)


def exit_now(code: int) -> None:
    """``sys.exit(code)`` without the interpreter's teardown, which frees every module and object one by one
    (~10 ms of a ~70 ms ``inspect``): the output is flushed and the exit handlers run first, as at any exit.
    For ``inspect`` and ``triage``, which leave no file open for writing (triage closes its outputs before it
    returns) and no thread that must finish (the file-system calls' and the listing's threads are daemons,
    abandoned at exit either way). If the output cannot be flushed (the reader went away), the ordinary exit
    reports it."""
    import atexit
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    main()
