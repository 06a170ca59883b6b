"""Property trees (name, value) for the overview and the encryption and sandbox page."""

from __future__ import annotations

from typing import Any

from ...engine.child.layers import missing_required
from ...render.sizes import human_size
from ...render.textsafe import printable
from ...schema import SEVERITIES_WORST_FIRST
from .field_tree_model import value_text
from .node_model import Node, NodeModel

HEADERS = ["Property", "Value"]
MAX_ITEMS = 256
DECLARED_SOURCES = {
    "extension": "from the file extension",
    "argument": "declared",
    "window": "chosen in the window",
    "demo": "declared by the demonstration set",
    "none": "none declared: the format was probed",
}


MARKED_ROWS = {  # finding id -> the overview rows it is about
    "format-mismatch": ("Declared format", "Detected format"),
    "format-ambiguous": ("Signature matches",),
    "virtual-size-limit": ("Logical size",),
}


def size_text(value: int | None) -> str:
    return "unknown" if value is None else f"{human_size(value)} ({value:,} bytes)"


def _leaf(name: str, value: Any, icon: str | None = None, mark: str | None = None) -> Node:
    text = value if isinstance(value, str) else value_text(value)
    return Node([name, text], icon=icon or (f"severity-{mark}" if mark else None), mark=mark)


def _marks(report: dict[str, Any]) -> dict[str, str]:
    """Overview rows to highlight, with the severity of the finding behind each: a declared/detected
    mismatch, a size above the limit, any cap reached."""
    marks: dict[str, str] = {}
    for finding in report.get("findings") or []:
        rows = MARKED_ROWS.get(finding.get("id", ""), ())
        if not rows and any(word in finding.get("id", "") for word in ("limit", "budget")):
            rows = ("Engine",)
        for row in rows:
            if finding["severity"] != "info" and marks.get(row) != "critical":
                marks[row] = finding["severity"]
    return marks


def ratio_text(ratio: float | None) -> str:
    if not ratio:
        return "unknown"
    return f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:g}"


def _item_text(value: Any) -> str:
    if isinstance(value, dict):
        return printable(", ".join(f"{k}={v}" for k, v in value.items()), 400)
    return value_text(value)


def dict_node(name: str, values: dict[str, Any] | None, summary: str = "") -> Node:
    """A node whose children are the (image-derived) keys and values of a small dictionary.

    Lists become a child per item and dictionaries a child per key (validation keeps both shallow).
    """
    node = Node([name, summary])
    for key, value in (values or {}).items():
        label = printable(key, 80)
        if isinstance(value, list):
            child = node.add(Node([label, f"{len(value)} item{'s' if len(value) > 1 else ''}" if value else "none"]))
            for number, item in enumerate(value[:MAX_ITEMS]):
                child.add(Node([f"#{number}", _item_text(item)]))
        elif isinstance(value, dict):
            child = node.add(Node([label, ""]))
            for sub_key, sub_value in list(value.items())[:MAX_ITEMS]:
                child.add(Node([printable(sub_key, 80), _item_text(sub_value)]))
        else:
            node.add(Node([label, value_text(value)]))
    return node


def severity_counts(report: dict[str, Any]) -> str:
    counts = {s: 0 for s in SEVERITIES_WORST_FIRST}
    for finding in report.get("findings", []):
        counts[finding["severity"]] += 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def declared_text(report: dict[str, Any], source: str | None = None) -> str:
    declared = report.get("declared_format")
    source = source or report.get("declared_source", "argument")
    if not declared:
        return DECLARED_SOURCES["none"]
    return f"{declared} ({DECLARED_SOURCES.get(source, source)})"


def overview_nodes(report: dict[str, Any], source: str | None = None) -> list[Node]:
    verdict = report.get("verdict", "pending")
    counts = "could not inspect (the error is below)" if verdict == "failed" else severity_counts(report)
    nodes = [_leaf("Verdict", f"{verdict.upper()}: {counts}", f"verdict-{verdict}")]
    nodes.append(_leaf("File", printable(report["path"], 1024)))
    for weak in (f for f in report.get("findings", []) if f["id"] == "sandbox-degraded"):
        nodes.append(_leaf("Sandbox", printable(weak["detail"], 1024), "severity-warning"))
    if verdict == "failed":
        nodes.append(_leaf("Error", printable(report.get("error", ""), 1024), "severity-critical"))
        nodes.append(_leaf("Declared format", declared_text(report, source)))
        return nodes
    matches = ", ".join(printable(m, 40) for m in report["format_matches"]) or "none (raw)"
    marks = _marks(report)
    nodes += [
        _leaf("Declared format", declared_text(report, source), mark=marks.get("Declared format")),
        _leaf("Detected format", printable(report["format"], 40), mark=marks.get("Detected format")),
        _leaf("Signature matches", matches, mark=marks.get("Signature matches")),
        _leaf("Logical size", size_text(report["virtual_size"]), mark=marks.get("Logical size")),
        _leaf("File size", size_text(report["file_size"])),
        _leaf("Allocated size", size_text(report["allocated_size"])),
        _leaf("Logical / file", ratio_text(report.get("size_ratio"))),
        _leaf("Cluster size", size_text(report["cluster_size"]) if report["cluster_size"] else "none"),
    ]
    method = (report.get("encryption") or {}).get("method", "yes")
    nodes.append(_leaf("Encryption", printable(method, 200) if report["encrypted"] else "none"))
    refs = Node(["External references", str(len(report["references"])) if report["references"] else "none"])
    for ref in report["references"]:
        refs.add(Node([printable(ref.get("role", "reference"), 80), printable(ref.get("name", ""), 1024)]))
    nodes.append(refs)
    snaps = Node(["Snapshots", str(len(report["snapshots"])) if report["snapshots"] else "none"])
    for number, snap in enumerate(report["snapshots"], 1):
        snaps.add(Node([f"#{number}", printable(", ".join(f"{k}={v}" for k, v in snap.items()), 400)]))
    nodes.append(snaps)
    nodes.append(_leaf("Dirty", report["dirty"], "severity-warning" if report["dirty"] else None))
    nodes.append(_leaf("Corrupt", report["corrupt"], "severity-critical" if report["corrupt"] else None))
    if report.get("details"):
        nodes.append(dict_node("Format details", report["details"]))
    engine = f"read {report['bytes_read']:,} of {report['read_budget']:,} bytes in {report.get('elapsed_ms') or 0:g} ms"
    nodes.append(_leaf("Engine", engine, mark=marks.get("Engine")))
    return nodes


def security_nodes(report: dict[str, Any], required: list[str]) -> list[Node]:
    """Encryption details, the sandbox layers the engine child reported, and the policy's requirements."""
    nodes = []
    if report.get("verdict") != "failed":
        encryption = report.get("encryption") if report["encrypted"] else None
        summary = printable((encryption or {}).get("method", "yes"), 200) if report["encrypted"] else "none"
        nodes.append(dict_node("Encryption", encryption, summary))
    sandbox = report.get("sandbox") or {}
    layers = Node(["Sandbox layers", f"{sum(v.startswith('on') for v in sandbox.values())} of {len(sandbox)} on"])
    for name, status in sandbox.items():
        icon = "verdict-accept" if status.startswith("on") else "severity-warning"
        layers.add(_leaf(printable(name, 64), printable(status, 300), icon))
    nodes.append(layers)
    missing = set(missing_required(sandbox, required))
    policy = Node(["Required by policy", ", ".join(required) or "nothing"])
    for need in required:
        ok = need not in missing
        policy.add(_leaf(need, "on" if ok else "missing", "verdict-accept" if ok else "severity-critical"))
    nodes.append(policy)
    if report.get("verdict") != "failed":
        nodes.append(_leaf("Read budget", f"{report['bytes_read']:,} of {report['read_budget']:,} bytes read"))
    return nodes


AUDIT_KINDS = {"domain-xml": "libvirt domain XML", "qemu-conf": "qemu.conf"}
AUDIT_SUMMARY = {
    "name": "Domain name",
    "disks": "Disks",
    "image_roots": "Image folders",
    "settings": "Settings",
    "lines": "Lines",
    "syntax_errors": "Syntax errors",
}


def audit_nodes(report: dict[str, Any]) -> list[Node]:
    """An audit report (``workbench-audit/1``): verdict, file, kind, and its summary or error."""
    verdict = report["verdict"]
    kind = report.get("kind")
    nodes = [
        _leaf("Verdict", f"{verdict.upper()}: {severity_counts(report)}", f"verdict-{verdict}"),
        _leaf("File", printable(report["path"], 1024)),
        _leaf("Audited as", AUDIT_KINDS.get(kind, "unknown") if kind else "unknown"),
    ]
    if verdict == "failed":
        nodes.append(_leaf("Error", printable(report.get("error", ""), 1024), "severity-critical"))
    for key, value in (report.get("summary") or {}).items():
        shown = ", ".join(printable(v, 200) for v in value) if isinstance(value, list) else value_text(value)
        nodes.append(_leaf(AUDIT_SUMMARY.get(key, printable(key, 80)), shown or "none"))
    return nodes


class PropertyModel(NodeModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(HEADERS, parent)
