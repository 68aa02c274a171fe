"""The materials an organization files with the cyberspace office (R12, Measures Art. 15), as JSON.

Who processes (the handler: name, contact, protection officer, complaint channel), each purpose with its
processing method and how faces are captured, the devices, the count of people, the safeguards and the
impact assessments.

Assessments carry the contents of Measures Art. 9 (``lawfulness_necessity``, ``rights_impact``,
``security_risks``, ``safeguards``) and a ``conclusion``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.filing_counts import people_with_active_consent
from service.domain.filing_status import describe_filing
from service.models import Assessment, Device, Filing, Organization, Purpose, utcnow

ASSESSMENT_CONTENTS = ("lawfulness_necessity", "rights_impact", "security_risks", "safeguards", "conclusion")


def _assessment(assessment: Assessment, today: date) -> dict[str, Any]:
    return {
        "id": assessment.id,
        "purposes": assessment.purpose_codes,
        "conducted_at": assessment.conducted_at.isoformat(),
        "valid_until": assessment.valid_until.isoformat(),
        "current": assessment.outdated_at is None and assessment.valid_until >= today,
        **{name: getattr(assessment, name) for name in ASSESSMENT_CONTENTS},
    }


def _safeguards(assessment: Assessment) -> str | None:
    """What the assessment says protects people."""
    return assessment.safeguards or None


def _purpose(purpose: Purpose) -> dict[str, Any]:
    return {
        "code": purpose.code,
        "name": purpose.name,
        "category": purpose.category,
        "processing_method": purpose.processing_method,
        "capture": purpose.capture,
        "analyses": purpose.analyses,
        "transmits_face_data": purpose.transmits_face_data,
        "retention_days": purpose.retention_days,
        "notice_version": purpose.notice_version,
    }


def _device(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "location_type": device.location_type,
        "public_place": device.public_place,
        "signage": (
            {"posted_on": device.signage_posted_on.isoformat(), "photo_sha256": device.signage_photo_sha256}
            if device.signage_posted_on
            else None
        ),
        "collection_area": device.collection_area,
    }


def filing_materials(session: Session, *, org_id: str, threshold: int, today: date) -> dict[str, Any]:
    """The filing materials pack of the organization, as of now."""
    org = session.get(Organization, org_id)
    assert org is not None
    purposes = list(session.scalars(select(Purpose).where(Purpose.org_id == org_id).order_by(Purpose.code)))
    devices = list(
        session.scalars(
            select(Device).where(Device.org_id == org_id, Device.active.is_(True)).order_by(Device.created_at)
        )
    )
    assessments = list(
        session.scalars(select(Assessment).where(Assessment.org_id == org_id).order_by(Assessment.conducted_at))
    )
    filings = list(session.scalars(select(Filing).where(Filing.org_id == org_id).order_by(Filing.created_at)))
    current = [a for a in assessments if a.outdated_at is None and a.valid_until >= today]
    return {
        "generated_at": utcnow(),
        "handler": {
            "name": org.name,
            "contact": org.contact,
            "pipo": org.pipo,
            "complaint_channel": org.complaint_channel,
        },
        "count": {"people": people_with_active_consent(session, org_id=org_id), "threshold": threshold},
        "purposes": [_purpose(p) for p in purposes],
        "devices": [_device(d) for d in devices],
        "safeguards": [
            {"assessment_id": a.id, "purposes": a.purpose_codes, "text": _safeguards(a)}
            for a in current
            if _safeguards(a)
        ],
        "assessments": [_assessment(a, today) for a in assessments],
        "filings": [describe_filing(f) for f in filings],
    }
