"""Audit-log helpers: tampering with a stored row to prove the chain notices."""

from __future__ import annotations

from sqlalchemy import Engine, text


def tamper(engine: Engine, *statements: str) -> None:
    """What someone with the database's keys could do: lift the append-only triggers and edit."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
        else:
            for name in ("audit_log_no_update", "audit_log_no_delete", "audit_head_keep"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        for s in statements:
            conn.exec_driver_sql(s)
