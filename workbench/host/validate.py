"""The engine's reply is untrusted data: check every key's type and cap every size before use."""

from __future__ import annotations

from ..engine.findings import CATALOGUE, CHECK_ID, INFO, make
from ..schema import (
    GUEST_DEPTH,
    HEADER_BYTES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_INT,
    MAX_LIST,
    MAX_MAP_RUNS,
    MAX_REGIONS,
    MAX_STRING,
    REGION_BYTES,
    SCHEMA,
    SEVERITIES_WORST_FIRST,
    Deep,
    Finding,
    Reference,
    Report,
)

TYPE_CHECKING = False  # no typing at run time: inspect FILE's parent
if TYPE_CHECKING:
    from typing import Any

    Region = dict[str, Any]

SEVERITIES = tuple(reversed(SEVERITIES_WORST_FIRST))


class ReplyError(ValueError):
    """The reply does not follow the report contract."""


def _int(value: Any, key: str, optional: bool = True) -> int | None:
    if type(value) is int and -MAX_INT < value < MAX_INT:  # the common case first: a batch checks many
        return value
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -MAX_INT < value < MAX_INT:
        raise ReplyError(f"{key}: expected an integer below 2**64, got {type(value).__name__}")
    return value


def _required_int(value: Any, key: str) -> int:
    return _int(value, key, optional=False) or 0  # never None: a missing value raised ReplyError


def _required_str(value: Any, key: str) -> str:
    return _str(value, key, optional=False) or ""  # never None: a missing value raised ReplyError


def _str(value: Any, key: str, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ReplyError(f"{key}: expected a string, got {type(value).__name__}")
    return value[:MAX_STRING]


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ReplyError(f"{key}: expected true or false")
    return value


def _scalar(value: Any, key: str) -> Any:
    """A JSON value kept as data: nested containers are flattened to capped text."""
    kind = type(value)  # the common cases first (a batch checks many), then any subclass as before
    if kind is str:
        return value[:MAX_STRING]
    if kind is int and -MAX_INT < value < MAX_INT:
        return value
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return _int(value, key)
    if isinstance(value, str):
        return value[:MAX_STRING]
    return _str(repr(value)[:MAX_STRING], key)


def _flat_dict(value: Any, key: str) -> dict[str, Any] | None:
    """A small dictionary of scalars, lists of scalars or small dictionaries (two levels at most)."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_LIST:
        raise ReplyError(f"{key}: expected a small object")
    out: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, list):
            out[str(name)[:200]] = [_flat_item(x, key) for x in item[:MAX_LIST]]
        elif isinstance(item, dict):
            out[str(name)[:200]] = {str(k)[:200]: _scalar(v, key) for k, v in list(item.items())[:MAX_LIST]}
        else:
            out[str(name)[:200]] = _scalar(item, key)
    return out


def _flat_item(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {str(k)[:200]: _scalar(v, key) for k, v in list(value.items())[:MAX_LIST]}
    return _scalar(value, key)


def _list_of_dicts(value: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ReplyError(f"{key}: expected a list")
    return [_flat_item(item, key) for item in value[:MAX_LIST] if isinstance(item, dict)]


def _fields(value: Any) -> list[dict[str, Any]]:
    """Validate the field tree iteratively, with a node cap and a depth cap."""
    if not isinstance(value, list):
        raise ReplyError("fields: expected a list")
    out: list[dict[str, Any]] = []
    stack: list[tuple[Any, list[dict[str, Any]], int]] = [(node, out, 1) for node in reversed(value)]
    count = 0
    while stack:
        node, sink, depth = stack.pop()
        count += 1
        if count > MAX_FIELDS or depth > MAX_DEPTH:
            raise ReplyError("fields: tree too large or too deep")
        if not isinstance(node, dict):
            raise ReplyError("fields: a node is not an object")
        item = {
            "name": _str(node.get("name"), "fields.name", optional=False),
            "offset": _int(node.get("offset"), "fields.offset", optional=False),
            "size": _int(node.get("size"), "fields.size", optional=False),
            "value": _scalar(node.get("value"), "fields.value"),
            "description": _str(node.get("description", ""), "fields.description") or "",
            "children": [],
        }
        sink.append(item)
        children = node.get("children", [])
        if not isinstance(children, list):
            raise ReplyError("fields.children: expected a list")
        stack.extend((child, item["children"], depth + 1) for child in reversed(children))
    return out


def _findings(value: Any) -> list[Finding]:
    if not isinstance(value, list):
        raise ReplyError("findings: expected a list")
    out: list[Finding] = []
    for item in value[:MAX_LIST]:
        if not isinstance(item, dict):
            raise ReplyError("findings: an item is not an object")
        finding_id = _str(item.get("id"), "findings.id", optional=False)
        severity = item.get("severity")
        if finding_id not in CATALOGUE or severity not in SEVERITIES:
            raise ReplyError(f"findings: unknown id {finding_id!r} or severity {severity!r}")
        kind = CATALOGUE[finding_id]
        out.append(
            {
                "id": finding_id,
                "severity": severity,
                "title": kind.title,
                "detail": _str(item.get("detail", ""), "findings.detail") or "",
                "recommendation": kind.recommendation,
                "offset": _int(item.get("offset"), "findings.offset"),
                "check": _check(item.get("check")),
            }
        )
    return out


def _check(value: Any) -> str | None:
    """A ``malformed`` finding's check id (``qcow2.l1-outside-file``); anything else is dropped, not fatal."""
    return value if isinstance(value, str) and len(value) <= 100 and CHECK_ID.fullmatch(value) else None


def _region(value: Any, key: str, cap: int) -> dict[str, Any]:
    """``{"offset", "hex"}``: bytes the engine read, for display only; never parsed here."""
    if not isinstance(value, dict):
        raise ReplyError(f"{key}: expected an object")
    text = value.get("hex")
    if not isinstance(text, str) or len(text) % 2 or len(text) > 2 * cap:
        raise ReplyError(f"{key}: hex missing, odd or over {cap} bytes")
    try:
        bytes.fromhex(text)
    except ValueError:
        raise ReplyError(f"{key}: not hex") from None
    return {"offset": _int(value.get("offset"), key, optional=False), "hex": text}


def _regions(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_REGIONS:
        raise ReplyError(f"byte_regions: expected a list of at most {MAX_REGIONS} regions")
    regions = [_region(item, "byte_regions", REGION_BYTES) for item in value]
    if sum(len(r["hex"]) for r in regions) > 2 * REGION_BYTES:
        raise ReplyError(f"byte_regions: more than {REGION_BYTES} bytes")
    return regions


def _left_out(detail: str) -> Finding:
    """The informational ``report-capped`` finding for a display part of the reply dropped as invalid."""
    return make("report-capped", detail[:MAX_STRING], None, INFO).as_report()


def _hex_view(reply: dict[str, Any], findings: list[Finding]) -> tuple[Region | None, list[Region]]:
    """``header_bytes`` and ``byte_regions``: display data only, so a bad one is dropped, never the report."""
    try:
        header = reply.get("header_bytes")
        header = None if header is None else _region(header, "header_bytes", HEADER_BYTES)
        return header, _regions(reply.get("byte_regions", []))
    except ReplyError as exc:
        findings.append(_left_out(f"hex view left out: {exc}"))
        return None, []


def _data(value: Any, key: str, depth: int) -> Any:
    """Nested untrusted data kept as data: objects and lists capped to MAX_LIST items, strings and keys
    capped, integers checked, nesting at most GUEST_DEPTH levels (the recursion stops there)."""
    if isinstance(value, dict | list) and depth > GUEST_DEPTH:
        raise ReplyError(f"{key}: nested deeper than {GUEST_DEPTH} levels")
    if isinstance(value, dict):
        return {str(name)[:200]: _data(item, key, depth + 1) for name, item in list(value.items())[:MAX_LIST]}
    if isinstance(value, list):
        return [_data(item, key, depth + 1) for item in value[:MAX_LIST]]
    return _scalar(value, key)


def _guest(reply: dict[str, Any], findings: list[Finding]) -> dict[str, Any] | None:
    """``guest`` (only when asked for): a bad one is left out with a finding, never the report."""
    value = reply.get("guest")
    if value is None:
        return None
    try:
        if not isinstance(value, dict):
            raise ReplyError("guest: expected an object")
        return dict(_data(value, "guest", 1))
    except ReplyError as exc:
        findings.append(_left_out(f"guest view left out: {exc}"))
        return {"unavailable": "the engine's guest view did not follow the report contract"}


_MAP_FLAGS = ("present", "zero", "data", "compressed")
_FILE_KINDS = frozenset({"free", "header", "table", "data", "compressed", "overlap"})
_DEEP_NUMBERS = ("allocated_virtual", "budget", "bytes_read")


def _runs(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > MAX_MAP_RUNS or not all(isinstance(v, dict) for v in value):
        raise ReplyError(f"{key}: expected a list of at most {MAX_MAP_RUNS} objects")
    return value


def _map_run(run: dict[str, Any]) -> dict[str, Any]:
    out = {"start": _int(run.get("start"), "deep.map", False), "length": _int(run.get("length"), "deep.map", False)}
    out.update({flag: _bool(run.get(flag), "deep.map") for flag in _MAP_FLAGS})
    if "offset" in run:
        out["offset"] = _int(run["offset"], "deep.map", False)
    if run.get("invalid") is True:
        out["invalid"] = True
    return out


def _file_run(run: dict[str, Any]) -> dict[str, Any]:
    kind = run.get("kind")
    if kind not in _FILE_KINDS:
        raise ReplyError("deep.file_map: unknown kind")
    out = {
        "offset": _int(run.get("offset"), "deep.file_map", False),
        "length": _int(run.get("length"), "deep.file_map", False),
        "kind": kind,
    }
    if "name" in run:
        out["name"] = (_str(run["name"], "deep.file_map", False) or "")[:200]
    return out


def _deep_value(value: Any) -> Deep:
    if not isinstance(value, dict):
        raise ReplyError("deep: expected an object")
    if "unavailable" in value:
        return {"unavailable": _str(value["unavailable"], "deep.unavailable", False) or ""}
    check = value.get("check")
    if not isinstance(check, dict) or len(check) > 32:
        raise ReplyError("deep.check: expected an object of at most 32 counters")
    out: Any = {  # checked key by key below, hence a Deep
        "map": [_map_run(run) for run in _runs(value.get("map"), "deep.map")],
        "file_map": [_file_run(run) for run in _runs(value.get("file_map"), "deep.file_map")],
        "check": {str(name)[:64]: _int(count, "deep.check", False) for name, count in check.items()},
        "complete": _bool(value.get("complete"), "deep.complete"),
    }
    out.update({name: _int(value.get(name), f"deep.{name}", False) for name in _DEEP_NUMBERS})
    deep: Deep = out
    return deep


def _deep(reply: dict[str, Any], findings: list[Finding]) -> Deep | None:
    """``deep`` (only with ``--deep``): a bad one is left out with a finding, never the report."""
    value = reply.get("deep")
    if value is None:
        return None
    try:
        return _deep_value(value)
    except ReplyError as exc:
        findings.append(_left_out(f"deep inspection left out: {exc}"))
        return {"unavailable": "the engine's deep inspection did not follow the report contract"}


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list):
        raise ReplyError(f"{key}: expected a list")
    return [_str(item, key, optional=False) or "" for item in value[:MAX_LIST]]


def _references(value: Any) -> list[Reference]:
    """Flat objects of scalars, capped; their keys are the engine's (:class:`~workbench.schema.Reference`)."""
    checked: Any = _list_of_dicts(value, "references")
    return checked


def validate(reply: Any) -> Report:
    """A clean copy of an engine report, or :class:`ReplyError` saying what was wrong."""
    if not isinstance(reply, dict):
        raise ReplyError("report: expected an object")
    if reply.get("schema") != SCHEMA:
        raise ReplyError(f"report: unknown schema {str(reply.get('schema'))[:40]!r}")
    try:
        findings = _findings(reply.get("findings"))
        header_bytes, byte_regions = _hex_view(reply, findings)
        guest = _guest(reply, findings)
        deep = _deep(reply, findings)
        report: Report = {
            "schema": SCHEMA,
            "path": _required_str(reply.get("path"), "path"),
            "declared_format": _str(reply.get("declared_format"), "declared_format"),
            "format": _str(reply.get("format"), "format", optional=False),
            "format_matches": _strings(reply.get("format_matches"), "format_matches"),
            "virtual_size": _int(reply.get("virtual_size"), "virtual_size"),
            "file_size": _int(reply.get("file_size"), "file_size", optional=False),
            "allocated_size": _int(reply.get("allocated_size"), "allocated_size"),  # null: a remote image
            "size_ratio": _scalar(reply.get("size_ratio"), "size_ratio"),
            "cluster_size": _int(reply.get("cluster_size"), "cluster_size"),
            "encrypted": _bool(reply.get("encrypted"), "encrypted"),
            "encryption": _flat_dict(reply.get("encryption"), "encryption"),
            "backing": _flat_dict(reply.get("backing"), "backing"),
            "data_file": _flat_dict(reply.get("data_file"), "data_file"),
            "extents": _list_of_dicts(reply.get("extents"), "extents"),
            "references": _references(reply.get("references")),
            "dirty": _bool(reply.get("dirty"), "dirty"),
            "corrupt": _bool(reply.get("corrupt"), "corrupt"),
            "snapshots": _list_of_dicts(reply.get("snapshots"), "snapshots"),
            "details": _flat_dict(reply.get("details"), "details") or {},
            "fields": _fields(reply.get("fields")),
            "findings": findings,
            "bytes_read": _required_int(reply.get("bytes_read"), "bytes_read"),
            "read_budget": _required_int(reply.get("read_budget"), "read_budget"),
            "header_bytes": header_bytes,
            "byte_regions": byte_regions,
            "elapsed_ms": _scalar(reply.get("elapsed_ms"), "elapsed_ms"),
            "sandbox": {str(k)[:64]: str(v)[:300] for k, v in list((reply.get("sandbox") or {}).items())[:32]},
        }
    except AttributeError as exc:
        raise ReplyError(f"report: wrong structure ({exc})") from None
    if guest is not None:
        report["guest"] = guest
    if deep is not None:
        report["deep"] = deep
    return report
