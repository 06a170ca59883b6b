"""What every engine report must satisfy whatever the input: one list of invariants for the hypothesis suite
(tests/test_fuzz.py) and the coverage-guided target (fuzz/atheris_engine.py).

Work is bounded without a clock: bytes read stay within the read budget, the field tree within its node
cap, and the number of function calls (Python and C, counted by a profile hook) within :data:`CALL_BUDGET`,
about a thousand times what any seed needs. An input that loops forever is stopped by that count and
reported, instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from workbench.engine import report
from workbench.engine.limits import MAX_DEPTH, MAX_FIELDS, MAX_LIST, MAX_STRING, REPLY_CAP
from workbench.host.validate import validate
from workbench.policy import policy
from workbench.render.text import summary

CALL_BUDGET = 2_000_000
DISPLAY_KEYS = ("byte_regions", "header_bytes")  # hex of the bytes read, capped by the reader, not text


class CallBudgetExceeded(BaseException):
    """Raised from the profile hook; a BaseException so that the report builder's own handler lets it pass."""


class Image:
    """One reusable in-memory file (memfd; a temporary file elsewhere) that each input is written into."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("fuzz-image") if hasattr(os, "memfd_create") else _temporary_fd()

    def load(self, data: bytes) -> int:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        return self.fd

    def close(self) -> None:
        os.close(self.fd)


def _temporary_fd() -> int:
    fd, name = tempfile.mkstemp(prefix="fuzz-image-")
    os.unlink(name)
    return fd


@contextlib.contextmanager
def call_budget(limit: int = CALL_BUDGET) -> Iterator[list[int]]:
    """Count every call and C call made inside the block; past ``limit``, stop it with CallBudgetExceeded."""
    count = [0]

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            count[0] += 1
            if count[0] > limit:
                sys.setprofile(None)
                raise CallBudgetExceeded(f"more than {limit} calls: the engine does unbounded work on this input")

    sys.setprofile(hook)
    try:
        yield count
    finally:
        sys.setprofile(None)


def inspect(image: Image, data: bytes, declared: str | None) -> tuple[dict[str, Any], int]:
    """The engine's report on ``data`` read as ``declared`` and the calls it took, within the call budget."""
    fd = image.load(data)
    with call_budget() as calls:
        rep = report.build(fd, "fuzz-input", declared)
    return rep, calls[0]


def _walk_fields(fields: list[dict[str, Any]]) -> tuple[int, int]:
    """Node count and depth of a field tree, iteratively."""
    count, deepest = 0, 0
    stack = [(node, 1) for node in fields]
    while stack:
        node, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.get("children", []))
    return count, deepest


def _long_strings(value: Any, path: str = "") -> Iterator[str]:
    """Where a string longer than MAX_STRING sits in the report (outside the hex display regions)."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and len(item) > MAX_STRING:
            yield f"{where} ({len(item)} characters)"
        elif isinstance(item, dict):
            stack.extend((v, f"{where}.{k}") for k, v in item.items() if k not in DISPLAY_KEYS)
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))


def check(rep: Any, image_size: int) -> None:
    """Raise AssertionError naming the first broken invariant of ``rep`` (the report of an image this long)."""
    assert isinstance(rep, dict) and rep.get("schema") == report.SCHEMA, "the engine returned no report"
    errors = [f["detail"] for f in rep["findings"] if "internal parser error" in f["detail"]]
    assert not errors, f"parser crashed: {errors}"
    assert rep["bytes_read"] <= rep["read_budget"], f"read {rep['bytes_read']} bytes, budget {rep['read_budget']}"
    assert rep["file_size"] == image_size, f"file_size {rep['file_size']} for a {image_size}-byte file"
    nodes, depth = _walk_fields(rep["fields"])
    assert nodes <= MAX_FIELDS and depth <= MAX_DEPTH, f"field tree of {nodes} nodes, {depth} deep"
    for key in ("findings", "references", "extents", "snapshots"):
        assert len(rep[key]) <= MAX_LIST, f"{len(rep[key])} {key}"
    long = list(_long_strings(rep))
    assert not long, f"uncapped strings at {long[:3]}"
    encoded = json.dumps(rep, separators=(",", ":"), ensure_ascii=True)  # what the child sends
    assert len(encoded) <= REPLY_CAP, f"a {len(encoded)}-byte reply passes the parent's cap"
    received = validate(json.loads(encoded))  # raises ReplyError if the parent would refuse the reply
    received["sandbox"] = {}
    summary(policy.apply(received, policy.Policy()), verbose=True)
