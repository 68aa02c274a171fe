"""Assessments with the contents of Measures Art. 9, and incidents (issue 13, R10).

- ``assessments.lawfulness_necessity``, ``rights_impact``, ``security_risks``, ``safeguards``,
  ``conclusion`` replace ``summary``, ``risk_level`` and ``measures``. An assessment recorded before keeps
  its words: its summary and risk level become the conclusion ("<summary> (risk level: <level>)"), its
  measures the safeguards; the other three stay empty. It lacks what Art. 9 asks, so it stops counting: it
  is marked outdated and every purpose it made current needs a new assessment (``assessed_until`` empty).
- ``incidents`` and ``incident_purposes``; ``purposes.reassess_by``, the deadline a major incident sets.

No table is rebuilt (SQLite runs with foreign keys on and refuses to drop a referenced table): columns are
added and dropped in place (SQLite 3.35+). Downgrade brings the old columns back (nullable), the summary
from the conclusion, the measures from the safeguards, the risk level ``high`` (it was folded into the
text). Tested with rows present (``tests/test_migrations.py``).

Revision ID: 0007a
Revises: 0007p
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007a"
down_revision = "0007p"
branch_labels = None
depends_on = None

ART9 = ("lawfulness_necessity", "rights_impact", "security_risks", "safeguards", "conclusion")
OLD = ("summary", "risk_level", "measures")
OUTDATED_REASON = "states not the four contents of Measures Art. 9 (recorded before v2)"


def _drop_columns(table: str, columns: tuple[str, ...]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column in columns:  # this file's constants: nothing here comes from outside
        if sqlite:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # SQLite 3.35+ drops in place
        else:
            op.drop_column(table, column)


def upgrade() -> None:
    for column in ART9:
        op.add_column("assessments", sa.Column(column, sa.Text(), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    now = "CURRENT_TIMESTAMP" if sqlite else "(now() AT TIME ZONE 'utc')"  # naive UTC, as the models store it
    op.execute(
        "UPDATE assessments SET conclusion = summary || ' (risk level: ' || risk_level || ')', "  # noqa: S608
        f"safeguards = measures, outdated_at = coalesce(outdated_at, {now}), "
        f"outdated_reason = coalesce(outdated_reason, '{OUTDATED_REASON}')"
    )
    op.execute("UPDATE purposes SET assessed_until = NULL")
    _drop_columns("assessments", OLD)
    op.add_column("purposes", sa.Column("reassess_by", sa.DateTime(), nullable=True))

    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_incidents_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_org_id"), "incidents", ["org_id"], unique=False)
    op.create_table(
        "incident_purposes",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("purpose_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_purposes_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(["purpose_id"], ["purposes.id"], name=op.f("fk_incident_purposes_purpose_id_purposes")),
        sa.PrimaryKeyConstraint("incident_id", "purpose_id", name=op.f("pk_incident_purposes")),
    )
    op.create_index(op.f("ix_incident_purposes_purpose_id"), "incident_purposes", ["purpose_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_incident_purposes_purpose_id"), table_name="incident_purposes")
    op.drop_table("incident_purposes")
    op.drop_index(op.f("ix_incidents_org_id"), table_name="incidents")
    op.drop_table("incidents")
    _drop_columns("purposes", ("reassess_by",))
    op.add_column("assessments", sa.Column("summary", sa.Text(), nullable=True))
    op.add_column("assessments", sa.Column("risk_level", sa.String(length=16), nullable=True))
    op.add_column("assessments", sa.Column("measures", sa.Text(), nullable=True))
    op.execute(
        "UPDATE assessments SET summary = coalesce(conclusion, ''), measures = coalesce(safeguards, ''), "
        "risk_level = 'high'"
    )
    _drop_columns("assessments", ART9)
