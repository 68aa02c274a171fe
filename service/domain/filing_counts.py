"""How many people's face data the organization holds, counted once a day (R12, Measures Art. 15).

A person counts while they have at least one ``active`` consent: a revoked, expired, declined or
superseded consent no longer stores their face data. The count is kept per organization and day in
``filing_counts`` (one row a day: the primary key). ``consent-gate sweep`` (from cron) and every
computation of the compliance report record the count of the day; a later count the same day replaces the
earlier one, so the row holds the day's last count. Days on which neither ran have no row and are
skipped: run the sweep daily for a crossing date to the day. Days are China's (UTC+8), as the working
days that count towards the deadline are.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.domain.statuses import ConsentStatus
from service.domain.subjects import CHINA_TIME
from service.models import Consent, FilingCount, Organization, Subject, utcnow


def china_today() -> date:
    """Today in China: the day a count, a filing or a change belongs to."""
    return utcnow().astimezone(CHINA_TIME).date()


def people_with_active_consent(session: Session, *, org_id: str) -> int:
    """The distinct people with at least one ``active`` consent now (not a cumulative total)."""
    return (
        session.scalar(
            select(func.count(func.distinct(Consent.subject_id)))
            .join(Subject, Subject.id == Consent.subject_id)
            .where(Consent.org_id == org_id, Consent.status == ConsentStatus.ACTIVE, Subject.erased_at.is_(None))
        )
        or 0
    )


def record_daily_count(session: Session, *, org_id: str, day: date) -> int:
    """Count the people now and keep it as ``day``'s count; one row a day, however many run at once."""
    people = people_with_active_consent(session, org_id=org_id)
    insert: Any = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(FilingCount).values(org_id=org_id, day=day, people=people, counted_at=utcnow())
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[FilingCount.org_id, FilingCount.day],
            set_={"people": statement.excluded.people, "counted_at": statement.excluded.counted_at},
        )
    )
    return people


def record_all_daily_counts(session: Session, *, day: date) -> int:
    """Record ``day``'s count for every organization (the sweep); the number of organizations counted."""
    ids = list(session.scalars(select(Organization.id).order_by(Organization.created_at)))
    for org_id in ids:
        record_daily_count(session, org_id=org_id, day=day)
    return len(ids)


def _as_date(value: Any) -> date | None:
    if isinstance(value, str):  # SQLite may hand back the raw text of an aggregate
        return date.fromisoformat(value)
    return value


def threshold_crossed_on(session: Session, *, org_id: str, threshold: int, today: date) -> date | None:
    """The first recorded day the count was at least ``threshold`` since it was last below; None while below."""
    mine = (FilingCount.org_id == org_id, FilingCount.day <= today)
    last_below = _as_date(
        session.scalar(select(func.max(FilingCount.day)).where(*mine, FilingCount.people < threshold))
    )
    crossing = select(func.min(FilingCount.day)).where(*mine, FilingCount.people >= threshold)
    if last_below is not None:
        crossing = crossing.where(FilingCount.day > last_below)
    return _as_date(session.scalar(crossing))
