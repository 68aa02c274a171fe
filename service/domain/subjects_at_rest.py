"""People registered before migration 0007: their clear reference and dates, encrypted in place (R14).

The migration runs outside the app and may not have ``DATA_KEY``: it adds the encrypted columns and
leaves what it found. ``consent-gate db upgrade`` then calls :func:`encrypt_clear_subjects` in the app,
with the key (``consent-gate subjects encrypt`` does the same after a bare ``alembic upgrade``).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from service.domain.subjects import reference_hash
from service.keys.crypto import DataProtector

#: The columns of before 0007, in clear; the model no longer maps them.
_CLEAR = "external_ref IS NOT NULL OR birth_date IS NOT NULL OR guardian_required_until IS NOT NULL"


def count_clear_subjects(session: Session) -> int:
    """How many people still have a reference or date in clear (0 once encrypted)."""
    return int(session.execute(text(f"SELECT count(*) FROM subjects WHERE {_CLEAR}")).scalar_one())  # noqa: S608


def encrypt_clear_subjects(session: Session, *, protector: DataProtector, limit: int = 1000) -> int:
    """Encrypt up to ``limit`` people's clear reference and dates, emptying the clear columns; flushes only.

    Returns how many were converted: call again (committing in between) until it returns 0. Each row is
    locked as it is read (PostgreSQL), so two runs at once convert each person once.
    """
    lock = " FOR UPDATE SKIP LOCKED" if session.get_bind().dialect.name == "postgresql" else ""
    rows = session.execute(
        text(
            "SELECT id, org_id, external_ref, birth_date, guardian_required_until FROM subjects "  # noqa: S608
            f"WHERE {_CLEAR} ORDER BY id LIMIT :limit{lock}"
        ),
        {"limit": limit},
    ).all()
    for row in rows:

        def seal(value: object) -> str | None:
            # SQLite returns dates as their ISO text, PostgreSQL as dates: str() spells both in ISO.
            return None if value is None else protector.encrypt(str(value))

        session.execute(
            text(
                "UPDATE subjects SET external_ref_ciphertext = :ref, external_ref_hash = :digest, "
                "birth_date_ciphertext = :birth, guardian_required_until_ciphertext = :until, "
                "external_ref = NULL, birth_date = NULL, guardian_required_until = NULL WHERE id = :id"
            ),
            {
                "id": row.id,
                "ref": seal(row.external_ref),
                "digest": None
                if row.external_ref is None
                else reference_hash(protector, org_id=row.org_id, external_ref=row.external_ref),
                "birth": seal(row.birth_date),
                "until": seal(row.guardian_required_until),
            },
        )
    return len(rows)
