"""The LVM2 metadata text format, parsed without recursion: sections, ``key = value`` and flat lists.

Bounded by the text cap of the caller, MAX_DEPTH nested sections and MAX_ITEMS values; anything past a
bound raises :class:`TextError` (the caller turns it into a finding) instead of growing.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DEPTH = 8
MAX_ITEMS = 4096
TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|[{}\[\]=,]|[^\s{}\[\]=,"#]+')


class TextError(Exception):
    """The text is not LVM2 metadata or passes a bound."""


def _value(token: str) -> Any:
    if token.startswith('"'):
        return token[1:-1].replace('\\"', '"')[:4096]
    try:
        return int(token)
    except ValueError:
        return token[:4096]


def parse(text: str) -> dict[str, Any]:
    tokens = [m.group() for m in TOKEN.finditer(text) if not m.group()[0].isspace() and m.group()[0] != "#"]
    root: dict[str, Any] = {}
    stack = [root]
    items = i = 0
    while i < len(tokens):
        items += 1
        if items > MAX_ITEMS:
            raise TextError(f"more than {MAX_ITEMS} items")
        token = tokens[i]
        if token == "}":
            if len(stack) == 1:
                raise TextError("a '}' closes no section")
            stack.pop()
            i += 1
        elif i + 1 < len(tokens) and tokens[i + 1] == "{":
            if len(stack) > MAX_DEPTH:
                raise TextError(f"sections nested deeper than {MAX_DEPTH}")
            section: dict[str, Any] = {}
            stack[-1][token] = section
            stack.append(section)
            i += 2
        elif i + 2 < len(tokens) and tokens[i + 1] == "=":
            if tokens[i + 2] == "[":
                close = tokens.index("]", i + 3) if "]" in tokens[i + 3 :] else -1
                if close < 0 or "[" in tokens[i + 3 : close]:
                    raise TextError(f"list of {token} is not closed or nests")
                stack[-1][token] = [_value(t) for t in tokens[i + 3 : close] if t != ","][:MAX_ITEMS]
                i = close + 1
            else:
                stack[-1][token] = _value(tokens[i + 2])
                i += 3
        else:
            raise TextError(f"unexpected {token[:32]!r}")
    if len(stack) != 1:
        raise TextError("a section is not closed")
    return root
