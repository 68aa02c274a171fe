"""Personal-information impact assessments (R10, Measures Art. 9; PIPL 55, 56) and incidents.

An assessment states the four contents Art. 9 asks for, each in real words, and a conclusion; it counts
for ``valid_days`` from when it was conducted. A major incident calls for a reassessment of each purpose
it touched within :data:`REASSESS_WITHIN`: past that deadline the purpose receives no consents and
verification denies ``assessment_required`` (``service.verification.rules``), until an assessment
conducted on or after the incident's day covers it.

Both are records kept for supervisors (at least three years, PIPL 56): nothing here deletes or edits one,
except marking an assessment outdated when a material change calls for a new one.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.consent_lifecycle import lock_purpose
from service.domain.filing_counts import china_today
from service.domain.pages import Page, page
from service.errors import NotFound, Unprocessable
from service.models import Assessment, Incident, Purpose, assessment_purposes, incident_purposes, utcnow

#: What Measures Art. 9 asks an assessment to state, each in at least :data:`CONTENT_MIN_LENGTH` characters.
ART9_CONTENTS = ("lawfulness_necessity", "rights_impact", "security_risks", "safeguards")
CONTENT_MIN_LENGTH = 20
CONCLUSION_MIN_LENGTH = 2
#: Fewer different letters or digits than this is filler ("aaaa…", "测试测试…"), not an assessment.
MIN_DISTINCT_CHARACTERS = 5
#: A text that is one short unit repeated ("abcabcabc…") is filler too.
MAX_REPEATED_UNIT = 10

SEVERITIES = ("minor", "major")
#: A major incident calls for a reassessment of each purpose it touched within this time (R10).
REASSESS_WITHIN = timedelta(days=30)
#: How far ahead of the server's clock an incident's ``occurred_at`` may be (clock skew).
CLOCK_SKEW = timedelta(minutes=5)


def _is_repetition(compact: str) -> bool:
    for size in range(1, min(MAX_REPEATED_UNIT, len(compact) // 2) + 1):
        unit = compact[:size]
        if (unit * (len(compact) // size + 1))[: len(compact)] == compact:
            return True
    return False


def is_real_text(text: str, *, min_length: int) -> bool:
    """Whether ``text`` says something: ``min_length`` characters once spaces are collapsed, letters or
    digits among them, and not filler (one character or a short unit repeated, or too few different ones)."""
    folded = " ".join(unicodedata.normalize("NFKC", text).split())
    compact = "".join(ch for ch in folded.casefold() if ch.isalnum())
    if len(folded) < min_length or not compact:
        return False
    distinct = len(set(compact))
    if _is_repetition(compact):
        return False
    return distinct >= min(MIN_DISTINCT_CHARACTERS, len(compact))


def check_contents(fields: dict[str, Any]) -> None:
    """The four contents of Measures Art. 9 and a conclusion, each in real words: 422
    ``assessment_incomplete`` naming each one missing, too short or filler."""
    refused: dict[str, list[str]] = {}
    for name in ART9_CONTENTS:
        if not is_real_text(str(fields.get(name) or ""), min_length=CONTENT_MIN_LENGTH):
            refused[name] = [f"state it in at least {CONTENT_MIN_LENGTH} characters of real text, not filler"]
    if not is_real_text(str(fields.get("conclusion") or ""), min_length=CONCLUSION_MIN_LENGTH):
        refused["conclusion"] = ["state the conclusion in real text"]
    if refused:
        raise Unprocessable(
            "an impact assessment states the lawfulness and necessity, the impact on rights, the security "
            "risks and the safeguards (Measures Art. 9), and a conclusion",
            code="assessment_incomplete",
            details=refused,
        )


def assessment_is_current(purpose: Purpose, now: datetime | date) -> bool:
    """Whether ``purpose`` may be consented to at ``now``: a current assessment, and no reassessment overdue
    (the same rule as verification's, ``service.verification.rules``). A day alone counts from its start."""
    moment = now if isinstance(now, datetime) else datetime.combine(now, time.min, UTC)
    if purpose.assessed_until is None or purpose.assessed_until < moment.date():
        return False
    return purpose.reassess_by is None or purpose.reassess_by > moment


def _purposes_locked(session: Session, *, org_id: str, codes: list[str]) -> list[Purpose]:
    """The organization's purposes named ``codes``, each under its row lock, in one order everywhere (by id)
    so that an assessment and an incident touching the same purposes never deadlock: 422
    ``unknown_purpose`` naming any that does not exist."""
    found = session.execute(select(Purpose.id, Purpose.code).where(Purpose.org_id == org_id, Purpose.code.in_(codes)))
    ids = {code: purpose_id for purpose_id, code in found}
    missing = sorted(set(codes) - set(ids))
    if missing:
        raise Unprocessable("unknown purposes", code="unknown_purpose", details={"purposes": missing})
    return [lock_purpose(session, purpose_id, exclusive=True) for purpose_id in sorted(ids.values())]


def reassessment_deadline(session: Session, purpose: Purpose) -> datetime | None:
    """When ``purpose`` must be reassessed by: :data:`REASSESS_WITHIN` after the earliest major incident that
    touched it and that no assessment has addressed yet, or None.

    An assessment addresses an incident when it was recorded after the incident was, and conducted on the
    incident's day or later (a backdated one did not consider it). An assessment later outdated by a
    material change still addressed the incidents before it. Computed from the records, not from the
    previous value: an incident and an assessment racing (each under the purpose's lock, reading what the
    other committed) end as their order says.
    """
    addressed_by = session.execute(
        select(Assessment.conducted_at, Assessment.created_at)
        .join(assessment_purposes, assessment_purposes.c.assessment_id == Assessment.id)
        .where(assessment_purposes.c.purpose_id == purpose.id)
    ).all()
    incidents = session.execute(
        select(Incident.occurred_at, Incident.created_at)
        .join(incident_purposes, incident_purposes.c.incident_id == Incident.id)
        .where(incident_purposes.c.purpose_id == purpose.id, Incident.severity == "major")
        .order_by(Incident.occurred_at)
    )
    for occurred_at, recorded_at in incidents:
        if not any(
            conducted_at >= occurred_at.date() and created_at > recorded_at for conducted_at, created_at in addressed_by
        ):
            return occurred_at + REASSESS_WITHIN
    return None


def mark_assessments_outdated(session: Session, purpose: Purpose, *, reason: str, actor: str) -> None:
    """A material change calls for a new assessment (R10): the old ones stop counting for this purpose."""
    now = utcnow()
    outdated = session.scalars(
        select(Assessment)
        .join(assessment_purposes, assessment_purposes.c.assessment_id == Assessment.id)
        .where(assessment_purposes.c.purpose_id == purpose.id, Assessment.outdated_at.is_(None))
    ).all()
    for assessment in outdated:
        assessment.outdated_at = now
        assessment.outdated_reason = reason[:200]
        record_event(
            session,
            org_id=purpose.org_id,
            actor=actor,
            action="assessment.outdated",
            object_type="assessment",
            object_id=assessment.id,
            data={"purpose": purpose.code, "reason": reason},
        )
    purpose.assessed_until = None
    session.flush()


def record_assessment(
    session: Session,
    *,
    org_id: str,
    actor: str,
    valid_days: int,
    fields: dict[str, Any],
    today: date | None = None,
) -> Assessment:
    """Record an impact assessment covering one or more purposes (R10, Measures Art. 9).

    It makes each purpose it covers current until ``conducted_at + valid_days``, and clears the
    reassessment deadline of the major incidents recorded before it that occurred on or before the day it
    was conducted (:func:`reassessment_deadline`). ``conducted_at`` may not be after ``today``, the day in
    China (as every date the service checks), unless given.
    """
    check_contents(fields)
    conducted_at: date = fields["conducted_at"]
    if conducted_at > (today or china_today()):
        raise Unprocessable(
            "conducted_at is in the future",
            code="validation_error",
            details={"json": {"conducted_at": ["must not be in the future"]}},
        )
    codes = list(dict.fromkeys(fields["purposes"]))
    purposes = _purposes_locked(session, org_id=org_id, codes=codes)
    assessment = Assessment(
        org_id=org_id,
        conducted_at=conducted_at,
        valid_until=conducted_at + timedelta(days=valid_days),
        purposes=purposes,
        **{name: fields[name].strip() for name in (*ART9_CONTENTS, "conclusion")},
    )
    session.add(assessment)
    session.flush()
    for purpose in purposes:
        if purpose.assessed_until is None or purpose.assessed_until < assessment.valid_until:
            purpose.assessed_until = assessment.valid_until
        purpose.reassess_by = reassessment_deadline(session, purpose)
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="assessment.recorded",
        object_type="assessment",
        object_id=assessment.id,
        data={
            "purposes": codes,
            "conducted_at": conducted_at.isoformat(),
            "valid_until": assessment.valid_until.isoformat(),
            "reassess_by": {p.code: p.reassess_by.isoformat() for p in purposes if p.reassess_by is not None},
        },
    )
    return assessment


def record_incident(session: Session, *, org_id: str, actor: str, fields: dict[str, Any]) -> Incident:
    """Record a security incident touching one or more purposes.

    A ``major`` one sets each purpose's ``reassess_by`` to :data:`REASSESS_WITHIN` after it occurred (an
    earlier deadline stands); a ``minor`` one is recorded and changes nothing else.
    """
    occurred_at: datetime = fields["occurred_at"]
    if occurred_at.tzinfo is None:
        raise Unprocessable(
            "occurred_at needs a time zone",
            code="validation_error",
            details={"json": {"occurred_at": ["give the offset, e.g. 2026-05-01T08:00:00+08:00"]}},
        )
    if occurred_at > utcnow() + CLOCK_SKEW:
        raise Unprocessable(
            "occurred_at is in the future",
            code="validation_error",
            details={"json": {"occurred_at": ["must not be in the future"]}},
        )
    if fields["severity"] not in SEVERITIES:
        raise Unprocessable("severity is minor or major", code="validation_error")
    codes = list(dict.fromkeys(fields["purposes"]))
    purposes = _purposes_locked(session, org_id=org_id, codes=codes)
    incident = Incident(
        org_id=org_id,
        occurred_at=occurred_at,
        description=fields["description"].strip(),
        severity=fields["severity"],
        purposes=purposes,
    )
    session.add(incident)
    session.flush()
    if incident.severity == "major":
        for purpose in purposes:
            purpose.reassess_by = reassessment_deadline(session, purpose)
        session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="incident.recorded",
        object_type="incident",
        object_id=incident.id,
        data={
            "purposes": codes,
            "severity": incident.severity,
            "occurred_at": occurred_at.isoformat(),
            "reassess_by": {p.code: p.reassess_by.isoformat() for p in purposes if p.reassess_by is not None},
        },
    )
    return incident


def get_assessment(session: Session, *, org_id: str, assessment_id: str) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None or assessment.org_id != org_id:
        raise NotFound("assessment not found")
    return assessment


def get_incident(session: Session, *, org_id: str, incident_id: str) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None or incident.org_id != org_id:
        raise NotFound("incident not found")
    return incident


def list_assessments(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[Assessment]:
    """The organization's assessments, oldest first, outdated ones included."""
    query = select(Assessment).where(Assessment.org_id == org_id)
    return page(session, query, Assessment, kind="assessments", cursor=cursor, limit=limit)


def list_incidents(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[Incident]:
    """The organization's incidents, oldest first."""
    query = select(Incident).where(Incident.org_id == org_id)
    return page(session, query, Incident, kind="incidents", cursor=cursor, limit=limit)


def all_assessments(session: Session, *, org_id: str) -> list[Assessment]:
    """Every assessment the organization recorded, oldest first: what the export writes."""
    return list(
        session.scalars(
            select(Assessment).where(Assessment.org_id == org_id).order_by(Assessment.created_at, Assessment.id)
        )
    )
