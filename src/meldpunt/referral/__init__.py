"""Police referral packages (VICS 2.0 JSON, CSV, HTML and PDF summary, a signed manifest) and the
CyberTipline-style XML export; pure formats, no database. Built in #11.

- ``case``     the facts of a referral (:class:`Case`), gathered by ``act.referrals``
- ``vics``     VICS 2.0 ``#Cases`` JSON with the category mapping per national profile, as data
- ``table``    CSV, one row per medium, safe from formula injection
- ``summary``  the readable summary: HTML (Jinja2) and PDF (ReportLab)
- ``package``  the package on disk (folder and zip), its signed manifest, and ``verify``

Pure: they import only ``domain``, ``settings`` and the bank formats' VICS writer (itself pure), so
what a package holds is decided here and tested without a database.
"""

from meldpunt.referral.case import Case, CaseItem, Decision, Event, Hosting, Medium
from meldpunt.referral.package import (
    Package,
    PackageError,
    PackageFile,
    Problem,
    VerifyResult,
    build_package,
    remove_package,
    verify,
)

__all__ = [
    "Case",
    "CaseItem",
    "Decision",
    "Event",
    "Hosting",
    "Medium",
    "Package",
    "PackageError",
    "PackageFile",
    "Problem",
    "VerifyResult",
    "build_package",
    "remove_package",
    "verify",
]
