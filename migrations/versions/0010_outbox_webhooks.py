"""Issue 15: the outbox (SMS and webhook deliveries sent after the commit) and the webhooks.

New tables only: nothing existing is rewritten.

Revision ID: 0010o
Revises: 0009s
Create Date: 2026-12-20 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010o"
down_revision = "0009s"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=True),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("sms_message_id", sa.String(length=36), nullable=True),
        sa.Column("webhook_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload_ciphertext", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_outbox_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_org_id"), "outbox", ["org_id"], unique=False)
    op.create_index(op.f("ix_outbox_subject_id"), "outbox", ["subject_id"], unique=False)
    op.create_index("ix_outbox_status_next_attempt", "outbox", ["status", "next_attempt_at"], unique=False)
    op.create_index("ix_outbox_webhook_created_id", "outbox", ["webhook_id", "created_at", "id"], unique=False)
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_webhooks_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_org_id"), "webhooks", ["org_id"], unique=False)
    op.create_index("ix_webhooks_org_created_id", "webhooks", ["org_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhooks_org_created_id", table_name="webhooks")
    op.drop_index(op.f("ix_webhooks_org_id"), table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_index("ix_outbox_webhook_created_id", table_name="outbox")
    op.drop_index("ix_outbox_status_next_attempt", table_name="outbox")
    op.drop_index(op.f("ix_outbox_subject_id"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_org_id"), table_name="outbox")
    op.drop_table("outbox")
