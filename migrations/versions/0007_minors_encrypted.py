"""People's reference, birth date and guardian age day encrypted at rest (issue 13, R14; PIPL 28).

- ``subjects.external_ref_ciphertext``, ``birth_date_ciphertext``, ``guardian_required_until_ciphertext``:
  AES-GCM under ``DATA_KEY`` (``service/models/encrypted.py``).
- ``subjects.external_ref_hash``: the reference's keyed hash within the organization, unique per
  organization (``uq_subjects_org_id_external_ref_hash``), which replaces the uniqueness of the clear
  reference (dropped on PostgreSQL; on SQLite it is part of the table's definition and would need a
  rebuild, and it holds only NULLs once the rows are encrypted, which it allows any number of).

No table is rebuilt. Existing rows stay as they are: a migration runs outside the app and may not have
``DATA_KEY``, so ``consent-gate db upgrade`` encrypts them right after (in the app, with the key), as does
``consent-gate subjects encrypt`` after a bare ``alembic upgrade``; both empty the clear columns, which
stay in the table unmapped.

Downgrade puts the data back in clear and needs the key for it: pass the app's ``DataProtector`` as
``config.attributes["protector"]`` (``service.db.migrate.downgrade(engine, rev, protector=...)``). Without
it, a database holding encrypted rows is refused rather than emptied.

Upgrade and downgrade are tested with rows present (``tests/test_minors_encrypted.py``).

Revision ID: 0007e
Revises: 0007f
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from alembic import context, op

revision = "0007e"
down_revision = "0007f"
branch_labels = None
depends_on = None

CIPHERTEXTS = ("external_ref_ciphertext", "birth_date_ciphertext", "guardian_required_until_ciphertext")
ENCRYPTED = " OR ".join(f"{column} IS NOT NULL" for column in CIPHERTEXTS)


def upgrade() -> None:
    for column in CIPHERTEXTS:
        op.add_column("subjects", sa.Column(column, sa.Text(), nullable=True))
    op.add_column("subjects", sa.Column("external_ref_hash", sa.String(length=64), nullable=True))
    op.create_index("uq_subjects_org_id_external_ref_hash", "subjects", ["org_id", "external_ref_hash"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_subjects_org_id_external_ref", "subjects", type_="unique")


def downgrade() -> None:
    """Back to the clear columns: each encrypted row is decrypted with the key handed over, then dropped."""
    bind = op.get_bind()
    protector = context.config.attributes.get("protector")
    rows = bind.execute(sa.text(f"SELECT id, {', '.join(CIPHERTEXTS)} FROM subjects WHERE {ENCRYPTED}")).all()  # noqa: S608
    if rows and protector is None:
        raise RuntimeError(
            "subjects hold encrypted data: downgrade through service.db.migrate.downgrade(..., protector=...) "
            "so that it can be put back in clear"
        )
    for row in rows:
        ref, birth, until = (None if value is None else protector.decrypt(value) for value in row[1:])
        bind.execute(
            sa.text(
                "UPDATE subjects SET external_ref = :ref, birth_date = :birth, guardian_required_until = :until "
                "WHERE id = :id"
            ).bindparams(sa.bindparam("birth", type_=sa.Date()), sa.bindparam("until", type_=sa.Date())),
            {
                "id": row.id,
                "ref": ref,
                "birth": None if birth is None else date.fromisoformat(birth),
                "until": None if until is None else date.fromisoformat(until),
            },
        )
    if bind.dialect.name == "postgresql":
        op.create_unique_constraint("uq_subjects_org_id_external_ref", "subjects", ["org_id", "external_ref"])
    op.drop_index("uq_subjects_org_id_external_ref_hash", table_name="subjects")
    for column in ("external_ref_hash", *CIPHERTEXTS):
        if bind.dialect.name == "sqlite":
            op.execute(f"ALTER TABLE subjects DROP COLUMN {column}")  # SQLite 3.35+ drops in place
        else:
            op.drop_column("subjects", column)
