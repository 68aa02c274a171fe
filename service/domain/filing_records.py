"""Recording a filing made with the provincial cyberspace office (R12, Measures Art. 15).

The organization files outside the service; it records here what it filed: ``kind: initial`` once (the
first filing, after the count crossed the threshold), then ``kind: change`` after a material notice change
to a filed purpose. Each filing covers the organization's purposes as they stand when it is recorded.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.errors import Conflict, Unprocessable
from service.models import Filing, Purpose

FILING_KINDS = ("initial", "change")


def record_filing(session: Session, *, org_id: str, actor: str, fields: dict[str, Any], today: date) -> Filing:
    """Record a filing; audited. A date in the future is refused, and so is a second first filing."""
    filed_on: date = fields["filed_on"]
    if filed_on > today:
        raise Unprocessable(
            "filed_on is in the future",
            code="validation_error",
            details={"json": {"filed_on": ["must not be in the future"]}},
        )
    kind = fields.get("kind", "initial")
    kinds = set(session.scalars(select(Filing.kind).where(Filing.org_id == org_id)))
    if kind == "initial" and "initial" in kinds:
        raise Conflict("the first filing is already recorded: record a change filing", code="already_filed")
    if kind == "change" and "initial" not in kinds:
        raise Conflict("no first filing is recorded yet: a change filing follows one", code="not_filed")
    codes = list(session.scalars(select(Purpose.code).where(Purpose.org_id == org_id).order_by(Purpose.code)))
    filing = Filing(
        org_id=org_id,
        kind=kind,
        filed_on=filed_on,
        authority=fields["authority"],
        filing_number=fields["filing_number"],
        purpose_codes=codes,
    )
    session.add(filing)
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="filing.recorded",
        object_type="filing",
        object_id=filing.id,
        data={
            "kind": kind,
            "filed_on": filed_on.isoformat(),
            "authority": filing.authority,
            "filing_number": filing.filing_number,
            "purposes": codes,
        },
    )
    return filing
