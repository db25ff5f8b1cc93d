"""Text from outside (hash lists, file names, labels) made safe to print on a terminal.

A list is written by whoever sent it: a line may hold escape sequences (``ESC]52;...`` writes the
clipboard, ``ESC[2J`` clears the screen, a lone CR overwrites what was printed) or Rich markup
(``zz[/]`` makes Rich raise a MarkupError). :func:`printable` shows every control character as a
visible escape (``\\x1b``); :func:`markup_safe` also escapes Rich markup, for text that goes
inside a markup string. Our own messages keep their markup; what came from outside never has any.
"""

from __future__ import annotations

import re

from rich.markup import escape

#: C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    return m.group().encode("unicode_escape").decode("ascii")


def printable(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\n``, ``\\u202e``)."""
    return _CONTROL.sub(_visible, str(text))


def markup_safe(text: object) -> str:
    """``text`` for the inside of a Rich markup string: printable, its markup escaped."""
    return escape(printable(text))
