"""The HTTP app: the public reporting form (nl, fr, en), the partner/platform API, and the staff
workspace behind sign-in: the analysts' queue, items, reveals and classification
(``workspace`` = ``ws_queue``, ``ws_item``, ``ws_decisions``), seniors' disagreements and
decisions, the police liaison's and seniors' oversight, banks, the administrator's pages and each
staff member's ``/me`` and preferences.

The web only translates: a handler reads the form, calls one service method (``triage``,
``accounts``, ``audit``, ``wellness``, the bank service in ``triage.banks``) and renders. No module
here imports ``meldpunt.store`` or SQLAlchemy (``tests/test_architecture.py`` holds it to that).

``create_app(services)`` builds it; ``run(services, host, port)`` serves it with uvicorn without an
access log (no reporter's address is ever written anywhere).
"""

from meldpunt.web.app import create_app, run, uvicorn_log_config
from meldpunt.web.config import WebConfig

__all__ = ["WebConfig", "create_app", "run", "uvicorn_log_config"]
