"""Whether a filing with the cyberspace office is due (R12, Measures Art. 15).

- ``not_required``: nothing filed, and the count of people (:mod:`service.domain.filing_counts`) is below
  ``FILING_THRESHOLD`` now (or never reached it).
- ``due``: the first filing, from the day the count crossed the threshold (``crossed_on``) until 30 working
  days later (``deadline``); or a change filing, from a material notice change to a purpose an earlier
  filing covered (``changed_on``) until 30 working days after it.
- ``overdue``: past that deadline and still not recorded.
- ``filed``: the first filing is recorded and every material change since is covered by a change filing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.filing import FILING_WORKING_DAYS, add_working_days
from service.domain.filing_counts import record_daily_count, threshold_crossed_on
from service.domain.subjects import CHINA_TIME
from service.models import Filing, Notice, Purpose


@dataclass(frozen=True)
class PendingChange:
    """Material notice changes to filed purposes that no filing recorded since covers."""

    changed_on: date
    purposes: list[str]


def pending_change(session: Session, *, org_id: str, filings: list[Filing]) -> PendingChange | None:
    """The material changes made to filed purposes after the latest filing was recorded, if any."""
    if not filings:
        return None
    latest = max(filings, key=lambda f: f.created_at)
    filed_codes = {code for filing in filings for code in filing.purpose_codes}
    rows = session.execute(
        select(Purpose.code, Notice.created_at)
        .join(Notice, Notice.purpose_id == Purpose.id)
        .where(
            Purpose.org_id == org_id,
            Purpose.code.in_(filed_codes),
            Notice.material.is_(True),
            Notice.version > 1,
            Notice.created_at > latest.created_at,
        )
        .order_by(Notice.created_at)
    ).all()
    if not rows:
        return None
    return PendingChange(
        changed_on=rows[0][1].astimezone(CHINA_TIME).date(), purposes=sorted({code for code, _ in rows})
    )


def describe_filing(filing: Filing) -> dict[str, Any]:
    """A filing as plain JSON values, for the report and the materials pack."""
    return {
        "id": filing.id,
        "kind": filing.kind,
        "filed_on": filing.filed_on.isoformat(),
        "authority": filing.authority,
        "filing_number": filing.filing_number,
        "purposes": filing.purpose_codes,
        "created_at": filing.created_at.isoformat(),
    }


def filing_status(
    session: Session,
    *,
    org_id: str,
    threshold: int,
    holidays: frozenset[date],
    extra_workdays: frozenset[date],
    today: date,
) -> dict[str, Any]:
    """The filing status of the day; records the day's count of people on the way."""
    people = record_daily_count(session, org_id=org_id, day=today)
    crossed_on = threshold_crossed_on(session, org_id=org_id, threshold=threshold, today=today)
    filings = list(session.scalars(select(Filing).where(Filing.org_id == org_id).order_by(Filing.created_at)))
    filed = any(f.kind == "initial" for f in filings)
    change = pending_change(session, org_id=org_id, filings=filings) if filed else None
    due_from = change.changed_on if change else (crossed_on if not filed else None)
    deadline = (
        add_working_days(due_from, FILING_WORKING_DAYS, holidays=holidays, extra_workdays=extra_workdays)
        if due_from
        else None
    )
    if deadline is not None:
        status = "overdue" if today > deadline else "due"
    else:
        status = "filed" if filed else "not_required"
    return {
        "status": status,
        "count": people,
        "threshold": threshold,
        "crossed_on": crossed_on,
        "deadline": deadline,
        "due_filing": ("change" if change else "initial") if deadline else None,
        "changed_on": change.changed_on if change else None,
        "changed_purposes": change.purposes if change else [],
        "last_filing": describe_filing(filings[-1]) if filings else None,
    }
