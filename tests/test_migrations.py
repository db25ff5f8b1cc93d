"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from meldpunt.store.db import create_db_engine
from meldpunt.store.models import Base


@pytest.mark.empty_db  # the migrations themselves, from nothing
def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = create_db_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
