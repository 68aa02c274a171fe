"""The compliance report: filing status (R12), assessments and incidents (R10), devices (R7), consents,
decisions and deletions owed (R13)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.domain.deletions import deletion_counts
from service.domain.filing_counts import china_today
from service.domain.filing_status import filing_status
from service.models import (
    Assessment,
    AuditEvent,
    Consent,
    Device,
    Incident,
    Organization,
    Purpose,
    Verification,
    utcnow,
)

DUE_WITHIN = timedelta(days=30)
HISTORY_DAYS = 30
#: The newest incidents the report lists (``GET /v1/incidents`` lists them all).
INCIDENTS_SHOWN = 50
CONSENT_KINDS = ("granted", "revoked", "expired", "declined", "reconsent_required")
CONSENT_ACTIONS = tuple(f"consent.{kind}" for kind in CONSENT_KINDS)


def _counts(session: Session, *columns: Any, where: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(select(*columns, func.count()).where(where).group_by(*columns))]


def consents_over_time(session: Session, org_id: str, today: date) -> list[dict[str, Any]]:
    """Consent events per day over the last 30 days, by kind (granted, revoked, expired, ...)."""
    since = datetime.combine(today - timedelta(days=HISTORY_DAYS - 1), datetime.min.time()).replace(
        tzinfo=utcnow().tzinfo
    )
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.occurred_at).where(
            AuditEvent.org_id == org_id, AuditEvent.action.in_(CONSENT_ACTIONS), AuditEvent.occurred_at >= since
        )
    )
    for action, occurred_at in rows:
        per_day[occurred_at.date()][action.split(".", 1)[1]] += 1
    days = [today - timedelta(days=offset) for offset in range(HISTORY_DAYS - 1, -1, -1)]
    return [{"date": day.isoformat(), **{kind: per_day[day][kind] for kind in CONSENT_KINDS}} for day in days]


def consents_by_form(session: Session, org_id: str) -> dict[str, dict[str, int]]:
    """Consents by status, written (on a signed paper form: evidence channel ``paper``) apart from online.

    A guardian request with ``delivery: paper`` marks its consents ``channel: paper`` from the start, so its
    pending, declined and expired consents count as written too; so does an adult's consent recorded with
    ``channel: paper``.
    """
    written = Consent.evidence["channel"].as_string() == "paper"
    form = case((written, "written"), else_="online")
    counts: dict[str, dict[str, int]] = {"written": {}, "online": {}}
    for kind, status, count in _counts(session, form, Consent.status, where=Consent.org_id == org_id):
        counts[kind][status] = count
    return counts


def compliance_report(
    session: Session,
    *,
    org_id: str,
    threshold: int,
    holidays: frozenset[date] = frozenset(),
    extra_workdays: frozenset[date] = frozenset(),
    today: date | None = None,
    deletion_hours: int = 72,
) -> dict[str, Any]:
    """The organization's compliance report for ``today``; it records the day's count of people (R12)."""
    day = today or utcnow().date()
    org = session.get(Organization, org_id)
    assert org is not None
    purposes = list(session.scalars(select(Purpose).where(Purpose.org_id == org_id).order_by(Purpose.code)))
    assessments = list(
        session.scalars(select(Assessment).where(Assessment.org_id == org_id).order_by(Assessment.valid_until))
    )
    due = [
        {
            "id": a.id,
            "purposes": a.purpose_codes,
            "valid_until": a.valid_until.isoformat(),
            "outdated": a.outdated_at is not None,
            "reason": a.outdated_reason or ("expired" if a.valid_until < day else "due within 30 days"),
        }
        for a in assessments
        if a.outdated_at is not None or a.valid_until <= day + DUE_WITHIN
    ]
    newest_incidents = select(Incident).where(Incident.org_id == org_id).order_by(Incident.occurred_at.desc())
    incidents = list(session.scalars(newest_incidents.limit(INCIDENTS_SHOWN)))
    now = utcnow()
    minors = (
        session.scalar(
            select(func.count(func.distinct(Consent.subject_id))).where(
                Consent.org_id == org_id, Consent.guardian_authorized.is_(True), Consent.status == "active"
            )
        )
        or 0
    )
    return {
        "organization": org.controller(),
        "generated_at": utcnow(),
        "filing": filing_status(
            session,
            org_id=org_id,
            threshold=threshold,
            holidays=holidays,
            extra_workdays=extra_workdays,
            today=today or china_today(),
        ),
        "consents_by_status": dict(_counts(session, Consent.status, where=Consent.org_id == org_id)),
        "consents_by_form": consents_by_form(session, org_id),
        "minors_with_guardian_consent": minors,
        "purposes": [
            {
                "code": p.code,
                "name": p.name,
                "category": p.category,
                "assessed_until": p.assessed_until.isoformat() if p.assessed_until else None,
                "reassess_by": p.reassess_by.isoformat() if p.reassess_by else None,
                "transmits_face_data": p.transmits_face_data,
                "retention_days": p.retention_days,
                "assessments": [
                    {
                        "id": a.id,
                        "conducted_at": a.conducted_at.isoformat(),
                        "valid_until": a.valid_until.isoformat(),
                        "outdated": a.outdated_at is not None,
                    }
                    for a in assessments
                    if p.code in a.purpose_codes
                ],
            }
            for p in purposes
        ],
        "assessments_due": due,
        "reassessment_due": [
            {
                "purpose": p.code,
                "reassess_by": p.reassess_by.isoformat(),
                "overdue": p.reassess_by <= now,
            }
            for p in sorted(purposes, key=lambda p: (p.reassess_by is None, p.reassess_by, p.code))
            if p.reassess_by is not None
        ],
        "incidents": [
            {
                "id": i.id,
                "occurred_at": i.occurred_at.isoformat(),
                "severity": i.severity,
                "purposes": i.purpose_codes,
                "description": i.description,
            }
            for i in incidents
        ],
        "devices_by_location_type": dict(
            _counts(session, Device.location_type, where=(Device.org_id == org_id) & Device.active.is_(True))
        ),
        "verifications": [
            {"decision": decision, "reason": reason, "count": count}
            for decision, reason, count in _counts(
                session, Verification.decision, Verification.reason, where=Verification.org_id == org_id
            )
        ],
        "consents_over_time": consents_over_time(session, org_id, day),
        "deletions": deletion_counts(session, org_id=org_id, hours=deletion_hours),
    }
