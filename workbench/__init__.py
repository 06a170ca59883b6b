"""Disk Image Workbench: inspect untrusted virtual disk images without trusting them.

Nothing at this level imports Qt: the engine child imports ``workbench.engine`` through here. The Python
API (``workbench.inspect_path`` and the rest of :mod:`workbench.api`, ``docs/api.md``) is imported on first
use, so ``import workbench`` and the child stay cheap.
"""

__version__ = "0.1.0"

TYPE_CHECKING = False  # not typing's: importing typing here would cost every start-up
if TYPE_CHECKING:
    from .api import (
        Result,
        inspect_path,
        inspect_path_async,
        inspect_paths,
        inspect_paths_async,
        inspect_url,
        inspect_url_async,
    )

__all__ = [
    "Result",
    "inspect_path",
    "inspect_path_async",
    "inspect_paths",
    "inspect_paths_async",
    "inspect_url",
    "inspect_url_async",
]


def __getattr__(name: str) -> object:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
