"""From one open file descriptor to a report dictionary (the engine's reply)."""

from __future__ import annotations

import os
import stat
import time

from ..schema import SCHEMA
from . import detect, fit
from .fields import Field
from .findings import CRITICAL, INFO, WARNING, Finding, make
from .formats import BY_NAME
from .inspection import Inspection
from .limits import MAX_DEPTH, MAX_FIELDS, MAX_INT, MAX_LIST, MAX_STRING
from .reader import DEFAULT_BUDGET, BudgetExceeded, Image, Progress, Reader, SourceFailed

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any

U64_MAX = MAX_INT - 1


def _sizes(image: Image) -> tuple[int, int | None]:
    """The image's size and its allocated bytes (None for a remote image: storage does not say)."""
    if not isinstance(image, int):
        return image.size, None
    st = os.fstat(image)
    if stat.S_ISBLK(st.st_mode):
        return os.lseek(image, 0, os.SEEK_END), st.st_blocks * 512  # a block device reports st_size 0
    return st.st_size, st.st_blocks * 512


def _run_parser(reader: Reader, name: str) -> Inspection:
    info = Inspection(format=name)
    try:
        BY_NAME[name].parse(reader, info)
    except SourceFailed:  # a remote range the parent could not serve: no report at all
        raise
    except BudgetExceeded as exc:  # the parse stopped short: a reference may lie in what it did not read
        info.cap(f"{name}: {exc}; the rest of the {name} metadata was not examined", exc.offset)
    except Exception as exc:  # a parser bug must become a finding, never a dead child
        info.malformed(
            "engine.parser-error",
            f"{name}: internal parser error {type(exc).__name__}: {exc} ({_raised_at(exc)})",
        )
    return info


def _raised_at(exc: BaseException) -> str:
    """``file.py:line`` of the innermost frame ``exc`` passed through (``traceback`` costs the child an import)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return "?" if tb is None else f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"


def _clamp_numbers(report: dict[str, Any], tree_plain: bool = False) -> list[str]:
    """Cap integers to what a 64-bit reader could hold; name the keys that were capped.

    Sizes computed from header fields (sectors x 512, a sum of extents) can pass 2**64; the parent
    refuses such numbers, so they are capped here (the size limit still rejects them) and reported.
    ``tree_plain``: the field tree holds nothing this could cap (``fit.field_tree`` says), so it is not walked.
    """
    capped: list[str] = []
    stack: list[tuple[Any, str]] = [(report, "")]
    while stack:
        node, where = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if tree_plain and node is report and key == "fields":
                continue
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and not -U64_MAX <= value <= U64_MAX:
                node[key] = U64_MAX if value > 0 else -U64_MAX
                if len(capped) < 16:
                    capped.append(f"{where}{key}")
            elif isinstance(value, dict | list):
                stack.append((value, f"{where}{key}."))
    return capped


def _guest(
    fd: Image, fmt: str, info: Inspection, file_size: int, budget: int, progress: Progress | None = None
) -> tuple[dict[str, Any], list[Field], list[Finding], int]:
    """The report value ``guest``, its fields and findings, and the file bytes read for it. The guest
    view reads through the format's mapping (``engine/mapping/``) with its own :class:`Reader` and the
    guest budget, apart from the header budget. (The guest view and deep inspection are imported when asked
    for: a hardened child imports them first, :func:`workbench.engine.child.worker.preload`.)"""
    from .guest import inspect_guest
    from .mapping import MappedGuestDisk, Unmappable, mapping_for

    reader = Reader(fd, file_size, budget)
    try:
        disk = MappedGuestDisk(mapping_for(fmt, reader, info), reader)
    except (Unmappable, BudgetExceeded) as exc:
        return {"unavailable": str(exc)[:MAX_STRING]}, [], [], reader.bytes_read
    value, fields, findings = inspect_guest(disk, budget, progress)
    node = Field("guest", 0, 0, None, "the guest's partitions, volumes and filesystems (guest offsets)", fields)
    return value, [node], findings, reader.bytes_read


def _mismatch_and_ambiguity(info: Inspection, matches: list[str], primary: str, declared: str | None) -> None:
    if declared and not detect.compatible(declared, primary, matches):
        found = ", ".join(matches) or "no signature (raw)"
        info.add("format-mismatch", f"declared {declared!r} but the bytes say {found}", 0)
    kind = detect.ambiguity(matches, primary)
    if kind:
        severity = WARNING if kind == "legitimate" else None
        what = "a known hybrid layout" if kind == "legitimate" else "a possible polyglot"
        info.add("format-ambiguous", f"signatures of {', '.join(matches)} all match: {what}", 0, severity)


def build(
    fd: Image,
    path: str,
    declared: str | None,
    budget: int = DEFAULT_BUDGET,
    include_bytes: bool = True,
    guest_budget: int | None = None,
    deep_budget: int | None = None,
    progress: Progress | None = None,
    include_fields: bool = True,
    include_details: bool = True,
) -> dict[str, Any]:
    """Inspect the image behind ``fd`` (opened read-only by the parent, or a remote image's
    :class:`~.reader.Positional`) and return the report; with a ``guest_budget``, the guest view too (report
    key ``guest``); with a ``deep_budget``, deep inspection (report key ``deep``, telling ``progress`` how far
    it is). Without ``include_fields`` (a batch that keeps only summaries) the report's ``fields`` is empty:
    the tree is still built and cut as for the full report, so that every finding is the same either way;
    without ``include_details`` its ``details`` (the format's own values, which no summary shows) is empty."""
    started = time.monotonic()
    size, allocated = _sizes(fd)
    reader = Reader(fd, size, budget)
    matches = detect.detect(reader)
    primary = detect.primary_format(matches, declared, reader)
    info = _run_parser(reader, primary)
    if primary not in ("raw",) and BY_NAME[primary].raw_compatible and info.virtual_size is None:
        info.virtual_size = size
    fields = list(info.fields)
    findings = list(info.findings)
    for other in matches:
        if other == primary:
            continue
        extra = _run_parser(reader, other)
        fields.append(
            Field(
                f"{other} (also matches)",
                0,
                0,
                other,
                "structures of another matching signature",
                extra.fields,
            )
        )
        for finding in extra.findings:
            finding.detail = f"[{other}] {finding.detail}"
            findings.append(finding)
        info.references.extend(extra.references)
        if extra.details:
            info.details[other] = extra.details
    guest_value, guest_read = None, 0
    if guest_budget is not None:
        guest_value, guest_fields, guest_findings, guest_read = _guest(fd, primary, info, size, guest_budget, progress)
        fields.extend(guest_fields)
        findings.extend(guest_findings)
    deep_value, deep_read = None, 0
    if deep_budget is not None:
        from .deep import inspect_deep

        deep_value, deep_findings, deep_read = inspect_deep(fd, primary, info, size, deep_budget, progress)
        findings.extend(deep_findings)
    info.findings = findings
    _mismatch_and_ambiguity(info, matches, primary, declared)
    if info.encrypted:
        method = (info.encryption or {}).get("method", "unknown method")
        info.add("encrypted", f"{primary} encryption: {method}")
    else:
        info.add("unencrypted", f"{primary} image stores its data in the clear")
    if info.snapshots:
        info.add("snapshots", f"{len(info.snapshots)} internal snapshot(s)")
    tree, left, tree_odd = fit.field_tree(fields)
    if left:
        info.add(
            "report-capped",
            f"field tree: {left} nodes (with their subtrees) past {MAX_FIELDS} nodes or {MAX_DEPTH} levels left out",
        )
    virtual = info.virtual_size
    regions, header, regions_left = fit.display_regions(reader.regions() if include_bytes else [])
    if regions_left:
        info.add("report-capped", f"hex view: {regions_left} regions past {len(regions)} left out", None, INFO)
    kept, findings_left = fit.findings(info.findings)
    shown = [{**f.to_json(), "detail": f.detail[:MAX_STRING]} for f in kept]
    result = {
        "schema": SCHEMA,
        "path": path,
        "declared_format": declared,
        "format": primary,
        "format_matches": matches,
        "virtual_size": virtual,
        "file_size": size,
        "allocated_size": allocated,
        "size_ratio": round(virtual / size, 3) if virtual is not None and size else None,
        "cluster_size": info.cluster_size,
        "encrypted": info.encrypted,
        "encryption": info.encryption,
        "backing": info.backing,
        "data_file": info.data_file,
        "extents": info.extents,
        "references": info.references,
        "dirty": info.dirty,
        "corrupt": info.corrupt,
        "snapshots": info.snapshots,
        "details": info.details,
        "fields": tree,
        "findings": shown,
        "bytes_read": reader.bytes_read + guest_read + deep_read,
        "header_bytes": header,
        "byte_regions": regions,
        "read_budget": budget,
        "elapsed_ms": round((time.monotonic() - started) * 1000, 3),
    }
    if guest_value is not None:
        result["guest"] = guest_value
    if deep_value is not None:
        result["deep"] = deep_value
    capped = _clamp_numbers(result, tree_plain=not tree_odd)
    if capped:
        detail = f"values past 64 bits, shown as 2**64-1: {', '.join(capped)}"
        shown.append(make("malformed", detail, check="engine.number-past-64-bits").to_json())
    _fit(result, fields, findings_left)
    if not include_fields:
        result["fields"] = []
    if not include_details:
        result["details"] = {}
    return result


def _fit(result: dict[str, Any], fields: list[Field], findings_left: int) -> None:
    """Cut what an image made too large for the reply contract, saying so (``engine/fit.py``)."""
    references, other = fit.containers(result)
    out = result["findings"]
    if findings_left:
        what = f"{findings_left} findings left out (the most severe {len(out)} kept)"
        out.append(fit.cut_finding(what, ["findings"], WARNING))
    if references:
        out.append(fit.cut_finding(f"references past {MAX_LIST} or their names left out", references, CRITICAL))
    if other:
        out.append(fit.cut_finding(f"lists past {MAX_LIST} items or strings past {MAX_STRING} cut", other))
    fit.within_budget(result, fields)
