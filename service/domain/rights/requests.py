"""Requests people file on their page: correction, deletion, complaint (PIPL 46, 47, 50; R16).

Each is due 15 working days after it was filed (China's working days: weekends, ``FILING_HOLIDAYS`` and
``FILING_EXTRA_WORKDAYS`` as for filing). The organization lists them and closes each with its answer.
The person's words and the answer are personal data: never in the audit trail, erased with the subject.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.filing import add_working_days
from service.domain.pages import Page, page
from service.domain.rights.links import link_actor
from service.domain.subjects import CHINA_TIME
from service.errors import DomainError, NotFound, Unprocessable
from service.models import AccessLink, RightsRequest, utcnow

KINDS = ("correction", "deletion", "complaint")
OPEN, CLOSED = "open", "closed"
#: PIPL 50 asks for a timely answer; 15 working days is what the handler commits to here.
DUE_WORKING_DAYS = 15
DETAILS_MAX = 2000
OUTCOME_MAX = 2000
#: Open requests one person may have at once: a leaked or shared link cannot flood the organization.
MAX_OPEN_PER_SUBJECT = 20


class TooManyOpenRequests(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self) -> None:
        super().__init__(f"at most {MAX_OPEN_PER_SUBJECT} requests may be open at once")
        self.retry_after = 3600


def rights_due_at(
    filed_at: datetime, *, holidays: frozenset[date] = frozenset(), extra_workdays: frozenset[date] = frozenset()
) -> datetime:
    """The end (China time) of the 15th working day after the day a request was filed."""
    filed_on = filed_at.astimezone(CHINA_TIME).date()
    due_on = add_working_days(filed_on, DUE_WORKING_DAYS, holidays=holidays, extra_workdays=extra_workdays)
    return datetime.combine(due_on, time(23, 59, 59), tzinfo=CHINA_TIME)


def clean_text(raw: str | None, *, field: str, limit: int) -> str:
    text = (raw or "").strip()
    if not text:
        raise Unprocessable(f"{field} is required", details={"json": {field: ["required"]}})
    if len(text) > limit:
        raise Unprocessable(
            f"{field} is longer than {limit} characters", details={"json": {field: [f"at most {limit}"]}}
        )
    if "\x00" in text or any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        raise Unprocessable(f"{field} holds characters that cannot be stored", details={"json": {field: ["invalid"]}})
    return text


def file_rights_request(
    session: Session,
    link: AccessLink,
    *,
    kind: str,
    details: str | None,
    holidays: frozenset[date] = frozenset(),
    extra_workdays: frozenset[date] = frozenset(),
    now: datetime | None = None,
) -> RightsRequest:
    """File a correction or deletion request or a complaint for the link's subject, due in 15 working days."""
    if kind not in KINDS:
        raise Unprocessable("kind must be correction, deletion or complaint", details={"json": {"kind": ["invalid"]}})
    text = clean_text(details, field="details", limit=DETAILS_MAX)
    open_count = len(
        session.scalars(
            select(RightsRequest.id).where(RightsRequest.subject_id == link.subject_id, RightsRequest.status == OPEN)
        ).all()
    )
    if open_count >= MAX_OPEN_PER_SUBJECT:
        raise TooManyOpenRequests()
    moment = now or utcnow()
    filed = RightsRequest(
        org_id=link.org_id,
        subject_id=link.subject_id,
        kind=kind,
        details=text,
        status=OPEN,
        due_at=rights_due_at(moment, holidays=holidays, extra_workdays=extra_workdays),
        created_at=moment,
    )
    session.add(filed)
    session.flush()
    record_event(
        session,
        org_id=link.org_id,
        actor=link_actor(link),
        action="rights_request.filed",
        object_type="rights_request",
        object_id=filed.id,
        data={"subject_id": link.subject_id, "kind": kind, "due_at": filed.due_at.isoformat()},
    )
    return filed


def requests_of_subject(session: Session, link: AccessLink) -> list[RightsRequest]:
    return list(
        session.scalars(
            select(RightsRequest)
            .where(RightsRequest.org_id == link.org_id, RightsRequest.subject_id == link.subject_id)
            .order_by(RightsRequest.id.desc())
        )
    )


def list_rights_requests(
    session: Session, *, org_id: str, cursor: str | None, limit: int, status: str | None = None
) -> Page[RightsRequest]:
    """One page of the organization's requests, oldest first."""
    query = select(RightsRequest).where(RightsRequest.org_id == org_id)
    if status is not None:
        query = query.where(RightsRequest.status == status)
    return page(session, query, RightsRequest, kind="rights_requests", cursor=cursor, limit=limit)


def get_rights_request(session: Session, *, org_id: str, request_id: str) -> RightsRequest:
    found = session.get(RightsRequest, request_id) if len(request_id) <= 36 else None
    if found is None or found.org_id != org_id:
        raise NotFound(f"rights request {request_id} does not exist")
    return found


def close_rights_request(session: Session, *, org_id: str, actor: str, request_id: str, outcome: str) -> RightsRequest:
    """Close a request with the organization's answer; closing again changes nothing (idempotent)."""
    found = get_rights_request(session, org_id=org_id, request_id=request_id)
    text = clean_text(outcome, field="outcome", limit=OUTCOME_MAX)
    now = utcnow()
    closed = session.execute(
        update(RightsRequest)
        .where(RightsRequest.id == found.id, RightsRequest.status == OPEN)
        .values(status=CLOSED, outcome=text, closed_at=now, closed_by=actor[:64])
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(found)
    if closed:
        record_event(
            session,
            org_id=org_id,
            actor=actor,
            action="rights_request.closed",
            object_type="rights_request",
            object_id=found.id,
            data={"subject_id": found.subject_id, "kind": found.kind, "on_time": now <= found.due_at},
        )
    return found


def forget_rights_of_subject(session: Session, subject_id: str) -> None:
    """Erasure (R13): the subject's page links go, and so do the words of their requests and the answers.

    The requests themselves stay (kind, dates, status), pseudonymous like the audit trail, so that the
    organization can still show it answered on time.
    """
    session.execute(delete(AccessLink).where(AccessLink.subject_id == subject_id))
    session.execute(
        update(RightsRequest)
        .where(RightsRequest.subject_id == subject_id)
        .values(details=None, outcome=None)
        .execution_options(synchronize_session=False)
    )
