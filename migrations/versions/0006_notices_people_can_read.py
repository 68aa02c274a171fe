"""Notices people can read: a purpose's texts by locale, how faces are processed, the effect on rights,
where they are captured; an organization's protection officer and complaint channel (issue 12, R1).

- ``purposes.name``, ``description``, ``necessity``, ``alternative`` become locale maps (JSON). The text a
  purpose had is kept under ``zh-CN``, the default required locale.
- ``purposes.processing_method`` and ``rights_impact`` (locale maps, empty for existing purposes until a new
  purpose or notice states them) and ``capture`` (``device`` for existing purposes: a fixed camera must be a
  registered device, the stricter reading).
- ``organizations.pipo_name``, ``pipo_contact``, ``complaint_channel``; ``contact`` is required (existing
  organizations without one keep the empty text until ``PATCH /v1/organization``).

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


def _convert(columns: tuple[str, ...], to_json: bool) -> None:
    """Move each text column through a new column of the other type, converting every row in Python
    (the same on SQLite and PostgreSQL)."""
    new_type: sa.types.TypeEngine = sa.JSON() if to_json else sa.Text()
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        for column in columns:
            batch_op.add_column(sa.Column(f"{column}_new", new_type, nullable=True))
    old_type: sa.types.TypeEngine = sa.Text() if to_json else sa.JSON()
    purposes = sa.table(
        "purposes",
        sa.column("id", sa.String),
        *(sa.column(column, old_type) for column in columns),
        *(sa.column(f"{column}_new", new_type) for column in columns),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(purposes)).mappings().all():
        values = {}
        for column in columns:
            value = row[column]
            if to_json:
                values[f"{column}_new"] = {LOCALE: value} if value else {}
            else:
                values[f"{column}_new"] = (value or {}).get(LOCALE) or next(iter((value or {}).values()), "")
        connection.execute(purposes.update().where(purposes.c.id == row["id"]).values(**values))
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        for column in columns:
            batch_op.drop_column(column)
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        for column in columns:
            batch_op.alter_column(f"{column}_new", new_column_name=column, existing_type=new_type, nullable=False)


def upgrade() -> None:
    _convert(TEXTS, to_json=True)
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("processing_method", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("rights_impact", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("capture", sa.String(length=16), nullable=True))
    purposes = sa.table(
        "purposes",
        sa.column("processing_method", sa.JSON),
        sa.column("rights_impact", sa.JSON),
        sa.column("capture", sa.String),
    )
    op.execute(purposes.update().values(processing_method={}, rights_impact={}, capture="device"))
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.alter_column("processing_method", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("rights_impact", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("capture", existing_type=sa.String(length=16), nullable=False)
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pipo_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("pipo_contact", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("complaint_channel", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("complaint_channel")
        batch_op.drop_column("pipo_contact")
        batch_op.drop_column("pipo_name")
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.drop_column("capture")
        batch_op.drop_column("rights_impact")
        batch_op.drop_column("processing_method")
    _convert(TEXTS, to_json=False)
