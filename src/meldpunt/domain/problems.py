"""One reason a service refuses something, as data a page can translate.

A :class:`Problem` carries an English message template (the msgid the web's ``.po`` files
translate) and the values that fill it in; ``code`` names the reason for machines (the API's 422
body). Services raise their errors with a list of these; ``str(problem)`` is the English sentence
the CLI and the API's ``detail`` show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """``message`` is English with ``{placeholders}`` (the id a page translates); ``values`` fill
    them in; ``code`` is a stable name for the reason (empty where only the message is used)."""

    message: str
    values: Mapping[str, str] = field(default_factory=dict)
    code: str = ""

    def __str__(self) -> str:
        return self.message.format(**self.values)
