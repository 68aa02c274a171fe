"""Guardian flow: guardian requests, their links and SMS records; consents learn their guardian request.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:04:43.895573
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guardian_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("delivery", sa.String(length=8), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("guardian_relationship", sa.String(length=24), nullable=False),
        sa.Column("phone_ciphertext", sa.Text(), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_masked", sa.String(length=32), nullable=False),
        sa.Column("link_ciphertext", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.Column("delivery_error", sa.String(length=64), nullable=True),
        sa.Column("otp_hash", sa.String(length=64), nullable=True),
        sa.Column("otp_expires_at", sa.DateTime(), nullable=True),
        sa.Column("otp_failures", sa.Integer(), nullable=False),
        sa.Column("otp_verified_at", sa.DateTime(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_guardian_requests_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_guardian_requests_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian_requests")),
    )
    with op.batch_alter_table("guardian_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guardian_requests_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guardian_requests_phone_hash"), ["phone_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_guardian_requests_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "guardian_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["guardian_requests.id"], name=op.f("fk_guardian_links_request_id_guardian_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_guardian_links_token_hash")),
    )
    with op.batch_alter_table("guardian_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guardian_links_request_id"), ["request_id"], unique=False)

    op.create_table(
        "sms_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_sms_messages_org_id_organizations")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["guardian_requests.id"], name=op.f("fk_sms_messages_request_id_guardian_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_messages")),
    )
    with op.batch_alter_table("sms_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_messages_org_id"), ["org_id"], unique=False)
        batch_op.create_index("ix_sms_messages_phone_kind_created", ["phone_hash", "kind", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_messages_request_id"), ["request_id"], unique=False)

    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guardian_request_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_consents_guardian_request_id"), ["guardian_request_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_consents_guardian_request_id_guardian_requests"),
            "guardian_requests",
            ["guardian_request_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_consents_guardian_request_id_guardian_requests"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_consents_guardian_request_id"))
        batch_op.drop_column("guardian_request_id")

    with op.batch_alter_table("sms_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_messages_request_id"))
        batch_op.drop_index("ix_sms_messages_phone_kind_created")
        batch_op.drop_index(batch_op.f("ix_sms_messages_org_id"))

    op.drop_table("sms_messages")
    with op.batch_alter_table("guardian_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardian_links_request_id"))

    op.drop_table("guardian_links")
    with op.batch_alter_table("guardian_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardian_requests_subject_id"))
        batch_op.drop_index(batch_op.f("ix_guardian_requests_phone_hash"))
        batch_op.drop_index(batch_op.f("ix_guardian_requests_org_id"))

    op.drop_table("guardian_requests")
