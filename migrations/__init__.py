"""Alembic migrations; installed as ``service.migrations`` (pyproject.toml), found by ``service.db.migrate``."""
