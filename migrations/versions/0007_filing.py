"""Filing with the cyberspace office (issue 13, R12, Measures Art. 15): the daily count of people with an
active consent, and the filings the organization recorded.

- ``filing_counts``: one row per organization and day (its primary key), the people counted that day.
- ``filings``: ``initial`` and ``change`` filings, with the purposes each covers.

New tables only: nothing existing is rebuilt (SQLite runs with foreign keys on).

Revision ID: 0007f
Revises: 0007a
Create Date: 2026-11-27 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007f"
down_revision = "0007a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filing_counts",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_filing_counts_org_id_organizations")),
        sa.PrimaryKeyConstraint("org_id", "day", name=op.f("pk_filing_counts")),
    )
    op.create_table(
        "filings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("filing_number", sa.String(length=100), nullable=False),
        sa.Column("purpose_codes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_filings_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filings")),
    )
    op.create_index(op.f("ix_filings_org_id"), "filings", ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_filings_org_id"), table_name="filings")
    op.drop_table("filings")
    op.drop_table("filing_counts")
