"""A survivor's case in the demo (#12): registered on the first of the nine played days, with the
hashes of one benign demo picture, so a newcomer can sign in at ``/survivor/sign-in`` and read a
timeline that the real services wrote.

The picture is ``lake-at-dawn.jpg`` (a generated landscape in the demo media). Its hashes are
computed here as the survivor's browser would (the server's signals: PDQ of the picture as shown,
MD5, SHA-256) and registered through :func:`meldpunt.act.survivors.register`, with consent that
they travel with forwarded items and a contact address in the demo's mailbox. The web never shows
the original: Elsewhere Hosting (Great Britain) serves an edited copy (cropped, resized,
re-encoded: no exact hash matches, PDQ does) on ``/act/lake.html``, and the page in the
Netherlands that the demo forwards to its partner hotline shows the copy too. The walk finds the
copies; the survivor scan links them to the case; routing, notices, forwarding and re-checks do
the rest. The copy is on the demo's ``auto`` list (as known material often is), so no analyst
needs to look for the story to play; the workspace marks the items as a registered case's.

Why the case code is random and printed: a case code is the survivor's only key, drawn from 120
random bits by the service — the demo shows it in its banner as it shows the staff passwords.
The passphrase is fixed (:data:`PASSPHRASE`) so a newcomer can type it from the banner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meldpunt.demo import MEDIA

#: the survivor's picture (in the demo media, so a newcomer can also hash it in the browser)
PICTURE = "lake-at-dawn.jpg"
#: the copy the demo web serves (cropped, resized and re-encoded: only PDQ matches it)
COPY = "lake-at-dawn-edited-copy.jpg"
#: the page at Elsewhere Hosting (Great Britain) that shows the copy
PAGE = "/act/lake.html"
PAGES = {PAGE: f'<img src="/media/{COPY}" alt=""><p>lake</p>'}
#: the image tag the page in the Netherlands adds (beside its own picture)
ABROAD_IMG = f'<img src="/media/{COPY}" alt="">'
#: the demo survivor's passphrase, printed in the banner (the case code is random)
PASSPHRASE = "demo survivor passphrase"
#: where the "there is news" messages go (the demo's mailbox takes every address)
CONTACT = "survivor@mail.demo.test"
#: the case's language (the statement PDF's, unless the link asks for another; the news mails')
LANGUAGE = "en"


@dataclass(frozen=True)
class SurvivorDemo:
    case_id: int
    #: shown once by the service: the banner prints it
    code: str
    passphrase: str
    hashes: int


def picture_hashes(settings: Any = None) -> list[tuple[str, str]]:
    """The picture's hashes as the survivor's browser sends them: PDQ (of the picture as shown;
    the stored pixels' too when an EXIF orientation turns it), MD5 and SHA-256."""
    from meldpunt.signals.core import hash_file

    signals = hash_file(MEDIA / PICTURE, settings)
    pairs = [("md5", signals.md5), ("sha256", signals.sha256)]
    for pdq in (signals.pdq, signals.pdq_stored):
        if pdq and ("pdq", pdq) not in pairs:
            pairs.append(("pdq", pdq))
    return pairs


def register_case(services: Any) -> SurvivorDemo:
    """The demo survivor's case, registered now (the played clock's day 0) through the real
    service: its hashes are matched against every medium already seen (a job) and every medium
    seen later (the scan tick)."""
    from meldpunt.act.survivors import register

    done = register(
        services,
        passphrase=PASSPHRASE,
        hashes_=picture_hashes(services.settings),
        contact=CONTACT,
        language=LANGUAGE,
        consent_forward=True,
    )
    return SurvivorDemo(done.case_id, done.code, PASSPHRASE, done.hashes)
