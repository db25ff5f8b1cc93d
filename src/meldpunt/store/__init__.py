"""Storage: SQLAlchemy tables, Alembic migrations and the repositories the services use."""
