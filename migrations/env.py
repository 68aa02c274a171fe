"""Alembic environment: runs against the engine the app (or a test) hands over, else the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

import service.models  # noqa: F401  (registers every table)
from service.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Hardened like warehouse: never wait long for a lock held by live traffic.
                connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                connection.exec_driver_sql("SET LOCAL statement_timeout = '300s'")
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `consent-gate db upgrade`")
run_migrations_online()
