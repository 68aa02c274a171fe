"""Run the Alembic migrations against the app's database.

They live in the repository's top-level ``migrations/``, which is installed as the package
``service.migrations`` (pyproject.toml maps it), in a wheel as in an editable install: they are found
through the import system, never through the source tree's layout.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from service.keys.crypto import DataProtector


def migrations_folder() -> str:
    return str(files("service.migrations"))


def alembic_config(engine: Engine, protector: DataProtector | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", migrations_folder())
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    # The data key, for a downgrade that must put encrypted data back in clear (0007).
    config.attributes["protector"] = protector
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str, *, protector: DataProtector | None = None) -> None:
    """Downgrade; below 0007 the app's ``DataProtector`` is needed to decrypt people's data back."""
    command.downgrade(alembic_config(engine, protector), revision)


def current_revision(engine: Engine) -> str:
    """The revision the database is at (the heads, comma-separated, should there ever be several)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return ",".join(MigrationContext.configure(connection).get_current_heads()) or "base"
