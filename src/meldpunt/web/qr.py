"""The enrolment page's QR code: the otpauth URI as an SVG drawn on the server (no JavaScript, no
image request, nothing sent elsewhere), by the ``segno`` library."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(text: str) -> Markup:
    """``text`` as an inline ``<svg>`` QR code (error correction M, 4-module quiet zone), dark on
    white whatever the page's colours, sized by CSS (``.qr svg``). No ``style`` attribute: the
    page's Content-Security-Policy allows none."""
    code = segno.make(text, error="m", micro=False)
    # segno writes only paths and numbers: the text is drawn as modules, never put in the markup
    return Markup(
        code.svg_inline(
            scale=4, border=4, dark="#000", light="#fff", svgclass="qr-code", lineclass=None, omitsize=True
        )
    )
