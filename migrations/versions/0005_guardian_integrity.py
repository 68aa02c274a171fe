"""Guardian integrity: the child's display name, withdrawal notes outside the audit trail, SMS reservations.

- ``guardian_requests.child_name_ciphertext``: the name the app shows the guardian (encrypted, erased).
- ``consents.end_note``: a withdrawal's free text, moved out of ``end_reason`` (which keeps a code).
- ``sms_messages.phone_hash`` nullable (erasure clears it); an index for the organization's daily budget.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: ``end_reason`` values the service itself writes; anything else was a person's or operator's words.
REASON_CODES = (
    "subject_erased",
    "guardian_withdrawal",
    "guardian_declined",
    "not_selected",
    "assessment_required",
    "guardian_request_expired",
    "guardian_request_locked",
    "guardian_age_reached",
    "retention_period_ended",
)


def upgrade() -> None:
    with op.batch_alter_table("guardian_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("child_name_ciphertext", sa.Text(), nullable=True))
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_note", sa.Text(), nullable=True))
    with op.batch_alter_table("sms_messages", schema=None) as batch_op:
        batch_op.alter_column("phone_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index("ix_sms_messages_org_created", ["org_id", "created_at"], unique=False)
    requests = sa.table("guardian_requests", sa.column("delivery", sa.String), sa.column("link_ciphertext", sa.Text))
    # An SMS request's link is no longer kept readable (a resend issues a new one).
    op.execute(requests.update().where(requests.c.delivery == "sms").values(link_ciphertext=None))
    consents = sa.table(
        "consents",
        sa.column("status", sa.String),
        sa.column("end_reason", sa.Text),
        sa.column("end_note", sa.Text),
    )
    op.execute(
        consents.update()
        .where(consents.c.status == "revoked", consents.c.end_reason.is_not(None))
        .where(consents.c.end_reason.not_in(REASON_CODES))
        .values(end_note=consents.c.end_reason, end_reason="withdrawn")
    )
    op.execute(
        consents.update()
        .where(consents.c.status == "revoked", consents.c.end_reason.is_(None))
        .values(end_reason="withdrawn")
    )


def downgrade() -> None:
    consents = sa.table("consents", sa.column("end_reason", sa.Text), sa.column("end_note", sa.Text))
    op.execute(consents.update().where(consents.c.end_note.is_not(None)).values(end_reason=consents.c.end_note))
    sms = sa.table("sms_messages", sa.column("phone_hash", sa.String))
    op.execute(sms.update().where(sms.c.phone_hash.is_(None)).values(phone_hash=""))
    with op.batch_alter_table("sms_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_messages_org_created")
        batch_op.alter_column("phone_hash", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_column("end_note")
    with op.batch_alter_table("guardian_requests", schema=None) as batch_op:
        batch_op.drop_column("child_name_ciphertext")
