"""Run a command with chosen system calls failing, to take real sandbox layers away in tests.

    python tests/seccomp_jail.py unshare,seccomp=ENOSYS,prctl:22 -- python -m workbench inspect FILE

Each ``CALL`` fails with EPERM, ``CALL=ERRNO`` with that errno (``=0``: it does nothing and returns 0),
``CALL:N`` only when its first argument is ``N``. The filter (libseccomp, through the engine's own binding)
allows everything else; it is inherited by every process the command starts and can never be removed,
and since the most restrictive action of stacked filters wins, a child that installs its own stricter
filter still meets these failures. Blocking ``seccomp`` itself (and ``prctl:22``, ``PR_SET_SECCOMP``, which
libseccomp falls back to) makes the engine's own seccomp layer the one that fails; the jail's filter is
installed before that. As root no ``no_new_privs`` is needed to install it; otherwise it is set first.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.engine.child import seccomp_filter as sf  # noqa: E402

PR_SET_NO_NEW_PRIVS = 38


def rule(spec: str) -> sf.Rule:
    spec, _, code = spec.partition("=")
    name, _, first = spec.partition(":")
    number = int(code) if code.isdigit() else getattr(errno, code or "EPERM")
    args = ((0, sf.CMP_EQ, int(first), 0),) if first else ()
    return sf.Rule(name, sf.act_errno(number), args)


def main(argv: list[str]) -> None:
    specs, separator, command = argv[0], argv[1], argv[2:]
    assert separator == "--" and command, __doc__
    if os.geteuid() != 0:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    status = sf.Filter([rule(spec) for spec in specs.split(",") if spec], default=sf.ACT_ALLOW).load()
    if not status.startswith("on"):
        sys.exit(f"seccomp_jail: {status}")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
