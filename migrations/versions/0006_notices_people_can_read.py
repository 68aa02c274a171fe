"""Notices people can read: a purpose's texts by locale, how faces are processed, the effect on rights,
where they are captured; an organization's protection officer and complaint channel (issue 12, R1).

- ``purposes.name``, ``description``, ``necessity``, ``alternative`` become locale maps (JSON). The text a
  purpose had is kept under ``zh-CN``, the default required locale.
- ``purposes.processing_method`` and ``rights_impact`` (locale maps, empty for existing purposes until a new
  purpose or notice states them) and ``capture`` (``device`` for existing purposes: a fixed camera must be a
  registered device, the stricter reading).
- ``organizations.pipo_name``, ``pipo_contact``, ``complaint_channel``; ``contact`` is required (existing
  organizations without one keep the empty text until ``PATCH /v1/organization``).

Upgrade and downgrade are tested with rows present (``tests/test_migrations.py``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TEXTS = ("name", "description", "necessity", "alternative")
LOCALE = "zh-CN"

# No table is rebuilt: other tables reference ``purposes``, and SQLite (which runs with foreign keys on)
# refuses to drop a referenced table inside the migration's transaction. On SQLite a column's declared type
# is only an affinity, so the texts become JSON in place; on PostgreSQL the columns change type ``USING``
# the conversion. New columns are added (SQLite adds a column in place) and filled.


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column in TEXTS:  # column names are this file's constants: nothing here comes from outside
        if sqlite:
            op.execute(f"UPDATE purposes SET {column} = json_object('{LOCALE}', {column})")  # noqa: S608
        else:
            op.execute(
                f"ALTER TABLE purposes ALTER COLUMN {column} TYPE JSON USING json_build_object('{LOCALE}', {column})"
            )
    for column in ("processing_method", "rights_impact"):
        op.add_column("purposes", sa.Column(column, sa.JSON(), nullable=True))
    op.add_column("purposes", sa.Column("capture", sa.String(length=16), nullable=True))
    op.execute("UPDATE purposes SET processing_method = '{}', rights_impact = '{}', capture = 'device'")
    if not sqlite:  # SQLite cannot add NOT NULL to an existing column without a rebuild; the model sets them
        for column in ("processing_method", "rights_impact", "capture"):
            op.alter_column("purposes", column, nullable=False)
    for column, length in (("pipo_name", 200), ("pipo_contact", 200), ("complaint_channel", 500)):
        op.add_column("organizations", sa.Column(column, sa.String(length=length), nullable=True))


def downgrade() -> None:
    """Back to one text per field: the zh-CN text, else the English, else nothing."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column in (
        ("organizations", "complaint_channel"),
        ("organizations", "pipo_contact"),
        ("organizations", "pipo_name"),
        ("purposes", "capture"),
        ("purposes", "rights_impact"),
        ("purposes", "processing_method"),
    ):
        if sqlite:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # SQLite 3.35+ drops in place
        else:
            op.drop_column(table, column)
    for column in TEXTS:
        if sqlite:
            op.execute(
                f"UPDATE purposes SET {column} = coalesce(json_extract({column}, '$.\"{LOCALE}\"'), "  # noqa: S608
                f"json_extract({column}, '$.en'), '')"
            )
        else:
            target = "VARCHAR(200)" if column == "name" else "TEXT"
            op.execute(
                f"ALTER TABLE purposes ALTER COLUMN {column} TYPE {target} "
                f"USING coalesce({column} ->> '{LOCALE}', {column} ->> 'en', '')"
            )
