"""The security review of issue 14: lists read in index order, which key created a key, report links revoked.

- ``ix_<table>_org_created_id`` on ``(org_id, created_at, id)`` for every table the API lists: a page of a
  list is the organization's rows after the cursor in ``(created_at, id)`` order (``service.domain.pages``);
  with this index it reads ``limit`` rows in order, instead of finding and sorting all the organization's.
  On PostgreSQL they are built ``CONCURRENTLY``, outside the migration's transaction, so that writes to
  those tables go on meanwhile; ``IF NOT EXISTS`` lets a run that stopped half-way be run again.
- ``api_keys.created_by``: the key that created the key through the API; NULL for keys made on the command
  line. Keys made before this revision get theirs from the audit trail: the actor of their
  ``api_key.created`` event (``api_key:<id>``), which only the API wrote (the command line's is ``cli``).

- ``organizations.report_links_valid_after``: report links issued up to this second no longer open
  (``DELETE /v1/reports/compliance/links``); NULL until the organization first revokes them.

Indexes and two nullable columns added, one filled for the keys the API made: nothing else is rewritten.

Revision ID: 0009s
Revises: 0008k
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009s"
down_revision = "0008k"
branch_labels = None
depends_on = None

LISTED_TABLES = (
    "subjects",
    "consents",
    "guardian_requests",
    "deletions",
    "api_keys",
    "purposes",
    "devices",
    "assessments",
    "incidents",
    "rights_requests",
)


def _index(table: str) -> str:
    return f"ix_{table}_org_created_id"


def _change_indexes_concurrently(*, drop: bool) -> None:
    """Build (or drop) the indexes without blocking writes: PostgreSQL's ``CONCURRENTLY``, which cannot run in
    a transaction. A concurrent build that failed leaves an invalid index behind: it is dropped and built
    again, never taken for done."""
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        for table in LISTED_TABLES:
            invalid = bind.execute(
                sa.text(
                    "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid "
                    "WHERE pg_class.relname = :name AND NOT pg_index.indisvalid"
                ),
                {"name": _index(table)},
            ).first()
            if drop or invalid:
                op.drop_index(_index(table), table_name=table, postgresql_concurrently=True, if_exists=True)
            if not drop:
                op.create_index(
                    _index(table),
                    table,
                    ["org_id", "created_at", "id"],
                    postgresql_concurrently=True,
                    if_not_exists=True,
                )
    # The migration's transaction was committed for the block, and a new one begun: harden it again, as
    # migrations/env.py did the first (for the revisions that may follow in this run).
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("SET LOCAL statement_timeout = '300s'")


API_ACTOR = "api_key:"


def _fill_created_by() -> None:
    """``created_by`` of the keys made through the API before this revision, from their audit events (one
    read of the audit trail, then one update per such key: few, since keys are few)."""
    bind = op.get_bind()
    made = bind.execute(
        sa.text(
            "SELECT object_id, actor FROM audit_events WHERE action = 'api_key.created' AND object_type = 'api_key' "
            "AND actor LIKE :api"
        ),
        {"api": API_ACTOR + "%"},
    ).all()
    if made:
        bind.execute(
            sa.text("UPDATE api_keys SET created_by = :creator WHERE id = :id AND created_by IS NULL"),
            [{"id": key_id, "creator": actor[len(API_ACTOR) :][:36]} for key_id, actor in made],
        )


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("created_by", sa.String(length=36), nullable=True))
    op.add_column("organizations", sa.Column("report_links_valid_after", sa.DateTime(), nullable=True))
    _fill_created_by()
    if op.get_bind().dialect.name == "postgresql":
        _change_indexes_concurrently(drop=False)
    else:
        for table in LISTED_TABLES:
            op.create_index(_index(table), table, ["org_id", "created_at", "id"])


def downgrade() -> None:
    for table, column in (("api_keys", "created_by"), ("organizations", "report_links_valid_after")):
        if op.get_bind().dialect.name == "sqlite":
            # In place (SQLite 3.35+): a batch would copy the table and drop the original, which every
            # table that refers to organizations forbids while foreign keys are on.
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
    if op.get_bind().dialect.name == "postgresql":
        _change_indexes_concurrently(drop=True)
    else:
        for table in LISTED_TABLES:
            op.drop_index(_index(table), table_name=table)
