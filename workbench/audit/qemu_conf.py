"""qemu.conf: a careful parser of libvirt's ``key = value`` format and the migration and storage checks.

The grammar follows libvirt's own reader (src/util/virconf.c): a name ``[A-Za-z][A-Za-z0-9_]*``, ``=``, a
value (a ``"..."`` or ``'...'`` string on one line, a ``\"\"\"...\"\"\"`` string over several, an integer with an
optional sign, or a ``[list, ...]`` that may span lines), an optional ``#`` comment, then a newline or
``;``. Where a setting appears twice libvirt uses the first one, and so does this audit. libvirt stops at
the first syntax error; this parser reports it with its line number and resumes at the next line that
starts a statement, so one bad line does not hide the rest of the file.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from . import AuditError
from .findings import AuditFinding

MAX_LINES = 50_000
MAX_ERRORS = 20
MAX_LIST_DEPTH = 8
MAX_NUMBER_DIGITS = 20  # larger than any 64-bit value; also keeps int() away from Python's digit limit
RAW_CAP = 200  # characters of a value's source text kept for details

_BLANKS = re.compile(r"[ \t]*")
_BLANKS_EOL = re.compile(r"[ \t\r\n]*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?([0-9]*)")
_QUOTED = {"'": re.compile(r"'([^'\r\n]*)'"), '"': re.compile(r'"([^"\r\n]*)"')}
_COMMENT = re.compile(r"#[^\r\n]*")
# After an error: the next line whose first non-blank character can start a statement (or is blank).
_RESYNC = re.compile(r"\n[ \t]*(?=[A-Za-z#\r\n]|\Z)")

Value = str | int | list[Any]


@dataclass(frozen=True)
class Setting:
    name: str
    value: Value
    line: int
    raw: str  # the value's source text, capped

    @property
    def where(self) -> str:
        return f"line {self.line}"


@dataclass
class Parsed:
    settings: dict[str, Setting] = field(default_factory=dict)  # the first occurrence of each name
    duplicates: list[Setting] = field(default_factory=list)  # later occurrences, which libvirt ignores
    errors: list[tuple[int, str]] = field(default_factory=list)
    lines: int = 0
    stopped: bool = False  # MAX_ERRORS reached; the rest of the file was not read


class _Syntax(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(self, pos: int) -> int:
        return bisect_left(self.newlines, pos) + 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, pattern: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.pos)
        assert match is not None  # every pattern passed here can match the empty string
        self.pos = match.end()
        return match.group()

    def statement(self) -> Setting | None:
        """One ``name = value`` (``None`` for a comment line); the caller handles the separator."""
        if self.peek() == "#":
            self.skip(_COMMENT)
            return None
        start = self.pos
        name = _NAME.match(self.text, self.pos)
        if name is None:
            raise _Syntax("expecting a name")
        self.pos = name.end()
        self.skip(_BLANKS)
        if self.peek() != "=":
            raise _Syntax(f"expecting '=' after {name.group()!r}")
        self.pos += 1
        self.skip(_BLANKS)
        value_start = self.pos
        value = self.value(0)
        raw = self.text[value_start : min(self.pos, value_start + RAW_CAP)]
        self.skip(_BLANKS)
        if self.peek() == "#":
            self.skip(_COMMENT)
        return Setting(name.group(), value, self.line_at(start), raw)

    def separator(self) -> None:
        self.skip(_BLANKS)
        char = self.peek()
        if char == ";":
            self.pos += 1
        elif char not in ("", "\r", "\n"):
            raise _Syntax(f"expecting a newline or ';', found {char!r}")

    def value(self, depth: int) -> Value:
        self.skip(_BLANKS)
        char = self.peek()
        if char == "":
            raise _Syntax("expecting a value, found the end of the file")
        if char in _QUOTED:
            return self.string(char)
        if char == "[":
            return self.list(depth)
        if char.isdigit() or char in "+-":
            return self.number()
        raise _Syntax(f"expecting a value, found {char!r}")

    def string(self, quote: str) -> str:
        if self.text.startswith('"""', self.pos):
            end = self.text.find('"""', self.pos + 3)
            if end < 0:
                raise _Syntax('unterminated """ string')
            value = self.text[self.pos + 3 : end]
            self.pos = end + 3
            return value
        match = _QUOTED[quote].match(self.text, self.pos)
        if match is None:
            raise _Syntax('unterminated string (strings end on the line they start, except """...""")')
        self.pos = match.end()
        return match.group(1)

    def number(self) -> int:
        match = _NUMBER.match(self.text, self.pos)
        assert match is not None
        digits = match.group(1)
        if not digits:
            raise _Syntax("a sign without digits")
        if len(digits) > MAX_NUMBER_DIGITS:
            raise _Syntax(f"number with {len(digits)} digits")
        self.pos = match.end()
        return int(match.group())

    def list(self, depth: int) -> list[Any]:
        if depth >= MAX_LIST_DEPTH:
            raise _Syntax(f"lists nested more than {MAX_LIST_DEPTH} deep")
        self.pos += 1
        items: list[Any] = []
        self.skip(_BLANKS_EOL)
        while self.peek() not in ("]", ""):
            if items:
                if self.peek() != ",":
                    raise _Syntax("expecting ',' or ']' in a list")
                self.pos += 1
                self.skip(_BLANKS_EOL)
                if self.peek() == "]":
                    break
            items.append(self.value(depth + 1))
            self.skip(_BLANKS_EOL)
        if self.peek() != "]":
            raise _Syntax("list not closed with ']'")
        self.pos += 1
        return items

    def resync(self) -> None:
        match = _RESYNC.search(self.text, self.pos)
        self.pos = match.end() if match else len(self.text)


def parse(text: str) -> Parsed:
    """Every statement of ``text``; syntax errors are collected with their line numbers, never raised."""
    parser = _Parser(text)
    out = Parsed(lines=len(parser.newlines) + (0 if text.endswith("\n") else 1))
    if out.lines > MAX_LINES:
        raise AuditError(f"not audited: {out.lines} lines, more than the {MAX_LINES} a qemu.conf may have here")
    while True:
        parser.skip(_BLANKS_EOL)
        if parser.pos >= len(text):
            return out
        try:
            setting = parser.statement()
            parser.separator()
        except _Syntax as exc:
            out.errors.append((parser.line_at(parser.pos), str(exc)))
            if len(out.errors) >= MAX_ERRORS:
                out.stopped = True
                return out
            parser.resync()
            continue
        if setting is None:
            continue
        if setting.name in out.settings:
            out.duplicates.append(setting)
        else:
            out.settings[setting.name] = setting


def decode(data: bytes) -> str:
    nul = data.find(b"\0")
    if nul >= 0:
        raise AuditError(f"not a qemu.conf: NUL byte at offset {nul} (a binary file?)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditError(f"not a qemu.conf: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})") from None


# --- checks -------------------------------------------------------------------------------------------


class _Checks:
    """The settings the guidance names, read the way libvirt reads them (first occurrence, strict types)."""

    def __init__(self, parsed: Parsed) -> None:
        self.settings = parsed.settings
        self.findings: list[AuditFinding] = []

    def add(self, finding_id: str, detail: str, setting: Setting | None = None) -> None:
        self.findings.append(AuditFinding(finding_id, detail, setting.where if setting else None))

    def flag(self, name: str) -> tuple[bool | None, Setting | None]:
        """A 0/1 setting: ``(value, setting)``; ``(None, setting)`` when libvirt would reject the value."""
        setting = self.settings.get(name)
        if setting is None:
            return None, None
        value = setting.value
        # libvirt wants an unsigned number, 0 or 1: "-0", 2 and "1" in quotes are refused
        if isinstance(value, int) and not setting.raw.startswith("-") and value in (0, 1):
            return bool(value), setting
        self.add("conf-invalid-value", f"{name} = {setting.raw}: libvirt accepts only 0 or 1 here", setting)
        return None, setting

    def string(self, name: str) -> tuple[str | None, Setting | None]:
        """A string setting: ``(value, setting)``; ``(None, setting)`` when libvirt would reject the value."""
        setting = self.settings.get(name)
        if setting is None:
            return None, None
        if isinstance(setting.value, str):
            return setting.value, setting
        self.add("conf-invalid-value", f"{name} = {setting.raw}: libvirt expects a quoted string here", setting)
        return None, setting

    def format_probing(self) -> None:
        enabled, setting = self.flag("allow_disk_format_probing")
        if enabled:
            self.add(
                "format-probing-enabled",
                "allow_disk_format_probing = 1: libvirt versions that still honour it probe the format of "
                "every disk whose XML names none",
                setting,
            )

    def migration_address(self) -> None:
        address, setting = self.string("migration_address")
        if setting is not None and address is None:
            return  # wrong type, already reported
        ports = self._port_range()
        if setting is None:
            detail = "migration_address is not set: libvirt's default is 0.0.0.0 (or :: where IPv6 works)"
        elif _unspecified(address or ""):
            detail = f"migration_address = {setting.raw} listens on every address of the host"
        else:
            return
        self.add("migration-listen-all", f"{detail}; incoming migrations use ports {ports}", setting)

    def _port_range(self) -> str:
        low = self.settings.get("migration_port_min")
        high = self.settings.get("migration_port_max")
        return f"{low.raw if low else 49152}-{high.raw if high else 49215}"

    def migration_host(self) -> None:
        _, setting = self.string("migration_host")
        if setting is None:
            self.add(
                "migration-host-default",
                "migration_host is not set: sources connect to this host's configured hostname, on whatever "
                "network that name resolves to",
            )

    def migration_tls(self) -> None:
        forced, setting = self.flag("migrate_tls_force")
        if forced:
            return
        state = "is not set (default 0)" if setting is None else f"= {setting.raw}"
        certs = self._cert_dirs()
        self.add(
            "migration-unencrypted",
            f"migrate_tls_force {state}: migrations started without --tls (or a tunnel over an encrypted libvirt "
            f"connection) are not encrypted; {certs}",
            setting,
        )

    def _cert_dirs(self) -> str:
        for name in ("migrate_tls_x509_cert_dir", "default_tls_x509_cert_dir"):
            setting = self.settings.get(name)
            if setting is not None:
                return f"TLS certificates would come from {name} = {setting.raw} ({setting.where})"
        return "no TLS certificate folder is set (libvirt's default is /etc/pki/qemu)"

    def migration_verify(self) -> None:
        for name in ("migrate_tls_x509_verify", "default_tls_x509_verify"):
            verify, setting = self.flag(name)
            if setting is None:
                continue
            if verify is False:
                self.add(
                    "migration-tls-unverified",
                    f"{name} = 0: a TLS migration accepts any client, so whoever reaches the migration port "
                    "can start one",
                    setting,
                )
            return  # the first one that is set decides; libvirt's default is 1

    def nbd_tls(self) -> None:
        enabled, setting = self.flag("nbd_tls")
        if not enabled:
            state = "is not set (default 0)" if setting is None else f"= {setting.raw}"
            self.add(
                "nbd-tls-disabled", f"nbd_tls {state}: NBD disks use TLS only where their XML says tls='yes'", setting
            )


def _unspecified(address: str) -> bool:
    text = address.strip()
    if not text:
        return True
    try:
        return ipaddress.ip_address(text.strip("[]")).is_unspecified
    except ValueError:
        return False  # a host name: only the administrator knows which network it is on


def _syntax_findings(parsed: Parsed) -> list[AuditFinding]:
    found = [
        AuditFinding("conf-unparsable", f"line {line}: {message}", f"line {line}") for line, message in parsed.errors
    ]
    if parsed.stopped:
        line = parsed.errors[-1][0]
        found.append(
            AuditFinding("audit-truncated", f"stopped after {MAX_ERRORS} syntax errors; lines past {line} not read")
        )
    first = parsed.settings
    found.extend(
        AuditFinding(
            "conf-duplicate-setting",
            f"{dup.name} is set again on line {dup.line} (= {dup.raw}); libvirt uses line "
            f"{first[dup.name].line} (= {first[dup.name].raw})",
            dup.where,
        )
        for dup in parsed.duplicates
    )
    return found


def audit(data: bytes) -> tuple[list[AuditFinding], dict[str, Any]]:
    """Findings and a small summary for one qemu.conf."""
    parsed = parse(decode(data))
    if not parsed.settings and parsed.errors:
        line, message = parsed.errors[0]
        raise AuditError(f"not a qemu.conf: no setting could be read (line {line}: {message})")
    checks = _Checks(parsed)
    checks.format_probing()
    checks.migration_address()
    checks.migration_host()
    checks.migration_tls()
    checks.migration_verify()
    checks.nbd_tls()
    summary = {"settings": len(parsed.settings), "lines": parsed.lines, "syntax_errors": len(parsed.errors)}
    return _syntax_findings(parsed) + checks.findings, summary
