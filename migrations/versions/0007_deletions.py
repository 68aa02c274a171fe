"""Deletion confirmations (issue 13 point 4, R13; PIPL 47).

- ``deletions``: one row per ended consent and API key that received ``allow`` for it; confirmed by that key.
- ``ix_verifications_allowed_consent``: a partial index of allowed verifications by consent, read when a
  consent ends. Only allows are indexed. On a large PostgreSQL ``verifications`` table, build it first with
  ``CREATE INDEX CONCURRENTLY`` under the same name and definition: this migration then finds it
  (``IF NOT EXISTS``) instead of holding writes to the table while it is built.
- ``ix_consents_updated_at``: the sweep finds the consents that ended lately by it.

New tables and indexes only: nothing is rebuilt.

The revision id ``0007d`` is re-chained when the branches of issue 13 are merged.

Revision ID: 0007d
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007d"
down_revision = "0006"
branch_labels = None
depends_on = None

ALLOWED = "decision = 'allow'"


def upgrade() -> None:
    op.create_table(
        "deletions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("confirmed_by", sa.String(length=64), nullable=True),
        sa.Column("overdue_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["consent_id"], ["consents.id"], name=op.f("fk_deletions_consent_id_consents")),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_deletions_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletions")),
        sa.UniqueConstraint("consent_id", "api_key_id", name=op.f("uq_deletions_consent_id_api_key_id")),
    )
    op.create_index(op.f("ix_deletions_org_id"), "deletions", ["org_id"], unique=False)
    op.create_index(op.f("ix_deletions_api_key_id"), "deletions", ["api_key_id"], unique=False)
    op.create_index(
        "ix_verifications_allowed_consent",
        "verifications",
        ["consent_id", "api_key_id"],
        unique=False,
        sqlite_where=sa.text(ALLOWED),
        postgresql_where=sa.text(ALLOWED),
        if_not_exists=True,
    )
    op.create_index("ix_consents_updated_at", "consents", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_consents_updated_at", table_name="consents")
    op.drop_index("ix_verifications_allowed_consent", table_name="verifications")
    op.drop_index(op.f("ix_deletions_api_key_id"), table_name="deletions")
    op.drop_index(op.f("ix_deletions_org_id"), table_name="deletions")
    op.drop_table("deletions")
