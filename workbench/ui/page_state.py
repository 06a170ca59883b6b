"""What the report pages show: one state, handed to the visible page's ``show_state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..policy.policy import Policy
from .qtmodels.image_list_model import Entry


@dataclass(frozen=True)
class PageState:
    """The selected image (``None``: nothing selected) and the report shown: its own, or a chain link's."""

    entry: Entry | None
    report: dict[str, Any] | None
    link: bool  # the report is a backing chain link's, not the image's own
    policy: Policy
    roots: list[str]  # the folders backing chains may name
    following: bool  # the image's backing chain is being followed now
    loading: str | None = None  # the extra (``guest``, ``deep``) a child is reading for the image now
    progress: dict[str, Any] | None = None  # how far that child is: ``{"done", "total", "what"}``, once it said


class ReportPage(Protocol):
    def show_state(self, state: PageState) -> None: ...
