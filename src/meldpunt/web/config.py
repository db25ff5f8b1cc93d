"""The web app's settings: the ``web`` section of the one settings object (``MELDPUNT_WEB_*``).

``WebConfig`` is the older name of :class:`meldpunt.settings.WebSettings`, kept for one release.
"""

from __future__ import annotations

from meldpunt.settings import WebSettings

WebConfig = WebSettings

__all__ = ["WebConfig", "WebSettings"]
