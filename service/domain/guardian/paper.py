"""Written consent (PIPL Art. 29; the draft's 书面同意): a guardian's decision on a signed paper form (R2, R4).

With ``delivery: paper`` the request sends nothing and has no decision link: no page can decide it. The
guardian reads the notices on a printed form, decides purpose by purpose and signs it; the organization
keeps the form and records what it says with :func:`record_paper_decision`: each purpose's answer, the
SHA-256 of the scanned form and the day it was signed. The consents' evidence says so
(``method: written``, ``channel: paper``, ``form_sha256``, ``signed_on``).

The decision is recorded by :func:`~service.domain.guardian.decisions.settle_decision`, the same code as
a decision on the guardian's page, under the same locks: the request leaves ``pending`` once, each consent
moves once from ``pending_guardian``, and a consent revoked meanwhile is never re-activated.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.consent_lifecycle import ConsentStatus, StateChanged, lock_subject, take_notice
from service.domain.consents import require_transmission_consent
from service.domain.guardian.decisions import (
    Decision,
    NoticeChanged,
    lock_request,
    queue_withdrawal_sms,
    settle_decision,
)
from service.domain.guardian.messages import lock_organization
from service.domain.statuses import Delivery, GuardianRequestStatus, PaperAnswer
from service.domain.subjects import CHINA_TIME, is_minor
from service.errors import Conflict, Unprocessable
from service.models import Consent, GuardianRequest, Notice, Purpose, utcnow

if TYPE_CHECKING:
    from service.domain.guardian.messaging import Messenger

PAPER_ANSWERS = tuple(answer.value for answer in PaperAnswer)
FORM_DIGEST = re.compile(r"[0-9a-f]{64}")
#: How the guardian was identified, in the evidence: the form they signed, kept by the organization.
SIGNED_FORM = "signed_form"


class NotPaperRequest(Conflict):
    """Only a ``delivery: paper`` request is decided by a written form; the others by their guardian link."""

    code = "not_paper_request"


def record_paper_decision(
    session: Session,
    request: GuardianRequest,
    *,
    actor: str,
    decisions: dict[str, str],
    form_sha256: str,
    signed_on: date,
    transmission_consent: list[str] | tuple[str, ...] = (),
    messenger: Messenger | None = None,
) -> Decision:
    """Record the guardian's written decision, purpose by purpose; only one decision per request ever counts.

    ``decisions`` answers every purpose of the request exactly once, ``approve`` or ``decline``;
    ``form_sha256`` is the lowercase hex SHA-256 of the signed form as the organization keeps it;
    ``signed_on`` is the day of the signature (China time), neither before the request was opened nor in
    the future. ``transmission_consent`` names the purposes whose separate transmission box the form has
    ticked: approving a purpose that sends face data off the device needs it (R9; 422
    ``transmission_consent_required``), as on the guardian's page.

    Raises :class:`NotPaperRequest` (409), ``Unprocessable`` (422 ``validation_error``, with the field at
    fault), ``Conflict`` (409 ``request_not_pending``, ``not_a_minor``), :class:`NoticeChanged`
    (409 ``stale_notice``: the notice changed since the request, so the form shows an older text) or
    :class:`StateChanged` (409: a purpose approved on the form was revoked or moved meanwhile). Each
    changes nothing. With a ``messenger``, an approval queues the withdrawal link's SMS in this same
    transaction, within the phone's allowance (``Decision.withdrawal_queued``).
    """
    now = utcnow()
    if request.delivery != Delivery.PAPER:
        raise NotPaperRequest(
            f"a delivery: {request.delivery} request is decided by the guardian through its link, not on paper"
        )
    _check_form(request, decisions, form_sha256, signed_on, today=now.astimezone(CHINA_TIME).date())
    subject = lock_subject(session, request.subject_id)
    if messenger is not None and PaperAnswer.APPROVE in decisions.values():
        lock_organization(session, request.org_id)  # the allowance's lock, before the request's
    request = lock_request(session, request)
    if request.status != GuardianRequestStatus.PENDING or request.expires_at <= now:
        state = request.status if request.status != GuardianRequestStatus.PENDING else "expired"
        raise Conflict(f"the request is {state}: its decision cannot change", code="request_not_pending")
    if subject is None or subject.erased_at is not None:
        raise Conflict("this subject was erased", code="subject_erased")
    if not is_minor(subject, now.date()):
        raise Conflict("the child has reached the guardian age and now decides for themself", code="not_a_minor")
    pending = list(
        session.scalars(
            select(Consent)
            .where(Consent.guardian_request_id == request.id, Consent.status == ConsentStatus.PENDING_GUARDIAN)
            .order_by(Consent.purpose_id)
            .execution_options(populate_existing=True)
        )
    )
    approved = {code for code, answer in decisions.items() if answer == PaperAnswer.APPROVE}
    moved = approved - {c.purpose.code for c in pending}
    if moved or not pending:
        # A purpose the form approves is no longer waiting (the organization revoked it, say): it stays as it
        # is, and nothing of the form is recorded.
        raise StateChanged(
            "a consent of this request changed before the form was recorded", details={"purposes": sorted(moved)}
        )
    for consent in pending:
        if consent.purpose.code in approved:
            require_transmission_consent(
                consent.purpose, {"transmission_consent": consent.purpose.code in transmission_consent}
            )
    notices: dict[str, Notice] = {}
    for consent in pending:
        if consent.purpose.code in approved:
            notice = take_notice(session, consent.purpose)
            if notice.version != consent.notice_version:
                # The form reproduces the notice the request offered; approving would bind to a text the
                # guardian did not sign for.
                raise NoticeChanged(
                    "the notice changed after the request was opened: the signed form shows an older text",
                    details={"purpose": consent.purpose.code, "current_version": notice.version},
                )
            notices[consent.purpose.code] = notice
    recorded: dict[str, object] = {
        "method": "written",
        "channel": "paper",
        "locale": request.locale,
        "relationship": request.guardian_relationship,
        "possession": SIGNED_FORM,
        "guardian_verification": SIGNED_FORM,
        "form_sha256": form_sha256,
        "signed_on": signed_on.isoformat(),
        "recorded_at": now.isoformat(),
        "recorded_by": actor,
    }

    def evidence(purpose: Purpose, notice: Notice) -> dict[str, object]:
        transmits = purpose.transmits_face_data
        return {
            **recorded,
            "notice_digest": notice.digest,
            "transmits_face_data": transmits,
            **({"transmission_consent": True} if transmits else {}),
        }

    decision = settle_decision(
        session,
        request,
        subject=subject,
        pending=pending,
        notices=notices,
        unchosen_reason="guardian_declined",
        actor=actor,
        now=now,
        evidence=evidence,
        decline_evidence=recorded,
        audit={"method": "written", "form_sha256": form_sha256, "signed_on": signed_on.isoformat()},
        possession=SIGNED_FORM,
    )
    if decision is None:
        raise Conflict("the request was decided meanwhile", code="request_not_pending")
    return queue_withdrawal_sms(session, request, decision, messenger)


def _check_form(
    request: GuardianRequest, decisions: dict[str, str], form_sha256: str, signed_on: date, *, today: date
) -> None:
    """Refuse (422) a form that does not answer each purpose of the request once, or a bad digest or date."""
    asked = {consent.purpose.code for consent in request.consents}
    problems: dict[str, object] = {}
    answers: dict[str, list[str]] = {}
    for code, answer in decisions.items():
        if code not in asked:
            answers[code] = ["not a purpose of this request"]
        elif answer not in PAPER_ANSWERS:
            answers[code] = ["must be approve or decline"]
    for code in sorted(asked - decisions.keys()):
        answers[code] = ["missing: the form answers every purpose of the request"]
    if answers:
        problems["decisions"] = answers
    if not FORM_DIGEST.fullmatch(form_sha256):
        problems["form_sha256"] = ["must be the SHA-256 of the signed form, 64 lowercase hexadecimal digits"]
    opened_on = request.created_at.astimezone(CHINA_TIME).date()
    if signed_on > today:
        problems["signed_on"] = ["must not be in the future (China time)"]
    elif signed_on < opened_on:
        problems["signed_on"] = [f"must not be before the request was opened ({opened_on.isoformat()})"]
    if problems:
        raise Unprocessable("the written decision does not match the request", details={"json": problems})


__all__ = ["PAPER_ANSWERS", "NotPaperRequest", "record_paper_decision"]
