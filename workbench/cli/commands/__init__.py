"""One module per subcommand of ``workbench``; each defines ``NAME``, ``register(subparsers)``, ``run(args)``.

A module here is a subcommand: :mod:`workbench.cli.main` finds it without a list to edit. Importing one must stay
cheap (``workbench --help`` imports them all): what a command needs to run is imported when it runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType


def _module_names() -> list[str]:
    """The modules of this package. From its folder: ``pkgutil``'s folder walk imports :mod:`inspect`, which
    costs a fifth of ``--help``; a frozen program keeps its modules in an archive that only ``pkgutil`` reads."""
    if getattr(sys, "frozen", False):
        import pkgutil

        return [info.name for info in pkgutil.iter_modules(__path__)]
    names = (name for folder in __path__ for name in os.listdir(folder))
    return [name.removesuffix(".py") for name in names if name.endswith(".py") and name != "__init__.py"]


def command_names() -> list[str]:
    """The subcommands' names without importing them: a module's ``NAME`` is its file name with ``-`` for ``_``
    (``tests/test_startup.py`` holds every module to it)."""
    return sorted(name.replace("_", "-") for name in _module_names() if not name.startswith("_"))


def load(name: str) -> ModuleType:
    """The module of subcommand ``name`` (one of :func:`command_names`)."""
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
