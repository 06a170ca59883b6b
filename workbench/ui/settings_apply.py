"""Settings taking effect: stored, the theme set, and what the new policy or folders change inspected again."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from PySide6.QtWidgets import QApplication

from ..policy import settings as settings_mod
from . import theme
from .qtmodels.image_list_model import Entry
from .session import Session


def save(settings: settings_mod.Settings, notify: Callable[[str], None]) -> None:
    try:
        settings_mod.save(settings)
    except OSError as exc:
        notify(f"Settings not saved: {exc}")


def apply_theme(choice: str) -> str:
    """Use theme ``choice`` now; returns the one resolved (``light`` or ``dark``)."""
    return theme.apply(cast(QApplication, QApplication.instance()), choice)


def apply(old: settings_mod.Settings, new: settings_mod.Settings, session: Session, entries: list[Entry]) -> None:
    """Hand ``new`` to the session; images are inspected again when the policy changed, configuration files
    audited again when the allowed folders (their image folders) changed. Budgets apply to the next guest
    view or deep check asked for."""
    session.policy = new.policy
    if new.policy() != old.policy():
        session.submit([entry for entry in entries if not entry.audit])
    if new.allowed_roots != old.allowed_roots:
        for entry in entries:
            if entry.audit:
                session.audit(entry)
