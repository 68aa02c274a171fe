"""Status lists: revocation lists in the IETF Token Status List format; consents get an index in one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:22:33.465439
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_lists",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("next_idx", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_status_lists_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_lists")),
    )
    with op.batch_alter_table("status_lists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_lists_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_list_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("status_idx", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_consents_status_list_id_status_idx"), ["status_list_id", "status_idx"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_consents_status_list_id_status_lists"), "status_lists", ["status_list_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_consents_status_list_id_status_lists"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_consents_status_list_id_status_idx"), type_="unique")
        batch_op.drop_column("status_idx")
        batch_op.drop_column("status_list_id")

    with op.batch_alter_table("status_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_lists_org_id"))

    op.drop_table("status_lists")
