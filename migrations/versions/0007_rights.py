"""People's rights (PIPL 44-50, R16): access links to the person's page, and the requests filed there.

- ``access_links``: a random token per link, stored as SHA-256 only, bound to one subject, expiring.
- ``rights_requests``: correction, deletion and complaint requests with their due date (15 working days),
  the person's words (``details``) and the organization's answer (``outcome``), both erased with the subject.

New tables only: nothing existing is rebuilt or rewritten.

Revision ID: 0007r
Revises: 0007d
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007r"
down_revision = "0007d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_access_links_org_id_organizations")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_access_links_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_access_links_token_hash")),
    )
    op.create_index(op.f("ix_access_links_org_id"), "access_links", ["org_id"], unique=False)
    op.create_index(op.f("ix_access_links_subject_id"), "access_links", ["subject_id"], unique=False)
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_rights_requests_org_id_organizations")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_rights_requests_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_requests")),
    )
    op.create_index("ix_rights_requests_org_id_id", "rights_requests", ["org_id", "id"], unique=False)
    op.create_index(op.f("ix_rights_requests_subject_id"), "rights_requests", ["subject_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rights_requests_subject_id"), table_name="rights_requests")
    op.drop_index("ix_rights_requests_org_id_id", table_name="rights_requests")
    op.drop_table("rights_requests")
    op.drop_index(op.f("ix_access_links_subject_id"), table_name="access_links")
    op.drop_index(op.f("ix_access_links_org_id"), table_name="access_links")
    op.drop_table("access_links")
