"""Storage: SQLAlchemy tables, Alembic migrations and the repositories the services use."""

# Every table module is imported here, so Base.metadata is complete whichever one is used first.
from meldpunt.store import (
    accounts,
    acting,
    audit,
    entities,
    evidence,
    forwarding,
    iccam,
    models,
    partners,
    referrals,
    reports,
    survivors,
    survivors_abroad,
    triage,
    wellness,
)

__all__ = [
    "accounts",
    "acting",
    "audit",
    "entities",
    "evidence",
    "forwarding",
    "iccam",
    "models",
    "partners",
    "referrals",
    "reports",
    "survivors",
    "survivors_abroad",
    "triage",
    "wellness",
]
