"""``workbench audit``: every domain XML and qemu.conf finding, the parser, hostile files, exit codes, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from workbench.audit import domain_xml, qemu_conf
from workbench.audit.findings import CATALOGUE
from workbench.audit.report import MAX_FILE, MAX_FINDINGS, SCHEMA, audit_path
from workbench.cli import main as cli

DATA = Path(__file__).parent / "data" / "audit"
DOCS = Path(__file__).parent.parent / "docs" / "audit.md"
LUKS = "<encryption format='luks'><secret type='passphrase' uuid='00000000-0000-4000-8000-000000000001'/></encryption>"
QCOW2 = "<driver name='qemu' type='qcow2'/>"


def audit_bytes(tmp_path: Path, content: str | bytes, name: str = "input", **kwargs: Any) -> dict[str, Any]:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return audit_path(str(path), **kwargs)


def ids(report: dict[str, Any]) -> list[str]:
    return sorted(f["id"] for f in report["findings"])


def only(report: dict[str, Any], finding_id: str) -> dict[str, Any]:
    found = [f for f in report["findings"] if f["id"] == finding_id]
    assert len(found) == 1, report["findings"]
    return found[0]


# --- domain XML ---------------------------------------------------------------------------------------


def domain(*disks: str) -> str:
    return f"<domain type='kvm'><name>t</name><devices>{''.join(disks)}</devices></domain>"


def file_disk(
    path: str = "/var/lib/libvirt/images/a.qcow2",
    driver: str = QCOW2,
    inner: str = "",
    backing: str = "",
    kind: str = "file",
    attribute: str = "file",
) -> str:
    return (
        f"<disk type='{kind}' device='disk'>{driver}<source {attribute}='{path}'>{inner}</source>"
        f"{backing}<target dev='vda'/></disk>"
    )


def net_disk(protocol: str, attributes: str = "", encryption: str = LUKS, host: str = "") -> str:
    host = host or "<host name='store.example' port='1234'/>"
    return (
        f"<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
        f"<source protocol='{protocol}' name='pool/img'{attributes}>{host}{encryption}</source>"
        f"<target dev='vdb'/></disk>"
    )


def backing(inner: str, kind: str = "file") -> str:
    return f"<backingStore type='{kind}'>{inner}<backingStore/></backingStore>"


def deep_chain(levels: int) -> str:
    level = "<backingStore type='file'><format type='qcow2'/><source file='/var/lib/libvirt/images/b.qcow2'/>"
    return level * levels + "</backingStore>" * levels


class Case(NamedTuple):
    name: str
    xml: str
    expected: list[str]
    location: str | None = None
    detail: str = ""


DISK1 = "/domain/devices/disk[1]"
DOMAIN_CASES = [
    Case(
        "driver-without-type",
        domain(file_disk(driver="<driver name='qemu'/>")),
        ["disk-format-unspecified"],
        DISK1,
        "disk vda: no <driver type=...>",
    ),
    Case("no-driver", domain(file_disk(driver="")), ["disk-format-unspecified"], DISK1, "no <driver type=...>"),
    Case(
        "driver-type-auto",
        domain(file_disk(driver="<driver name='qemu' type='auto'/>")),
        ["disk-format-unspecified"],
        DISK1,
        "'auto', which names no format",
    ),
    Case(
        "backing-without-format",
        domain(file_disk(backing=backing("<source file='/var/lib/libvirt/images/b'/>"))),
        ["disk-format-unspecified"],
        DISK1 + "/backingStore",
        "disk vda backing level 1: no <format type=...>",
    ),
    Case("chain-terminator-only", domain(file_disk(backing="<backingStore/>")), []),
    Case(
        "chain-explicit",
        domain(file_disk(backing=backing("<format type='raw'/><source file='/var/lib/libvirt/images/b.raw'/>"))),
        [],
    ),
    Case("empty-cdrom", domain("<disk type='file' device='cdrom'><target dev='sda'/></disk>"), []),
    Case(
        "rbd-unencrypted",
        domain(net_disk("rbd", encryption="")),
        ["network-disk-unencrypted"],
        DISK1,
        "rbd source 'pool/img' on store.example:1234 has no <encryption>",
    ),
    Case("rbd-luks-in-source", domain(net_disk("rbd")), []),
    Case("rbd-luks-under-disk", domain(net_disk("rbd", encryption="").replace("<target", LUKS + "<target")), []),
    Case("rbd-luks2-librbd", domain(net_disk("rbd", encryption="<encryption format='luks2' engine='librbd'/>")), []),
    Case(
        "nbd-no-tls-attribute",
        domain(net_disk("nbd")),
        ["nbd-without-tls"],
        DISK1,
        "no tls attribute: TLS only if qemu.conf nbd_tls = 1",
    ),
    Case("nbd-tls-no", domain(net_disk("nbd", " tls='no'")), ["nbd-without-tls"], DISK1, "tls='no' turns TLS off"),
    Case("nbd-tls-yes", domain(net_disk("nbd", " tls='yes'")), []),
    Case(
        "nbd-local-socket", domain(net_disk("nbd", encryption="", host="<host transport='unix' socket='/run/n'/>")), []
    ),
    Case(
        "outside-folders",
        domain(file_disk("/srv/vm/a.qcow2")),
        ["disk-outside-image-folders"],
        DISK1,
        "file source '/srv/vm/a.qcow2' is outside the image folders",
    ),
    Case(
        "dotdot-escape",
        domain(file_disk("/var/lib/libvirt/images/../../../../etc/shadow")),
        ["disk-outside-image-folders"],
        DISK1,
        "is '/etc/shadow' once '..' is resolved",
    ),
    Case(
        "relative-path",
        domain(file_disk("images/a.qcow2")),
        ["disk-outside-image-folders"],
        DISK1,
        "is a relative path",
    ),
    Case(
        "lookalike-prefix",
        domain(file_disk("/var/lib/libvirt/images-old/a.qcow2")),
        ["disk-outside-image-folders"],
        DISK1,
    ),
    Case(
        "block-device",
        domain(file_disk("/dev/sdb", "<driver name='qemu' type='raw'/>", kind="block", attribute="dev")),
        ["disk-outside-image-folders"],
        DISK1,
        "block source '/dev/sdb'",
    ),
    Case(
        "dir-source",
        domain(file_disk("/tmp/share", "<driver name='qemu' type='fat'/>", kind="dir", attribute="dir")),
        ["disk-outside-image-folders"],
        DISK1,
        "dir source",
    ),
    Case("inside-images", domain(file_disk("/var/lib/libvirt/images/sub/a.qcow2")), []),
    Case("inside-boot", domain(file_disk("/var/lib/libvirt/boot/x.iso", "<driver name='qemu' type='raw'/>")), []),
    Case("inside-nova", domain(file_disk("/var/lib/nova/instances/1234/disk")), []),
    Case("double-slash", domain(file_disk("//var/lib/libvirt/images/a.qcow2")), []),
    Case(
        "backing-network",
        domain(
            file_disk(
                backing=backing(
                    "<format type='raw'/><source protocol='nbd' name='base' tls='yes'>"
                    f"<host name='evil.example' port='10809'/>{LUKS}</source>",
                    kind="network",
                )
            )
        ),
        ["backing-network-source"],
        DISK1 + "/backingStore",
        "backing chain continues on the network: nbd source 'base' on evil.example:10809",
    ),
    Case(
        "encryption-qcow",
        domain(file_disk(inner="<encryption format='qcow'/>")),
        ["disk-encryption-weak"],
        DISK1,
        "<encryption format='qcow'> is the legacy qcow AES scheme",
    ),
    Case(
        "encryption-default",
        domain(file_disk().replace("<target", "<encryption format='default'/><target")),
        ["disk-encryption-weak"],
        DISK1,
    ),
    Case(
        "encryption-unknown",
        domain(file_disk(inner="<encryption format='rot13'/>")),
        ["disk-encryption-weak"],
        DISK1,
        "is not a LUKS format",
    ),
    Case("encryption-luks-local", domain(file_disk(inner=LUKS)), []),
    Case(
        "chain-too-deep",
        domain(file_disk(backing=deep_chain(domain_xml.MAX_CHAIN + 5))),
        ["audit-truncated"],
        DISK1 + "/backingStore" * domain_xml.MAX_CHAIN,
        f"deeper than {domain_xml.MAX_CHAIN} levels",
    ),
    Case("chain-at-limit", domain(file_disk(backing=deep_chain(domain_xml.MAX_CHAIN))), []),
    Case(
        "too-many-disks",
        domain(*[file_disk()] * (domain_xml.MAX_DISKS + 1)),
        ["audit-truncated"],
        None,
        f"{domain_xml.MAX_DISKS + 1} disks; only the first {domain_xml.MAX_DISKS} were checked",
    ),
]


@pytest.mark.parametrize("case", DOMAIN_CASES, ids=[c.name for c in DOMAIN_CASES])
def test_domain_finding(tmp_path: Path, case: Case) -> None:
    report = audit_bytes(tmp_path, case.xml, "domain.xml")
    assert report["kind"] == "domain-xml"
    assert ids(report) == case.expected
    if case.expected:
        finding = report["findings"][0]
        assert finding["location"] == case.location
        assert case.detail in finding["detail"]
        assert finding["recommendation"] == CATALOGUE[finding["id"]].recommendation
    else:
        assert report["verdict"] == "accept"


@pytest.mark.parametrize(
    "protocol",
    ["rbd", "iscsi", "nbd", "gluster", "http", "https", "ftp", "ftps", "tftp", "sheepdog", "vxhs", "nfs", "ssh"],
)
def test_every_network_protocol_needs_encryption(tmp_path: Path, protocol: str) -> None:
    report = audit_bytes(tmp_path, domain(net_disk(protocol, " tls='yes'", encryption="")), "d.xml")
    assert ids(report) == ["network-disk-unencrypted"]
    assert report["verdict"] == "review"


def test_backing_network_source_rejects(tmp_path: Path) -> None:
    level = "<format type='raw'/><source protocol='http' name='/b'><host name='x'/></source>"
    report = audit_bytes(tmp_path, domain(file_disk(backing=backing(level, "network"))))
    assert only(report, "backing-network-source")["severity"] == "critical"
    assert only(report, "network-disk-unencrypted")["location"] == DISK1 + "/backingStore"
    assert report["verdict"] == "reject"


def test_image_roots_extend_the_defaults(tmp_path: Path) -> None:
    xml = domain(file_disk("/srv/vm/a.qcow2"))
    assert audit_bytes(tmp_path, xml, image_roots=["/srv/vm"])["verdict"] == "accept"
    report = audit_bytes(tmp_path, xml, image_roots=["/srv/v"])
    assert ids(report) == ["disk-outside-image-folders"]
    assert "/srv/v)" in report["findings"][0]["detail"]


def test_clean_sample_is_accepted() -> None:
    report = audit_path(str(DATA / "domain-clean.xml"))
    assert report["schema"] == SCHEMA
    assert (report["kind"], report["verdict"], report["findings"]) == ("domain-xml", "accept", [])
    assert report["summary"]["name"] == "clean-guest"
    assert report["summary"]["disks"] == 7


def test_risky_sample_has_one_finding_per_problem() -> None:
    report = audit_path(str(DATA / "domain-risky.xml"))
    disk = "/domain/devices/disk"
    assert sorted((f["id"], f["location"]) for f in report["findings"]) == sorted(
        [
            ("disk-format-unspecified", f"{disk}[1]"),
            ("disk-outside-image-folders", f"{disk}[1]"),
            ("disk-format-unspecified", f"{disk}[2]/backingStore"),
            ("disk-outside-image-folders", f"{disk}[2]/backingStore"),
            ("backing-network-source", f"{disk}[2]/backingStore/backingStore"),
            ("network-disk-unencrypted", f"{disk}[2]/backingStore/backingStore"),
            ("network-disk-unencrypted", f"{disk}[3]"),
            ("nbd-without-tls", f"{disk}[4]"),
            ("disk-encryption-weak", f"{disk}[4]"),
            ("disk-outside-image-folders", f"{disk}[5]"),
        ]
    )
    assert report["verdict"] == "reject"
    assert [f["severity"] for f in report["findings"]][0] == "critical"  # most severe first


# --- qemu.conf parser -----------------------------------------------------------------------------------


def test_parser_reads_every_value_form() -> None:
    text = (
        "# comment\r\n"
        'name = "double"  # trailing comment\n'
        "other = 'single'; num = -42\n"
        "plus = +1\n"
        'multi = """line one\nline two"""\n'
        "\n"
        "acl = [\n"
        '    "/dev/null",\n'
        '    "/dev/kvm",\n'
        "]\n"
        "nested = [ [1, 2], [], 'x' ]\n"
        "empty = []\n"
        "after = 1\n"
    )
    parsed = qemu_conf.parse(text)
    assert parsed.errors == []
    values = {name: (s.value, s.line) for name, s in parsed.settings.items()}
    assert values == {
        "name": ("double", 2),
        "other": ("single", 3),
        "num": (-42, 3),
        "plus": (1, 4),
        "multi": ("line one\nline two", 5),
        "acl": (["/dev/null", "/dev/kvm"], 8),
        "nested": ([[1, 2], [], "x"], 12),
        "empty": ([], 13),
        "after": (1, 14),
    }
    assert parsed.lines == 14


def test_parser_reports_errors_by_line_and_resumes_at_the_next_statement() -> None:
    text = 'a = 1\nb = [ "x",\n      "y" "z",\n      "w" ]\nc = 2\nd = \'unterminated\ne = 3\nf = 1 g = 2\nh = x\n'
    parsed = qemu_conf.parse(text)
    assert [line for line, _ in parsed.errors] == [3, 6, 8, 9]
    assert "expecting ',' or ']'" in parsed.errors[0][1]
    assert "unterminated string" in parsed.errors[1][1]
    assert "expecting a newline or ';'" in parsed.errors[2][1]
    assert "expecting a value, found 'x'" in parsed.errors[3][1]
    assert list(parsed.settings) == ["a", "c", "e"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = " + "9" * 30, "number with 30 digits"),
        ("x = " + "9" * 5000, "number with 5000 digits"),  # beyond Python's int() digit limit
        ("x = " + "[" * (qemu_conf.MAX_LIST_DEPTH + 1) + "]" * (qemu_conf.MAX_LIST_DEPTH + 1), "nested more than"),
        ("x = [1, 2", "list not closed"),
        ('x = """never closed\n', 'unterminated """ string'),
        ("x =", "found the end of the file"),
        ("x = +", "a sign without digits"),
        ("9x = 1", "expecting a name"),
        ("x.y = 1", "expecting '=' after 'x'"),
        ("x = [1 # comment inside a list\n]", "expecting ',' or ']'"),  # libvirt allows no comments in lists
    ],
    ids=[
        "long-number",
        "huge-number",
        "deep-list",
        "open-list",
        "open-triple-quote",
        "no-value",
        "bare-sign",
        "bad-name",
        "dotted-name",
        "comment-in-list",
    ],
)
def test_parser_errors(text: str, message: str) -> None:
    parsed = qemu_conf.parse(text)
    assert len(parsed.errors) == 1
    assert parsed.errors[0][0] == 1
    assert message in parsed.errors[0][1]


def test_parser_accepts_lists_nested_to_the_limit() -> None:
    depth = qemu_conf.MAX_LIST_DEPTH
    parsed = qemu_conf.parse("x = " + "[" * depth + "]" * depth)
    assert parsed.errors == []
    value = parsed.settings["x"].value
    for _ in range(depth - 1):
        assert len(value) == 1
        value = value[0]
    assert value == []


def test_parser_keeps_the_first_occurrence_like_libvirt() -> None:
    parsed = qemu_conf.parse("a = 1\na = 2\n")
    assert parsed.settings["a"].value == 1
    assert [(d.value, d.line) for d in parsed.duplicates] == [(2, 2)]


# --- qemu.conf checks -------------------------------------------------------------------------------------

HARDENED = {
    "migration_address": '"192.168.100.11"',
    "migration_host": '"host1.migration.example"',
    "migrate_tls_force": "1",
    "migrate_tls_x509_verify": "1",
    "nbd_tls": "1",
}


def conf(**changes: str | None) -> str:
    """HARDENED with some settings changed, added (at the end) or removed (``None``)."""
    settings = {**HARDENED, **changes}
    return "".join(f"{name} = {value}\n" for name, value in settings.items() if value is not None)


CONF_CASES = [
    Case("hardened", conf(), []),
    Case(
        "probing-on",
        conf(allow_disk_format_probing="1"),
        ["format-probing-enabled"],
        "line 6",
        "allow_disk_format_probing = 1",
    ),
    Case("probing-plus-one", conf(allow_disk_format_probing="+1"), ["format-probing-enabled"], "line 6"),
    Case("probing-off", conf(allow_disk_format_probing="0"), []),
    Case(
        "listen-unset",
        conf(migration_address=None),
        ["migration-listen-all"],
        None,
        "not set: libvirt's default is 0.0.0.0 (or :: where IPv6 works); incoming migrations use ports 49152-49215",
    ),
    Case(
        "listen-ipv4-any",
        conf(migration_address='"0.0.0.0"'),
        ["migration-listen-all"],
        "line 1",
        'migration_address = "0.0.0.0" listens on every address',
    ),
    Case("listen-ipv6-any", conf(migration_address="'::'"), ["migration-listen-all"], "line 1"),
    Case("listen-ipv6-bracketed", conf(migration_address='"[::]"'), ["migration-listen-all"], "line 1"),
    Case("listen-ipv6-long", conf(migration_address='"0:0:0:0:0:0:0:0"'), ["migration-listen-all"], "line 1"),
    Case("listen-empty", conf(migration_address='""'), ["migration-listen-all"], "line 1"),
    Case(
        "listen-ports",
        conf(migration_address='"0.0.0.0"', migration_port_min="50000", migration_port_max="50010"),
        ["migration-listen-all"],
        "line 1",
        "ports 50000-50010",
    ),
    Case("listen-hostname", conf(migration_address='"migration.example"'), []),
    Case("host-unset", conf(migration_host=None), ["migration-host-default"], None, "migration_host is not set"),
    Case(
        "tls-force-unset",
        conf(migrate_tls_force=None),
        ["migration-unencrypted"],
        None,
        "migrate_tls_force is not set (default 0): migrations started without --tls (or a tunnel over an "
        "encrypted libvirt connection) are not encrypted; no TLS certificate folder is set",
    ),
    Case("tls-force-off", conf(migrate_tls_force="0"), ["migration-unencrypted"], "line 3", "migrate_tls_force = 0"),
    Case(
        "tls-cert-dir",
        conf(migrate_tls_force="0", default_tls_x509_cert_dir='"/etc/pki/qemu"'),
        ["migration-unencrypted"],
        "line 3",
        'default_tls_x509_cert_dir = "/etc/pki/qemu" (line 6)',
    ),
    Case(
        "verify-off",
        conf(migrate_tls_x509_verify="0"),
        ["migration-tls-unverified"],
        "line 4",
        "migrate_tls_x509_verify = 0",
    ),
    Case(
        "verify-default-off",
        conf(migrate_tls_x509_verify=None, default_tls_x509_verify="0"),
        ["migration-tls-unverified"],
        "line 5",
        "default_tls_x509_verify = 0",
    ),
    Case("verify-specific-wins", conf(default_tls_x509_verify="0"), []),
    Case("nbd-tls-unset", conf(nbd_tls=None), ["nbd-tls-disabled"], None, "nbd_tls is not set (default 0)"),
    Case("nbd-tls-off", conf(nbd_tls="0"), ["nbd-tls-disabled"], "line 5"),
    Case(
        "flag-as-string",
        conf(nbd_tls='"1"'),
        ["conf-invalid-value", "nbd-tls-disabled"],
        "line 5",
        'nbd_tls = "1": libvirt accepts only 0 or 1',
    ),
    Case("flag-out-of-range", conf(migrate_tls_force="2"), ["conf-invalid-value", "migration-unencrypted"], "line 3"),
    Case("flag-negative-zero", conf(migrate_tls_force="-0"), ["conf-invalid-value", "migration-unencrypted"], "line 3"),
    Case("address-as-number", conf(migration_address="0"), ["conf-invalid-value"], "line 1", "expects a quoted string"),
    Case(
        "duplicate-later-ignored",
        conf() + "migrate_tls_force = 0\n",
        ["conf-duplicate-setting"],
        "line 6",
        "migrate_tls_force is set again on line 6 (= 0); libvirt uses line 3 (= 1)",
    ),
    Case(
        "duplicate-first-wins",
        "migrate_tls_force = 0\n" + conf(),
        ["conf-duplicate-setting", "migration-unencrypted"],
        "line 4",
    ),
    Case(
        "unparsable-line",
        conf() + "this is not a setting\n",
        ["conf-unparsable"],
        "line 6",
        "line 6: expecting '=' after 'this'",
    ),
    Case(
        "too-many-errors",
        conf() + "bad\n" * (qemu_conf.MAX_ERRORS + 5),
        ["audit-truncated"] + ["conf-unparsable"] * qemu_conf.MAX_ERRORS,
        None,
        f"stopped after {qemu_conf.MAX_ERRORS} syntax errors; lines past {5 + qemu_conf.MAX_ERRORS} not read",
    ),
]


@pytest.mark.parametrize("case", CONF_CASES, ids=[c.name for c in CONF_CASES])
def test_conf_finding(tmp_path: Path, case: Case) -> None:
    report = audit_bytes(tmp_path, case.xml, "qemu.conf")
    assert report["kind"] == "qemu-conf"
    assert ids(report) == sorted(case.expected)
    if case.expected:
        finding = only(report, case.expected[0])
        assert finding["location"] == case.location
        assert case.detail in finding["detail"]
    else:
        assert report["verdict"] == "accept"


def test_conf_samples() -> None:
    assert audit_path(str(DATA / "qemu-hardened.conf"))["verdict"] == "accept"
    default = audit_path(str(DATA / "qemu-default.conf"))
    assert ids(default) == [
        "migration-host-default",
        "migration-listen-all",
        "migration-unencrypted",
        "nbd-tls-disabled",
    ]
    assert default["verdict"] == "review"
    risky = audit_path(str(DATA / "qemu-risky.conf"))
    assert risky["verdict"] == "reject"
    assert {(f["id"], f["location"]) for f in risky["findings"]} >= {
        ("format-probing-enabled", "line 2"),
        ("migration-listen-all", "line 3"),
        ("migration-unencrypted", "line 5"),
        ("migration-tls-unverified", "line 6"),
        ("conf-invalid-value", "line 7"),
        ("conf-unparsable", "line 8"),
        ("conf-duplicate-setting", "line 9"),
    }
    assert "ports 49000-49215" in only(risky, "migration-listen-all")["detail"]


def test_every_catalogue_id_has_a_case_and_a_docs_entry() -> None:
    covered = {finding_id for case in DOMAIN_CASES + CONF_CASES for finding_id in case.expected}
    assert covered == set(CATALOGUE)
    docs = DOCS.read_text(encoding="utf-8")
    assert [finding_id for finding_id in CATALOGUE if f"`{finding_id}`" not in docs] == []


def test_findings_are_capped(tmp_path: Path) -> None:
    count = MAX_FINDINGS + 10
    report = audit_bytes(tmp_path, domain(*[file_disk("/srv/a.qcow2")] * count), "many.xml")
    assert len(report["findings"]) == MAX_FINDINGS + 1
    assert report["findings"][0]["id"] == "audit-truncated"  # warnings first; the note is one of them
    assert f"{count} findings; the 10 least severe are not listed" in report["findings"][0]["detail"]


# --- hostile files --------------------------------------------------------------------------------------


def failed(report: dict[str, Any]) -> str:
    assert report["verdict"] == "failed"
    assert report["findings"] == []
    assert "\n" not in report["error"]
    return report["error"]


def test_billion_laughs_is_refused() -> None:
    error = failed(audit_path(str(DATA / "billion-laughs.xml")))
    assert error.startswith("XML refused: <!DOCTYPE domain> declares entities")
    assert "billion laughs" in error


def test_external_entity_is_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xml = f'<!DOCTYPE domain [<!ENTITY s SYSTEM "file://{secret}">]><domain><name>&s;</name></domain>'
    report = audit_bytes(tmp_path, xml, "ext.xml")
    assert "declares an external entity" in failed(report)
    assert "TOP-SECRET" not in json.dumps(report)
    assert "external entity" in failed(audit_path(str(DATA / "external-entity.xml")))


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ('<!DOCTYPE domain [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><domain/>', "declares an external entity"),
        (
            '<!DOCTYPE domain SYSTEM "http://192.0.2.1/d.dtd"><domain/>',
            "names the external DTD 'http://192.0.2.1/d.dtd'",
        ),
        ("<!DOCTYPE domain [<!ATTLIST disk type CDATA 'network'>]><domain/>", "is a document type declaration"),
        ("<domain><name>x</nam", "not well-formed XML"),
        ("<domain>&undefined;</domain>", "undefined entity"),
        ("<domain/><domain/>", "junk after document element"),
        ("<network><name>default</name></network>", "the root element is <network>, not <domain>"),
        ("<domain xmlns='urn:other'/>", "the root element is <{urn:other}domain>"),
    ],
    ids=[
        "parameter-entity",
        "external-dtd",
        "attlist-default",
        "truncated",
        "undefined-entity",
        "two-roots",
        "wrong-root",
        "namespaced-root",
    ],
)
def test_hostile_or_wrong_xml_fails_with_one_line(tmp_path: Path, xml: str, message: str) -> None:
    assert message in failed(audit_bytes(tmp_path, xml, "bad.xml"))


def test_sample_wrong_root_and_non_utf8_fail() -> None:
    assert "root element is <network>" in failed(audit_path(str(DATA / "wrong-root.xml")))
    assert "not well-formed (invalid token): line 1" in failed(audit_path(str(DATA / "non-utf8.xml")))
    assert "not UTF-8 text (byte 19 is 0xf4)" in failed(audit_path(str(DATA / "non-utf8.conf")))


def test_declared_latin1_xml_is_read(tmp_path: Path) -> None:
    xml = "<?xml version='1.0' encoding='ISO-8859-1'?>" + domain().replace("<name>t", "<name>caf\u00e9")
    report = audit_bytes(tmp_path, xml.encode("latin-1"), "latin1.xml")
    assert report["verdict"] == "accept"
    assert report["summary"]["name"] == "caf\u00e9"


@pytest.mark.parametrize("name", ["huge.xml", "huge.conf"])
def test_file_over_the_size_cap_fails_before_parsing(tmp_path: Path, name: str) -> None:
    head = b"<domain><!--" if name.endswith(".xml") else b"# "
    report = audit_bytes(tmp_path, head + b"x" * MAX_FILE, name)
    assert f"more than the limit of {MAX_FILE}" in failed(report)


def test_deep_nesting_within_the_cap_is_parsed(tmp_path: Path) -> None:
    depth = 100_000
    xml = b"<domain>" + b"<a>" * depth + b"</a>" * depth + b"</domain>"
    report = audit_bytes(tmp_path, xml, "deep.xml")
    assert report["verdict"] == "accept"
    assert report["summary"]["disks"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"migration_host = 'a'\0\n", "NUL byte at offset 20"),
        (b"\n" * (qemu_conf.MAX_LINES + 1), f"{qemu_conf.MAX_LINES + 1} lines, more than"),
        (b"Hello, this is prose.\nNot a configuration file at all.\n", "no setting could be read (line 1"),
    ],
    ids=["nul-byte", "too-many-lines", "prose"],
)
def test_bad_conf_fails(tmp_path: Path, content: bytes, message: str) -> None:
    assert message in failed(audit_bytes(tmp_path, content, "qemu.conf"))


def test_empty_conf_is_all_defaults(tmp_path: Path) -> None:
    report = audit_bytes(tmp_path, b"", "qemu.conf")
    assert report["kind"] == "qemu-conf"
    assert "migration-listen-all" in ids(report)


def test_fifo_directory_and_missing_file_fail_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert failed(audit_path(str(fifo))) == "not a regular file"
    assert failed(audit_path(str(tmp_path))) == "not a regular file"
    assert failed(audit_path(str(tmp_path / "missing"))).startswith("cannot open: No such file")


def test_kind_can_be_forced(tmp_path: Path) -> None:
    report = audit_path(str(DATA / "domain-clean.xml"), kind="qemu-conf")
    assert report["kind"] == "qemu-conf"
    assert "not a qemu.conf" in failed(report)
    bom = audit_bytes(tmp_path, b"\xef\xbb\xbf  " + domain().encode(), "bom.xml")
    assert bom["kind"] == "domain-xml"


# --- command line ---------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["audit", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (["domain-clean.xml"], 0),
        (["qemu-hardened.conf", "domain-clean.xml"], 0),
        (["qemu-default.conf"], 10),
        (["domain-risky.xml"], 20),
        (["qemu-risky.conf", "qemu-default.conf"], 20),
        (["billion-laughs.xml"], 30),
        (["domain-clean.xml", "external-entity.xml", "domain-risky.xml"], 30),
    ],
)
def test_exit_codes(capsys: pytest.CaptureFixture[str], files: list[str], code: int) -> None:
    assert run(capsys, *[str(DATA / f) for f in files])[0] == code


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for args in ([], ["--kind", "vmx", str(DATA / "domain-clean.xml")]):
        with pytest.raises(SystemExit) as exc:
            cli.main(["audit", *args])
        assert exc.value.code == 2
    assert "usage: workbench audit" in capsys.readouterr().err


def test_json_one_object_or_an_array(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", str(DATA / "qemu-risky.conf"))
    one = json.loads(out)
    assert code == 20
    assert (one["schema"], one["kind"], one["verdict"]) == (SCHEMA, "qemu-conf", "reject")
    assert set(one["findings"][0]) == {"id", "severity", "title", "detail", "recommendation", "location"}
    paths = [str(DATA / "domain-clean.xml"), str(DATA / "billion-laughs.xml")]
    code, out, _ = run(capsys, "--json", *paths)
    many = json.loads(out)
    assert code == 30
    assert [(r["path"], r["verdict"]) for r in many] == [(paths[0], "accept"), (paths[1], "failed")]
    assert "DOCTYPE" in many[1]["error"]


def test_text_output_explains_and_hides_info_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DATA / "qemu-default.conf")
    code, out, _ = run(capsys, path)
    assert code == 10
    assert out.startswith(f"{path}: REVIEW (qemu-conf)\n")
    assert "WARNING  migration-unencrypted: Migration is not forced to use TLS" in out
    assert "-> Set migrate_tls_force = 1" in out
    assert "(2 info hidden; -v shows them)" in out
    assert "migration-host-default" not in out
    assert "INFO     migration-host-default" in run(capsys, "-v", path)[1]


def test_failures_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(DATA / "wrong-root.xml"))
    assert (code, out) == (30, "")
    assert (
        err
        == f"{DATA / 'wrong-root.xml'}: FAILED: not a libvirt domain XML: the root element is <network>, not <domain>\n"
    )


def test_image_root_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "d.xml"
    path.write_text(domain(file_disk("/srv/vm/a.qcow2")))
    assert run(capsys, str(path))[0] == 10
    assert run(capsys, "--image-root", "/srv/vm/", str(path))[0] == 0


def test_strings_from_files_are_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    xml = tmp_path / "bidi.xml"
    xml.write_text(domain(file_disk("/srv/\u202eevil.qcow2")).replace("<name>t", "<name>\u202egnp.exe"))
    out = run(capsys, str(xml))[1]
    assert "\u202e" not in out
    assert "/srv/\\u202eevil.qcow2" in out
    assert "domain      \\u202egnp.exe" in out
    conf_file = tmp_path / "qemu.conf"
    conf_file.write_text(conf() + 'nbd_tls = "\x1b[2J\x1b]0;pwned\x07"\n')
    out = run(capsys, "-v", str(conf_file))[1]
    assert "\x1b" not in out and "\x07" not in out
    assert 'nbd_tls is set again on line 6 (= "\\x1b[2J\\x1b]0;pwned\\x07")' in out


def test_entry_point_exit_code_and_json(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "audit", "--json", str(DATA / "domain-risky.xml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.returncode == 20, result.stderr
    assert json.loads(result.stdout)["verdict"] == "reject"
