"""Strings from images never reach a terminal or a view as control text."""

from __future__ import annotations

from workbench.render.textsafe import printable


def test_escapes_terminal_controls() -> None:
    shown = printable("a\x1b[31mred\x07\r\nb\x9bc")
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "\x9b" not in shown
    assert shown == "a\\x1b[31mred\\x07\\x0d\\x0ab\\x9bc"


def test_escapes_bidirectional_overrides() -> None:
    shown = printable("evil\u202egpj.exe\u2066x\u200f")
    assert shown == "evil\\u202egpj.exe\\u2066x\\u200f"


def test_caps_length_and_marks_the_cut() -> None:
    assert printable("x" * 1000, cap=10) == "x" * 10 + "…"
    assert printable("short", cap=10) == "short"


def test_keeps_ordinary_text() -> None:
    assert printable("/var/lib/libvirt/images/base ümlaut.qcow2") == "/var/lib/libvirt/images/base ümlaut.qcow2"
