"""The survivor's statement (#12): a signed-in case's timeline and hashes as a PDF.

The survivor pages translate (they own the catalogue) and hand over the words and the timeline's
sentences; this module adds what only the service knows (the case's hashes, its label, today's
date on the injected clock) and has :mod:`meldpunt.referral.statement` draw it. The web may not
import the referral room; the act room may.
"""

from __future__ import annotations

from collections.abc import Sequence

from meldpunt.act import survivors
from meldpunt.act.context import ActNeeds
from meldpunt.referral.statement import Statement, StatementWords, statement_pdf

__all__ = ["StatementWords", "build"]


def build(services: ActNeeds, case_id: int, words: StatementWords, facts: Sequence[tuple[str, str]]) -> bytes:
    """The statement's PDF bytes; :class:`~meldpunt.act.survivors.SurvivorError` when the case is
    gone (withdrawn meanwhile)."""
    data = survivors.export(services, case_id)
    hashes = [(h["type"], h["value"]) for h in data["hashes"]]
    made = services.clock.now().date().isoformat()
    return statement_pdf(
        Statement(survivors.label(services, case_id), made, words, facts=list(facts), hashes=hashes)
    )
