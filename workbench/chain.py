"""Backing chains: follow an image's parents one by one, only where the user allowed, each in its own child.

Parent-side only: nothing here reads image bytes. Each link is inspected by :func:`workbench.inspector.inspect`
(its own sandboxed child; a parent is opened through its folders' descriptors from the allowed folder down, each
with O_NOFOLLOW, and must be the file that was checked); this module decides, from the name the previous
link recorded, whether and where to go next. The rules are in ``docs/chains.md``:

- network and pseudo-protocol names (``nbd:``, ``json:``, any ``prefix:`` qemu reads as a protocol) and
  Windows paths are refused from the string alone, without a single filesystem call;
- VHD/VHDX parents are followed only through a relative locator;
- a relative name is relative to the folder of the image that records it (qemu's rule); symbolic links are
  resolved component by component, and the walk stops, without touching the path, as soon as it leaves the
  allowed folders (so an escaping name or symlink target is never opened, statted or even looked up);
- loops, missing parents and chains deeper than ``max_depth`` end the chain with a finding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # the engine client and the inspector are imported on first use: the CLI's help needs neither
    from .host.runner import Runner
    from .inspector import Request

DEFAULT_MAX_DEPTH = 16
MAX_SYMLINKS = 40  # what Linux allows in one path lookup
_WINDOWS = re.compile(r"^[A-Za-z]:|\\")  # a drive letter, or backslashes (UNC names start with two)


class End(NamedTuple):
    """Why the chain stops after its last link; ``finding`` is the id added to that link, if any."""

    reason: str
    detail: str
    finding: str | None = None
    name: str | None = None
    resolved: str | None = None


class Parent(NamedTuple):
    """The next link: the name it is recorded as, where that resolved inside the roots, and how to read it."""

    name: str
    path: str
    declared: str
    identity: tuple[int, int]


class TooManyLinks(Exception):
    """More symbolic links in one name than the kernel would follow (a loop, most likely)."""


def allowed_roots(image: str, extra: Iterable[str] = ()) -> list[str]:
    """The image's own folder and the extra folders, symbolic links resolved (these names are the user's)."""
    folders = [os.path.dirname(os.path.abspath(image)), *extra]
    return list(dict.fromkeys(os.path.realpath(folder) for folder in folders))


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve(name: str, folder: str, roots: Sequence[str]) -> str | None:
    """Where ``name`` leads from the resolved ``folder``, every symbolic link followed; None once it leaves ``roots``.

    Like :func:`os.path.realpath`, but a path component is looked at (one ``readlink``) only when it lies
    inside a root. Roots and the folders above them are real directories already (roots are resolved), so
    they need no look; any other component ends the walk before a system call touches it.
    """
    path = "/" if name.startswith("/") else folder
    pending = name.split("/")[::-1]
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            path = os.path.dirname(path)  # ``path`` is resolved, so its parent is what ``..`` means
            continue
        candidate = os.path.join(path, part)
        if not any(_within(candidate, root) for root in roots):
            if not any(_within(root, candidate) for root in roots):
                return None
            path = candidate
            continue
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link, or not there: the final stat says which
            path = candidate
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise TooManyLinks
        if target.startswith("/"):
            path = "/"
        pending.extend(target.split("/")[::-1])
    return path if any(_within(path, root) for root in roots) else None


def _relative_locators() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The formats whose parents are followed only through a relative locator (the formats declare it)."""
    from .engine.formats import BY_NAME

    return {name: fmt.relative_locator for name, fmt in BY_NAME.items() if fmt.relative_locator}


def _relative_locator(link: dict[str, Any]) -> str | None:
    """A VHD/VHDX link's first relative parent locator (as recorded, with backslashes), or None."""
    from .engine.inspection import path_has_protocol

    key, values = _relative_locators()[link["format"]]
    for ref in link.get("references") or []:
        name = ref.get("name")
        if ref.get("role") == "parent locator" and ref.get(key) in values and isinstance(name, str):
            posix = name.replace("\\", "/")
            if posix and not posix.startswith("/") and not path_has_protocol(posix) and "\0" not in posix:
                return name
    return None


def _followable_name(link: dict[str, Any]) -> tuple[str, str] | End:
    """The name to follow as recorded and as a file name, or why there is none; from the strings alone."""
    recorded = str(link["backing"].get("filename") or "")
    if link["backing"].get("kind") == "uuid":
        detail = f"parent named only by UUID {recorded!r}: the workbench does not search for it"
        return End("uuid", detail, "backing-missing", recorded)
    if link["format"] in _relative_locators():
        locator = _relative_locator(link)
        if locator is None:
            detail = f"parent recorded as {recorded!r}: VHD/VHDX parents are followed only through a relative locator"
            return End("windows-path", detail, "backing-outside-roots", recorded)
        return locator, locator.replace("\\", "/")
    from .engine.inspection import path_has_protocol, reference_kind

    kind = reference_kind(recorded)
    if kind != "path":
        return End("network", f"not followed: {recorded!r} is a {kind} name", "backing-network", recorded)
    if _WINDOWS.search(recorded):
        return End("windows-path", f"not followed: {recorded!r} is a Windows path", "backing-outside-roots", recorded)
    if path_has_protocol(recorded):
        detail = f"not followed: qemu reads {recorded!r} as protocol {recorded.split(':', 1)[0]!r}"
        return End("network", detail, "backing-network", recorded)
    if not recorded or "\0" in recorded:
        return End("missing", f"no file can have the name {recorded!r}", "backing-missing", recorded)
    return recorded, recorded


def next_link(
    link: dict[str, Any], folder: str, roots: Sequence[str], seen: dict[tuple[int, int], int]
) -> Parent | End:
    """The parent of ``link`` (whose file lies in the resolved ``folder``) to inspect next, or why the chain ends."""
    if link["verdict"] == "failed":
        return End("failed", f"could not be inspected: {link.get('error', '')}")
    backing = link.get("backing")
    if not backing:
        return End("base", "no backing file: this is the base of the chain")
    declared = link.get("declared_format")
    if declared and link["format"] != declared:
        detail = f"not followed: declared {declared!r} but read as {link['format']!r}; that format has no parent"
        return End("format-mismatch", detail, None, str(backing.get("filename")))
    names = _followable_name(link)
    if isinstance(names, End):
        return names
    recorded, name = names
    try:
        path = resolve(name, folder, roots)
    except TooManyLinks:
        return End("missing", f"{recorded!r}: more than {MAX_SYMLINKS} symbolic links", "backing-missing", recorded)
    if path is None:
        detail = f"not followed: {recorded!r} leads outside the allowed folders ({', '.join(roots)})"
        return End("outside-roots", detail, "backing-outside-roots", recorded)
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        return End("missing", f"{recorded!r} ({path}): {exc.strerror}", "backing-missing", recorded, path)
    identity = (st.st_dev, st.st_ino)
    if identity in seen:
        detail = f"{recorded!r} ({path}) is link {seen[identity] + 1} of this chain again"
        return End("loop", detail, "backing-loop", recorded, path)
    from .inspector import DETECT

    fmt = backing.get("format")
    return Parent(recorded, path, fmt if isinstance(fmt, str) and fmt else DETECT, identity)


def _add(link: dict[str, Any], finding: str, detail: str) -> None:
    """Add a finding to an inspected link (unless it already has one of that id) and update its verdict."""
    if any(f["id"] == finding for f in link["findings"]):
        return
    from .engine.findings import make
    from .policy.policy import verdict_of

    link["findings"].append(make(finding, detail).to_json())
    link["verdict"] = verdict_of(link["findings"])


def _below_root(path: str, roots: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The innermost allowed folder holding the resolved ``path``, and the names below it."""
    root = max((r for r in roots if _within(path, r)), key=len)
    return root, tuple(os.path.relpath(path, root).split(os.sep))


def _identity(path: str, follow_symlinks: bool) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _mark(link: dict[str, Any], named_as: str | None) -> dict[str, Any]:
    """Say how the link was reached: the name that led to it, and whether its format was probed."""
    link["named_as"] = named_as
    link["probed"] = link.get("declared_format") is None
    if named_as is not None and not link["probed"]:
        link["declared_source"] = "backing record"  # the format the previous link recorded for its parent
    return link


async def follow(
    request: Request, roots: Iterable[str] = (), max_depth: int = DEFAULT_MAX_DEPTH, runner: Runner | None = None
) -> dict[str, Any]:
    """The image's report with its backing chain; never raises for bad input.

    Added keys: ``chain`` (every inspected link's report, the image first, then its parents), ``chain_end``
    (why and where the chain stopped) and ``chain_verdict`` (the worst link's verdict). ``roots`` are the
    folders allowed besides the image's own; ``runner`` makes each link's child (a fresh process by default).
    """
    from .host.runner import FRESH, Walked
    from .inspector import DETECT, inspect
    from .policy.policy import worst
    from .records import replace

    allowed = allowed_roots(request.path, roots)
    runner = runner or FRESH
    link = _mark(await inspect(request, runner), None)
    chain = [link]
    seen: dict[tuple[int, int], int] = {}
    identity = _identity(request.path, request.follow_symlinks)
    folder = allowed[0]  # the image's own folder, resolved
    while True:
        if identity is not None:
            seen[identity] = len(chain) - 1
        step = next_link(link, folder, allowed, seen)
        if isinstance(step, Parent) and len(chain) >= max_depth:
            detail = f"chain stopped after {max_depth} links; {step.name!r} was not inspected"
            step = End("depth", detail, "backing-depth", step.name, step.path)
        if isinstance(step, End):
            break
        if step.declared == DETECT:
            _add(link, "backing-format-unspecified", f"backing file {step.name!r} has no recorded format: probed")
        walked = Walked(*_below_root(step.path, allowed), step.identity)  # opened as it was checked, or refused
        parent = replace(request, path=step.path, declared=step.declared, follow_symlinks=False, walked=walked)
        link = _mark(await inspect(parent, runner), step.name)
        chain.append(link)
        identity, folder = step.identity, os.path.dirname(step.path)
    if step.finding:
        _add(link, step.finding, step.detail)
    return {
        **chain[0],
        "chain": chain,
        "chain_end": step._asdict(),
        "chain_verdict": worst([item["verdict"] for item in chain]),
    }
