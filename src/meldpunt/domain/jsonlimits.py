"""JSON from outside, read with a depth limit: nesting 100,000 deep costs a scan, not a crash.

Python's ``json`` recurses once per level: a few hundred KB of ``[`` end in a ``RecursionError``
(a 500 on the web), and streaming parsers that keep a path per event spend memory quadratic in the
depth. Every parser of outside data (the match API's body, vPDQ values, a CSV's ``vics`` cells)
checks the depth first with :func:`check_depth`, one linear pass over the brackets and quotes
outside strings, then parses as usual; :func:`loads` does both.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: deeper than any list format or API body we read needs (a VICS Case nests about 9 levels)
MAX_DEPTH = 64

_SPECIAL = re.compile(r'[\[\]{}"\\]')
_SPECIAL_BYTES = re.compile(rb'[\[\]{}"\\]')


class JsonTooDeep(ValueError):
    """A JSON document nested deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def check_depth(text: str | bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JsonTooDeep` if ``text`` opens more than ``max_depth`` arrays or objects inside
    each other (brackets inside strings do not count). Linear in ``len(text)``; says nothing about
    whether the rest is valid JSON (the parser decides that)."""
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= max_depth:
            return
        found = ((m.start(), m.group().decode()) for m in _SPECIAL_BYTES.finditer(text))
    else:
        if text.count("[") + text.count("{") <= max_depth:
            return
        found = ((m.start(), m.group()) for m in _SPECIAL.finditer(text))
    depth = 0
    in_string = False
    escaped = -1  # the position a backslash inside a string escapes
    for i, c in found:
        if in_string:
            if i == escaped:
                continue
            if c == "\\":
                escaped = i + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(max_depth)
        elif c in "]}":
            depth -= 1


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` after :func:`check_depth`; raises ``JsonTooDeep`` or ``json.JSONDecodeError``
    (both ``ValueError``)."""
    check_depth(text, max_depth)
    return json.loads(text)
