"""Keys an organization manages itself (issue 14): ``api_keys.name`` and ``api_keys.last_used_at``.

- ``name``: what the key is for, as its organization calls it; keys made before have none (NULL).
- ``last_used_at``: when the key last authenticated a request, written at most once a minute per key (so
  the verify path does not write a row per request); NULL until first used after this revision.

Two nullable columns added: nothing existing is rebuilt or rewritten.

Revision ID: 0008k
Revises: 0007e
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008k"
down_revision = "0007e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("name")
