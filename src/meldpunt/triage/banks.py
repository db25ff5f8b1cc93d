"""The bank service: importing a hash list and deleting a bank, for the CLI (``meldpunt bank``) and
the web (``/banks``) alike. The rules live here, not in either front end: every import is audited
in its own transaction (both stand or neither), and the hotline's own bank (``triage.own_bank``,
fed by final classifications) cannot be deleted. Re-exports the store's bank types the front ends
need, so they do not reach into :mod:`meldpunt.store`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from meldpunt.audit import AuditEvent, record
from meldpunt.store.banks import (
    POLICIES,
    BankError,
    BankInfo,
    BankRepository,
    ImportRejected,
    ImportResult,
)

__all__ = [
    "POLICIES",
    "BankError",
    "BankInfo",
    "BankRepository",
    "BankService",
    "ImportRejected",
    "ImportResult",
    "OwnBankProtected",
]


class OwnBankProtected(BankError):
    """The hotline's own bank cannot be deleted: final classifications are written into it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name!r} is the hotline's own bank: final classifications are written into it, "
            "so it cannot be deleted"
        )
        self.name = name


class BankService:
    """Bank actions with their rules, over a :class:`BankRepository`."""

    def __init__(self, repo: BankRepository, own_bank: str) -> None:
        self.repo = repo
        self.own_bank = own_bank

    def protected(self, name: str) -> bool:
        """Whether bank ``name`` may not be deleted (the hotline's own bank)."""
        return name == self.own_bank

    def delete(self, name: str) -> int:
        """Delete a bank and its entries; returns how many entries went. :class:`OwnBankProtected`
        for the hotline's own bank, :class:`BankError` for no such bank."""
        if self.protected(name):
            raise OwnBankProtected(name)
        return self.repo.delete_bank(name)

    def import_list(
        self,
        name: str,
        records: Iterable[Any],
        *,
        actor: str,
        list_format: str,
        source_name: str,
        audit_details: dict[str, Any] | None = None,
        **options: Any,
    ) -> ImportResult:
        """Write a list's ``records`` into bank ``name`` (:meth:`BankRepository.import_records`,
        whose keyword ``options`` pass through) and audit it as ``actor`` in the same transaction:
        entries, skipped, unsupported, format, source, the file's SHA-256, whether it replaced the
        bank, plus ``audit_details`` (e.g. ``via``)."""

        def finish(conn: Connection, result: ImportResult) -> None:
            details: dict[str, Any] = {
                "entries": result.entries,
                "skipped": result.skipped,
                "unsupported": result.unsupported,
                "format": list_format,
                "source": source_name,
                "sha256": result.source_sha256,
                "replace": bool(options.get("replace", False)),
                **(audit_details or {}),
            }
            record(conn, AuditEvent(actor, "bank.import", f"bank:{name}"[:200], details))

        return self.repo.import_records(
            name, records, source_name=source_name, fmt=list_format, finish=finish, **options
        )
