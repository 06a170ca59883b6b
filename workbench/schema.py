"""The child/parent contract, written once: the report's shape, its orders and its caps.

Both sides import this module (stdlib only, no import of the package's other modules): the engine child
builds and fits its report to these names, the parent validates the reply against the same names, and
every place that ranks severities or verdicts asks these enums instead of restating the order.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms of each engine child's start)
if TYPE_CHECKING:
    from typing import Any, Self, TypedDict

SCHEMA = "workbench-report/1"

# Caps of the reply (the engine fits its report to them, the parent's validator checks them).
MAX_STRING = 4096  # characters of any string in a report (image text, details, finding details)
MAX_LIST = 1024  # items of a list (references, extents, snapshots, findings) and keys of an object
MAX_FIELDS = 20_000  # nodes of the field tree
MAX_DEPTH = 32  # levels of the field tree
MAX_INT = 1 << 64  # integers lie strictly between -MAX_INT and MAX_INT
REGION_BYTES = 256 << 10  # bytes of hex, all regions together, offered to the hex view
MAX_REGIONS = 1024  # separate regions offered to the hex view
HEADER_BYTES = 64 << 10  # bytes of the file's first region shown as its header
REPLY_CAP = 16 << 20  # bytes of JSON the parent reads from a child before it kills it
DEFAULT_GUEST_BUDGET = 4 << 20  # guest bytes the guest view reads at most, unless the request says otherwise
MAX_GUEST_BUDGET = 64 << 20  # guest bytes one inspection may read (``--guest-budget``; the engine caches them)
DEFAULT_DEEP_BUDGET = 64 << 20  # metadata bytes deep inspection reads at most (``--deep-budget``, settings)
MAX_DEEP_BUDGET = 1 << 30  # metadata bytes one deep inspection may read
MAX_MAP_RUNS = 4096  # runs of ``deep.map`` and of ``deep.file_map`` (merged first; a cut is a finding)
GUEST_DEPTH = 12  # levels of nested objects and lists in the report value ``guest``
MAX_BATCH = 64  # images one engine child may take in turn, with ``--isolation batch:N`` only (docs/sandbox.md)
REPLY_BUDGET = REPLY_CAP // 2  # what the engine aims below, leaving room for escaping and the sandbox table

# Caps of the sandboxed child (set by the child on Linux and macOS, by the parent's job object on Windows).
ADDRESS_SPACE = 1 << 30  # 1 GiB of memory: the interpreter plus a bounded parse
CPU_SECONDS = 10  # CPU time of one inspection
DEEP_CPU_SECONDS = 60  # CPU time of one inspection with ``--deep`` (its walk is bounded by the deep budget)
DEEP_TIMEOUT = 120.0  # seconds the parent waits for an inspection with ``--deep`` unless told otherwise


_ORDERS: dict[type, tuple[dict[str, int], tuple[StrEnum, ...]]] = {}  # see _Ordered._order


class _Ordered(StrEnum):
    """A string enum whose members compare by their declared order, not alphabetically.

    Plain strings compare as the member they name, so ``Severity.INFO < "warning"`` holds.
    """

    @classmethod
    def _order(cls) -> tuple[dict[str, int], tuple[Self, ...]]:
        """Each member's value -> its rank, and the members in order (made once: a batch ranks every finding)."""
        order = _ORDERS.get(cls)
        if order is None:
            members = tuple(cls)
            order = _ORDERS[cls] = ({member.value: rank for rank, member in enumerate(members)}, members)
        return order  # type: ignore[return-value]

    @property
    def rank(self) -> int:
        return self._order()[0][self.value]

    @classmethod
    def worst(cls, values: Iterable[str], default: Self) -> Self:
        """The highest of ``values`` (each a member's value), or ``default`` when there is none."""
        ranks, members = cls._order()
        top = -1
        for value in values:
            rank = ranks.get(value)
            if rank is None:
                cls(value)  # not a member's value: the enum's own ValueError
            elif rank > top:
                top = rank
        return default if top < 0 else members[top]

    def _other(self, other: object) -> int:
        if not isinstance(other, str):
            raise TypeError(f"cannot compare {type(self).__name__} with {type(other).__name__}")
        return type(self)(other).rank

    def __lt__(self, other: object) -> bool:
        return self.rank < self._other(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= self._other(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > self._other(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= self._other(other)


class Severity(_Ordered):
    """A finding's severity, least to most severe."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Verdict(_Ordered):
    """A report's verdict, best to worst: ``failed`` (could not inspect) ranks above every judgement."""

    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"
    FAILED = "failed"


SEVERITIES_WORST_FIRST = tuple(reversed(Severity))  # critical, warning, info: how findings are listed


def most_severe_first(severity: str) -> int:
    """Sort key of a severity: critical, then warning, then info, then anything unknown."""
    rank = Severity._order()[0].get(severity)
    return 1 if rank is None else -rank


VERDICTS_SHOWN = (Verdict.REJECT, Verdict.REVIEW, Verdict.ACCEPT, Verdict.FAILED)  # the order counts are listed in


if TYPE_CHECKING:  # the report's shape for the type checker; at run time each of these names is dict

    class Finding(TypedDict, total=False):
        id: str
        severity: str
        title: str
        detail: str
        recommendation: str
        offset: int | None
        check: str | None  # the named check of a ``malformed`` finding (docs/formats.md)

    class Reference(TypedDict, total=False):
        role: str
        name: str
        kind: str
        name_bytes: str
        # what some formats add (engine/inspection.py ``reference(**extra)``)
        format: str | None  # a backing file's declared format
        raw: bool  # qcow2 data file: the raw external data bit
        key: str  # vhdx parent locator key
        platform: str  # vpc parent locator platform code
        parent_uuid: str  # vpc parent named by its UUID
        type: str  # vmdk extent type
        access: str  # vmdk extent access
        location: str  # vmdk extent: where the name was found

    class MapRun(TypedDict, total=False):
        """One run of ``deep.map``, in the shape of ``qemu-img map --output=json`` (plus ``compressed``)."""

        start: int
        length: int
        present: bool
        zero: bool
        data: bool
        compressed: bool
        offset: int  # file offset, only for data stored uncompressed in this file
        invalid: bool  # ours: the table entry cannot be followed (past the file, reserved bits)

    class FileRun(TypedDict, total=False):
        """One run of ``deep.file_map``: what occupies ``[offset, offset + length)`` of the file."""

        offset: int
        length: int
        kind: str  # header, table, data, compressed, free, overlap, outside
        name: str  # the structure (``L2 table 3``, ``refcount block 0``) for tables

    class Deep(TypedDict, total=False):
        """Report key ``deep`` (only with ``--deep``); ``unavailable`` alone when the format has no deep reader."""

        unavailable: str
        map: list[MapRun]
        file_map: list[FileRun]
        allocated_virtual: int  # guest bytes the image really holds (data, compressed)
        # the counters of ``qemu-img check --output=json`` under its names: total-clusters, allocated-clusters,
        # fragmented-clusters, compressed-clusters, image-end-offset, leaks, corruptions, check-errors
        check: dict[str, int]
        budget: int
        bytes_read: int
        complete: bool  # False when the budget or a cap stopped the walk (a finding says what was not checked)

    class Report(TypedDict, total=False):
        """The reply's keys (docs/architecture.md "Report keys"); a failed report has ``error`` and few others."""

        schema: str
        path: str
        declared_format: str | None
        declared_source: str
        format: str | None
        format_matches: list[str]
        virtual_size: int | None
        file_size: int | None
        allocated_size: int | None
        cluster_size: int | None
        size_ratio: float | None
        encrypted: bool
        encryption: dict[str, Any] | None
        backing: dict[str, Any] | None
        data_file: dict[str, Any] | None
        extents: list[dict[str, Any]]
        references: list[Reference]
        dirty: bool | None
        corrupt: bool | None
        snapshots: list[dict[str, Any]]
        details: dict[str, Any]
        fields: list[dict[str, Any]]
        findings: list[Finding]
        verdict: str
        bytes_read: int
        read_budget: int
        elapsed_ms: int
        sandbox: dict[str, str]
        header_bytes: dict[str, Any] | None
        byte_regions: list[dict[str, Any]]
        guest: dict[str, Any]
        deep: Deep
        error: str

    # A report from code that still holds it as a plain dict (the window, the ``inspect`` command): the parent's
    # functions that take reports from there as well accept either, and mypy still checks every key they index
    # against Report (it checks each member of a union).
    ReportLike = Report | dict[str, Any]
else:
    Finding = Reference = MapRun = FileRun = Deep = Report = ReportLike = dict
