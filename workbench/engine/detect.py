"""Signature detection: every format is tried, every match is listed, none is trusted alone."""

from __future__ import annotations

from .formats import BY_NAME, FORMATS, Format
from .reader import BudgetExceeded, Reader


def detect(reader: Reader) -> list[str]:
    """Every format whose signature matches, most specific first."""
    matches: list[tuple[int, str]] = []
    for fmt in FORMATS:
        try:
            name = fmt.probe(reader)
        except (BudgetExceeded, ValueError):
            name = None
        if name:
            matches.append((fmt.priority, name))
    return [name for _, name in sorted(matches, key=lambda m: (-m[0], m[1]))]


def image_formats(matches: list[str]) -> list[str]:
    """The matches that can be an image's format (not partition layouts)."""
    return [m for m in matches if not BY_NAME[m].layout]


def primary_format(matches: list[str], declared: str | None, reader: Reader | None = None) -> str:
    """The format the image is read as: the declared one when its signature is there (or when the
    consumer opens the file as the declared format without one), else the best."""
    candidates = image_formats(matches)
    if declared in candidates:
        return declared
    opens = BY_NAME[declared].opens_when_declared if declared in BY_NAME else None
    if declared and opens is not None and reader is not None and opens(reader):
        return declared
    return candidates[0] if candidates else "raw"


def compatible(declared: str, primary: str, matches: list[str]) -> bool:
    """Whether reading the image as ``declared`` agrees with what its bytes say."""
    if declared == primary:
        return True
    fmt: Format | None = BY_NAME.get(primary)
    return declared == "raw" and fmt is not None and fmt.raw_compatible


def ambiguity(matches: list[str], primary: str) -> str | None:
    """How suspicious it is that several signatures match.

    ``None``: one format (with at most the guest's own partition table); ``legitimate``: a known
    hybrid such as an ISO with an MBR/GPT; ``suspicious``: anything else, a possible polyglot.
    """
    others = [m for m in image_formats(matches) if m != primary]
    if others:
        return "suspicious"
    fmt = BY_NAME.get(primary)
    if len(image_formats(matches)) == len(matches) or (fmt is not None and fmt.guest_data_at_zero):
        return None
    return "legitimate" if fmt is not None and fmt.hybrid else "suspicious"
