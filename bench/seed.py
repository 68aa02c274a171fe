"""Seed a benchmark database through the app itself (small sets) or bulk SQL (the growth run)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import text

from service import db
from service.domain.assessments import record_assessment
from service.domain.consents import consent_token, grant_consent
from service.domain.organizations import create_api_key, create_organization
from service.domain.purposes import create_purpose
from service.domain.subjects import register_subject
from service.keys.data_key import protector
from service.keys.signing import issuer, key_set

#: The four contents of Measures Art. 9 and a conclusion (R10).
ASSESSMENT = {
    "lawfulness_necessity": "Door access by face, lawful with separate consent; a card is offered.",
    "rights_impact": "A face template is processed; anyone may refuse and use the card instead.",
    "security_risks": "Templates could leak from terminals or be matched against other databases.",
    "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
    "conclusion": "Proceed: the risks are low and the safeguards fit them.",
}
PURPOSE = {
    "code": "door_access",
    "name": {"zh-CN": "校门通行", "en": "Door access"},
    "description": {"zh-CN": "刷脸开门", "en": "Gate by face"},
    "category": "access_control",
    "necessity": {"zh-CN": "高峰时段", "en": "Peak hours"},
    "alternative": {"zh-CN": "刷学生卡开门", "en": "A student card"},
    "processing_method": {"zh-CN": "比对后删除", "en": "Compared, then deleted"},
    "rights_impact": {"zh-CN": "可随时撤回", "en": "Withdraw at any time"},
    "capture": "personal_device",
    "retention_days": 365,
    "analyses": [],
    "notice": {"zh-CN": "刷脸开门", "en": "Gate by face"},
}


def seed(app: Flask, subjects: int) -> dict[str, Any]:
    """An organization, a key, one assessed purpose and ``subjects`` people each with an active consent."""
    with app.app_context():
        session = db.session()
        org = create_organization(session, name="Bench School", contact="privacy@bench.example")
        _, key = create_api_key(session, org_id=org.id, scopes=["admin", "consents", "verify"])
        create_purpose(
            session,
            org_id=org.id,
            actor="bench",
            prohibit_sensitive_analysis=True,
            required_locales=("zh-CN",),
            fields=PURPOSE,
        )
        record_assessment(
            session,
            org_id=org.id,
            actor="bench",
            valid_days=365,
            fields={
                "purposes": ["door_access"],
                "conducted_at": date.today(),
                **ASSESSMENT,
            },
        )
        tokens, subject_ids = [], []
        for index in range(subjects):
            person = register_subject(
                session,
                org_id=org.id,
                actor="bench",
                external_ref=f"p{index}",
                birth_date=date(1990, 1, 1),
                guardian_age=14,
                protector=protector(),
            )
            consent = grant_consent(
                session,
                org_id=org.id,
                actor="bench",
                subject_id=person.id,
                purpose_code="door_access",
                notice_version=1,
                evidence={"method": "button", "channel": "kiosk", "locale": "en"},
            )
            token = consent_token(consent, keys=key_set(), issuer=issuer(), public_url=app.config["PUBLIC_URL"])
            assert token is not None
            tokens.append(token)
            subject_ids.append(person.id)
        session.commit()
        # As a database in service would have them (autovacuum): planner statistics for the new rows.
        session.execute(text("ANALYZE"))
        session.commit()
        return {"org_id": org.id, "key": key, "tokens": tokens, "subjects": subject_ids}


def bulk_subjects(app: Flask, org_id: str, total: int) -> None:
    """Grow the organization to ``total`` subjects with active consents, by set-based SQL (PostgreSQL)."""
    with app.app_context():
        session = db.session()
        purpose_id, digest = session.execute(
            text(
                "SELECT id, (SELECT digest FROM notices WHERE purpose_id = purposes.id LIMIT 1) FROM purposes "
                "WHERE org_id = :org"
            ),
            {"org": org_id},
        ).one()
        existing = session.execute(text("SELECT count(*) FROM subjects WHERE org_id = :org"), {"org": org_id}).scalar()
        missing = total - int(existing or 0)
        if missing <= 0:
            return
        batch = 200_000
        for start in range(0, missing, batch):
            size = min(batch, missing - start)
            session.execute(
                text(
                    # Synthetic people: a placeholder in the hash column marks them, no reference or date
                    # (verification reads neither).
                    "INSERT INTO subjects (id, org_id, external_ref_hash, created_at) "
                    "SELECT gen_random_uuid()::text, CAST(:org AS varchar), "
                    "'bulk-' || CAST(:start AS text) || '-' || g, now() AT TIME ZONE 'utc' "
                    "FROM generate_series(1, :size) AS g"
                ),
                {"org": org_id, "start": int(existing or 0) + start, "size": size},
            )
        session.execute(
            text(
                "INSERT INTO consents (id, org_id, subject_id, purpose_id, status, notice_version, notice_digest, "
                "guardian_authorized, evidence, granted_at, expires_at, created_at, updated_at) "
                "SELECT gen_random_uuid()::text, CAST(:org AS varchar), s.id, :purpose, 'active', 1, :digest, false, "
                "'{}', "
                "now() AT TIME ZONE 'utc', (now() + interval '300 days') AT TIME ZONE 'utc', now() AT TIME ZONE 'utc', "
                "now() AT TIME ZONE 'utc' FROM subjects s WHERE s.org_id = CAST(:org AS varchar) "
                "AND s.external_ref_hash LIKE 'bulk-%' "
                "AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.subject_id = s.id)"
            ),
            {"org": org_id, "purpose": purpose_id, "digest": digest},
        )
        session.commit()
        session.execute(text("ANALYZE subjects"))
        session.execute(text("ANALYZE consents"))
        session.commit()


def new_pg_database(admin_dsn: str) -> str:
    import psycopg

    name = f"consent_gate_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


__all__ = ["bulk_subjects", "drop_pg_database", "new_pg_database", "seed", "timedelta"]
