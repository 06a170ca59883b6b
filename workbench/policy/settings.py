"""User settings, one JSON file in the platformdirs config folder; bad files fall back to defaults.

Reading them imports neither platformdirs nor pathlib on Linux (:func:`config_folder`); logging is imported
when a problem is logged.
"""

from __future__ import annotations

import json
import os
import sys

from ..records import Record
from ..schema import DEFAULT_DEEP_BUDGET, DEFAULT_GUEST_BUDGET, MAX_DEEP_BUDGET, MAX_GUEST_BUDGET
from .policy import DEFAULT_MAX_VIRTUAL_SIZE, MAX_SIZE, Policy, default_required_layers, parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

APP = "workbench"
MAX_RECENT = 10
THEMES = ("system", "light", "dark")
SIZE_LIMITS = {"max_virtual_size": MAX_SIZE, "guest_budget": MAX_GUEST_BUDGET, "deep_budget": MAX_DEEP_BUDGET}


def config_folder() -> str:
    """``platformdirs.user_config_dir`` for the app. On Linux, where its rule is plain, computed here when the
    environment is one every platformdirs version reads alike (an absolute ``XDG_CONFIG_HOME``; else none, or
    a blank one, and an absolute ``HOME``); otherwise platformdirs' answer (its import with ``pathlib`` and
    ``tempfile`` costs ``workbench inspect FILE`` ~8 ms before its request)."""
    if sys.platform.startswith("linux"):
        xdg, home = os.environ.get("XDG_CONFIG_HOME", ""), os.environ.get("HOME", "")
        if os.path.isabs(xdg):
            return os.path.join(xdg, APP)
        if not xdg.strip() and os.path.isabs(home):
            return os.path.join(os.path.expanduser("~/.config"), APP)
    import platformdirs

    return platformdirs.user_config_dir(APP, appauthor=False)


def config_dir() -> Path:
    from pathlib import Path

    return Path(config_folder())


def _warn(message: str, *args: object) -> None:
    import logging

    logging.getLogger(__name__).warning(message, *args)


class Settings(Record):
    """What the settings file holds; each list argument None is its default (``required_layers``:
    :func:`~workbench.policy.policy.default_required_layers`; the others empty)."""

    __slots__ = (
        "max_virtual_size",
        "allowed_formats",
        "required_layers",
        "allowed_roots",
        "theme",
        "guest_budget",
        "deep_budget",
        "recent_files",
        "endpoint_url",
    )

    def __init__(
        self,
        max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
        allowed_formats: list[str] | None = None,
        required_layers: list[str] | None = None,
        allowed_roots: list[str] | None = None,
        theme: str = "system",
        guest_budget: int = DEFAULT_GUEST_BUDGET,  # guest bytes the window's Guest tab reads at most
        deep_budget: int = DEFAULT_DEEP_BUDGET,  # metadata bytes the window's Deep check reads at most
        recent_files: list[str] | None = None,  # local paths, and remote URLs redacted
        endpoint_url: str = "",  # File > Open URL's S3 endpoint ("": AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)
    ) -> None:
        self.max_virtual_size = max_virtual_size
        self.allowed_formats = allowed_formats
        self.required_layers = default_required_layers() if required_layers is None else required_layers
        self.allowed_roots: list[str] = [] if allowed_roots is None else allowed_roots
        self.theme = theme
        self.guest_budget = guest_budget
        self.deep_budget = deep_budget
        self.recent_files: list[str] = [] if recent_files is None else recent_files
        self.endpoint_url = endpoint_url

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, as the settings file holds them."""
        return {name: getattr(self, name) for name in self.__slots__}

    def policy(self) -> Policy:
        return Policy(self.max_virtual_size, self.allowed_formats, list(self.required_layers))

    def remember(self, path: str) -> None:
        self.recent_files = [path, *[p for p in self.recent_files if p != path]][:MAX_RECENT]


def _size(name: str, value: Any, default: int) -> int:
    """A size from the file: an exact JSON integer or a size text (``"1.5T"``), at most ``SIZE_LIMITS[name]``
    (budgets above 0); never a float."""
    try:
        if isinstance(value, str):
            value = parse_size(value)
        least = 0 if name == "max_virtual_size" else 1
        if isinstance(value, int) and not isinstance(value, bool) and least <= value <= SIZE_LIMITS[name]:
            return value
        raise ValueError(f"{type(value).__name__} {str(value)[:40]!r} is not a whole number of bytes in range")
    except ValueError as exc:
        _warn("settings: %s: %s; using the default", name, exc)
        return default


def _checked(raw: dict[str, Any]) -> Settings:
    defaults = Settings()
    out = Settings()
    for name in Settings.__slots__:
        value = raw.get(name, getattr(defaults, name))
        expected = type(getattr(defaults, name))
        if name == "allowed_formats" and value is not None and not isinstance(value, list):
            value = None
        elif name in SIZE_LIMITS:
            value = _size(name, value, getattr(defaults, name))
        elif name != "allowed_formats" and not isinstance(value, expected):
            _warn("settings: %s has the wrong type, using the default", name)
            value = getattr(defaults, name)
        setattr(out, name, value)
    if out.theme not in THEMES:
        out.theme = "system"
    if not all(isinstance(need, str) and need.strip("|") for need in out.required_layers):
        _warn("settings: required_layers holds a non-name, using the default")  # fail closed, not open
        out.required_layers = default_required_layers()
    return out


def load(path: Path | str | None = None) -> Settings:
    path = path or os.path.join(config_folder(), "settings.json")
    try:
        with open(path, encoding="utf-8") as file:
            raw = json.loads(file.read())
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as exc:
        _warn("settings: cannot read %s (%s); using defaults", path, exc)
        return Settings()
    return _checked(raw) if isinstance(raw, dict) else Settings()


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write atomically (temporary file, then rename) so a crash never leaves half a file."""
    path = path or config_dir() / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings.as_dict(), indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path
