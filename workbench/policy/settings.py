"""User settings, one JSON file in the platformdirs config folder; bad files fall back to defaults.

platformdirs and logging are imported when settings are read or a problem is logged, not with this module.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..schema import DEFAULT_DEEP_BUDGET, DEFAULT_GUEST_BUDGET, MAX_DEEP_BUDGET, MAX_GUEST_BUDGET
from .policy import DEFAULT_MAX_VIRTUAL_SIZE, MAX_SIZE, Policy, default_required_layers, parse_size

APP = "workbench"
MAX_RECENT = 10
THEMES = ("system", "light", "dark")
SIZE_LIMITS = {"max_virtual_size": MAX_SIZE, "guest_budget": MAX_GUEST_BUDGET, "deep_budget": MAX_DEEP_BUDGET}


def config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def _warn(message: str, *args: object) -> None:
    import logging

    logging.getLogger(__name__).warning(message, *args)


@dataclass
class Settings:
    max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE
    allowed_formats: list[str] | None = None
    required_layers: list[str] = field(default_factory=default_required_layers)
    allowed_roots: list[str] = field(default_factory=list)
    theme: str = "system"
    guest_budget: int = DEFAULT_GUEST_BUDGET  # guest bytes the window's Guest tab reads at most
    deep_budget: int = DEFAULT_DEEP_BUDGET  # metadata bytes the window's Deep check reads at most
    recent_files: list[str] = field(default_factory=list)  # local paths, and remote URLs redacted
    endpoint_url: str = ""  # File > Open URL's S3 endpoint ("": AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)

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
    for spec in fields(Settings):
        value = raw.get(spec.name, getattr(defaults, spec.name))
        expected = type(getattr(defaults, spec.name))
        if spec.name == "allowed_formats" and value is not None and not isinstance(value, list):
            value = None
        elif spec.name in SIZE_LIMITS:
            value = _size(spec.name, value, getattr(defaults, spec.name))
        elif spec.name != "allowed_formats" and not isinstance(value, expected):
            _warn("settings: %s has the wrong type, using the default", spec.name)
            value = getattr(defaults, spec.name)
        setattr(out, spec.name, value)
    if out.theme not in THEMES:
        out.theme = "system"
    if not all(isinstance(need, str) and need.strip("|") for need in out.required_layers):
        _warn("settings: required_layers holds a non-name, using the default")  # fail closed, not open
        out.required_layers = default_required_layers()
    return out


def load(path: Path | None = None) -> Settings:
    path = path or config_dir() / "settings.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
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
    tmp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path
