"""The HTTP app: the public reporting form, the partner/platform API, a minimal internal page.

``create_app(services)`` builds it; ``run(services, host, port)`` serves it with uvicorn without an
access log (no reporter's address is ever written anywhere).
"""

from meldpunt.web.app import create_app, run, uvicorn_log_config
from meldpunt.web.config import WebConfig

__all__ = ["WebConfig", "create_app", "run", "uvicorn_log_config"]
