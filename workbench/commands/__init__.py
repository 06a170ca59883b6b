"""One module per subcommand of ``workbench``; each defines ``NAME``, ``register(subparsers)``, ``run(args)``.

A module here is a subcommand: :mod:`workbench.cli` finds it without a list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover() -> dict[str, ModuleType]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return found
