"""Telling guardians of a material change (PIPL Arts. 14, 17): a fresh link to the new notice.

A material notice change moves every active consent of the purpose to ``reconsent_required`` (R5) and
calls for a new impact assessment (R10). Each guardian whose consent was moved then gets an SMS with a
fresh link: a new guardian request for the child and the purposes concerned, on their current notices.

It is sent once the purpose can be consented to again, that is when it has a current assessment: right
after the change if it still has one, else when the next assessment covering it is recorded. Sending it
earlier would lead the guardian to a page whose approval could not take effect. A guardian is asked only
while the consent moved is the child's newest for the purpose: once they were asked again, whatever they
did with it (declined, let it expire, approved) is the newest, and a later change does not text them again
on its own. A refusal is respected (R6): it is never followed by a new link, however many notices change.

The change queues a job in its own transaction (``service.outbox.jobs.queue_reconsent``); the dispatcher runs
it after the commit. Each child is handled in a transaction of its own: it starts with the child's lock, as
every change to a person's consents does (``consent_lifecycle``), and checks again under it. The
SMS counts against the phone's and the organization's allowance like any other; when it is spent the
request is still opened, with ``delivery_status: failed`` and the limit's code, for the app to resend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from service.domain.assessments import assessment_is_current
from service.domain.consent_lifecycle import ConsentStatus, lock_subject
from service.domain.guardian.messaging import Messenger
from service.domain.guardian.requests import PhoneOnRecord, open_request
from service.domain.statuses import Delivery
from service.domain.subjects import is_minor
from service.models import Consent, GuardianRequest, Purpose, SmsMessage, utcnow

ACTOR = "system:reconsent"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reask:
    """One child to ask again: their subject id, the purposes, and the guardian request to copy the phone from."""

    subject_id: str
    purpose_ids: tuple[str, ...]
    previous_request_id: str


def due(
    session: Session, *, org_id: str, purpose_ids: list[str], after: str | None = None, limit: int | None = None
) -> list[Reask]:
    """The children whose guardian has not been asked about the current notice of these purposes (by id,
    those after ``after``, the first ``limit`` of them, each with all their purposes due)."""
    later = aliased(Consent)
    awaiting = (
        Consent.subject_id > (after or ""),
        Consent.org_id == org_id,
        Consent.purpose_id.in_(purpose_ids),
        Consent.status == ConsentStatus.RECONSENT_REQUIRED,
        Consent.guardian_request_id.is_not(None),
        ~exists().where(
            and_(
                later.subject_id == Consent.subject_id,
                later.purpose_id == Consent.purpose_id,
                later.created_at > Consent.created_at,
            )
        ),
    )
    query = select(Consent.subject_id, Consent.purpose_id, Consent.guardian_request_id).where(*awaiting)
    if limit is not None:
        children = select(Consent.subject_id).where(*awaiting).distinct().order_by(Consent.subject_id).limit(limit)
        query = query.where(Consent.subject_id.in_(children.scalar_subquery()))
    rows = session.execute(query.order_by(Consent.subject_id, Consent.created_at.desc())).all()
    by_child: dict[str, tuple[list[str], str]] = {}
    for subject_id, purpose_id, request_id in rows:
        purposes, _ = by_child.setdefault(subject_id, ([], str(request_id)))  # the newest request's phone
        if purpose_id not in purposes:
            purposes.append(purpose_id)
    return [Reask(subject, tuple(purposes), request) for subject, (purposes, request) in by_child.items()]


def open_reconsent(
    session: Session, reask: Reask, *, org_id: str, messenger: Messenger, hours: int
) -> tuple[GuardianRequest, SmsMessage | None, str | None] | None:
    """The new request for one child, under the child's lock; ``None`` if nothing is left to ask."""
    subject = lock_subject(session, reask.subject_id)
    now = utcnow()
    if subject is None or subject.erased_at is not None or not is_minor(subject, now.date()):
        return None  # erased, or old enough to decide for themselves: no guardian is asked
    previous = session.get(GuardianRequest, reask.previous_request_id)
    if previous is None or previous.phone_ciphertext is None or previous.phone_hash is None:
        return None
    purposes = [
        purpose
        for purpose in session.scalars(select(Purpose).where(Purpose.id.in_(reask.purpose_ids)).order_by(Purpose.code))
        if assessment_is_current(purpose, now) and _newest_awaits_reconsent(session, subject.id, purpose.id)
    ]
    if not purposes:
        return None
    return open_request(
        session,
        org_id=org_id,
        actor=ACTOR,
        messenger=messenger,
        subject_id=subject.id,
        purposes=purposes,
        phone=PhoneOnRecord(previous.phone_ciphertext, previous.phone_hash, previous.phone_masked),
        relationship=previous.guardian_relationship,
        delivery=Delivery.SMS.value,
        locale=previous.locale,
        hours=hours,
        child_name_ciphertext=previous.child_name_ciphertext,
        tolerate_limits=True,
        reason="notice_changed",
        previous_request_id=previous.id,
    )


def _newest_awaits_reconsent(session: Session, subject_id: str, purpose_id: str) -> bool:
    """Whether the child's newest consent to the purpose is a guardian's, moved to ``reconsent_required``
    (read under the child's lock: a request opened meanwhile, or a refusal, is newer)."""
    newest = session.scalars(
        select(Consent)
        .where(Consent.subject_id == subject_id, Consent.purpose_id == purpose_id)
        .order_by(Consent.created_at.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    ).first()
    return (
        newest is not None
        and newest.status == ConsentStatus.RECONSENT_REQUIRED
        and newest.guardian_request_id is not None
    )


@dataclass(frozen=True)
class Asked:
    """What one run of :func:`ask_guardians` did: requests opened, children that failed (asked on a later run),
    whether children are left beyond the run's ``limit``, and the last child looked at (to go on after)."""

    opened: int
    failed: int
    more: bool = False
    last: str | None = None


def ask_guardians(
    session: Session,
    *,
    org_id: str,
    purpose_ids: list[str],
    messenger: Messenger,
    hours: int,
    after: str | None = None,
    limit: int | None = None,
) -> Asked:
    """Text each guardian due a fresh link (see the module doc): the children after ``after`` (by id), at
    most ``limit`` of them. A child not asked (no current assessment yet, grown up…) stays due: the next run
    goes on after the last one looked at, so that it makes progress all the same.

    Run by the outbox job (``service.outbox.jobs``) that the change queued, after its commit: it commits each
    child apart. Running it again asks only those still due.
    """
    session.commit()
    opened = failed = 0
    reasks = due(
        session, org_id=org_id, purpose_ids=purpose_ids, after=after, limit=None if limit is None else limit + 1
    )
    more = limit is not None and len(reasks) > limit
    reasks = reasks[:limit]
    last = reasks[-1].subject_id if reasks else after
    for reask in reasks:
        try:
            made = open_reconsent(session, reask, org_id=org_id, messenger=messenger, hours=hours)
            if made is not None and made[1] is not None and made[2] is not None:
                messenger.queue_reconsent(session, made[0], made[1], made[2])  # sent after the commit
            session.commit()
        except IntegrityError:  # a request for this child and purpose committed meanwhile: it asks already
            session.rollback()
            continue
        except Exception:
            # One child's failure must not stop the others; the job is run again for those still due.
            session.rollback()
            log.exception("could not open the reconsent request of one child", extra={"subject_id": reask.subject_id})
            failed += 1
            continue
        if made is None:
            session.rollback()
            continue
        opened += 1
    return Asked(opened=opened, failed=failed, more=more, last=last)
