"""The guardian's decision, purpose by purpose, and later withdrawal (R4, R3).

**Only the guardian decides.** A decision needs proof that the person deciding holds the phone on record:
with ``delivery: sms`` the link itself, which exists only in the SMS sent to that phone; with
``delivery: qr`` (the organization shows the link, so it proves nothing) a one-time code sent to that phone
and verified for this request in this very decision. :func:`decide` refuses anything else, whatever path
calls it, and the consent's evidence says which proof was given. Approving also needs the decider to
confirm that they are the child's parent or legal guardian. A ``delivery: paper`` request is decided by its
signed form only (``service.domain.guardian.paper``), never through a link; both record the decision with
:func:`settle_decision`.

**Transmission is its own act of consent (R9).** A purpose whose face data leaves the device is approved
only when the guardian ticked both its boxes: the purpose, and the separate transmission box. One without
the other refuses the whole form (:class:`TransmissionRefused`) and records nothing: we chose that over
declining the purpose, because a declined purpose may not be asked again for ``REASK_AFTER_DAYS``, and a
parent who ticked one box of two most likely meant to agree and missed the second, or the other way round.
The page then says so next to the purpose, with the ticks kept, and the guardian ticks both or neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.assessments import assessment_is_current
from service.domain.consent_lifecycle import (
    ENDABLE_CONSENT,
    ConsentStatus,
    StateChanged,
    activate,
    effective_status,
    end_consent,
    lock_subject,
    take_notice,
)
from service.domain.guardian.codes import OTP_MAX_FAILURES, CodeCheck, check_code
from service.domain.guardian.common import audit_step, claim_request, new_link
from service.domain.guardian.links import LinkGone
from service.domain.guardian.messages import lock_organization
from service.domain.statuses import Delivery, GuardianRequestStatus
from service.domain.subjects import guardian_age_moment, is_minor
from service.errors import Conflict, DomainError, NotFound
from service.keys.crypto import DataProtector
from service.models import Consent, GuardianLink, GuardianRequest, Notice, Purpose, Subject, utcnow

if TYPE_CHECKING:
    from service.domain.guardian.messaging import Messenger

WITHDRAWABLE = ENDABLE_CONSENT


class DecisionRefused(DomainError):
    """The form is incomplete: nothing ticked to approve, or the guardian did not confirm who they are."""

    status = 422
    code = "select_one"


class TransmissionRefused(DecisionRefused):
    """A purpose that transmits face data was ticked without its transmission box, or the other way round."""

    code = "transmission_consent_required"


class CodeRejected(DomainError):
    """No proof of the phone: the one-time code is missing, expired or wrong, or the request locked."""

    status = 403
    code = "code_missing"

    def __init__(self, check: CodeCheck, tries_left: int):
        super().__init__(f"the one-time code was not accepted: {check.value}", code=f"code_{check.value}")
        self.check = check
        self.tries_left = tries_left


class NoticeChanged(Conflict):
    """A notice changed after the page showed it: the guardian must read the new one before deciding."""

    code = "stale_notice"


@dataclass(frozen=True)
class Decision:
    status: GuardianRequestStatus
    approved: list[str]
    declined: list[str]
    withdrawal_token: str | None
    possession: str = field(default="sms_link")
    #: The withdrawal link's SMS was queued in the decision's own transaction (within the allowance).
    withdrawal_queued: bool = False


def lock_request(session: Session, request: GuardianRequest) -> GuardianRequest:
    """The request read afresh under its row lock (after the subject's: see the lock order)."""
    return session.scalars(
        select(GuardianRequest)
        .where(GuardianRequest.id == request.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one()


def decide(
    session: Session,
    link: GuardianLink,
    *,
    approve: bool,
    ticked: list[str],
    attested: bool,
    code: str | None,
    protector: DataProtector,
    shown_versions: dict[str, int] | None = None,
    transmit: list[str] | tuple[str, ...] = (),
    messenger: Messenger | None = None,
) -> Decision:
    """Record the guardian's decision, purpose by purpose; only one decision per request ever counts.

    ``ticked`` are the purposes the guardian agreed to; ``transmit`` the purposes whose transmission of
    face data they agreed to, each its own act of consent (R9): a purpose that transmits is approved only
    when it is in both. Codes in ``transmit`` for purposes that do not transmit, or that the request does
    not hold, are ignored (they grant nothing).

    Raises :class:`DecisionRefused` (nothing ticked, no attestation; :class:`TransmissionRefused` for a
    transmitting purpose ticked in only one of the two lists), :class:`CodeRejected` (``qr`` without
    a verified code; the caller commits, so that the try is counted), :class:`NoticeChanged`,
    :class:`LinkGone` (decided, expired or locked meanwhile) or :class:`StateChanged` (a consent moved
    meanwhile, e.g. revoked by the organization): all but ``CodeRejected`` change nothing.

    With a ``messenger``, an approval queues the withdrawal link's SMS in this same transaction
    (:func:`queue_withdrawal_sms`): the decision, the SMS reservation and its outbox row commit or roll
    back together. ``Decision.withdrawal_queued`` says whether the allowance let it through.
    """
    now = utcnow()
    subject = lock_subject(session, link.request.subject_id)
    if messenger is not None and approve:
        lock_organization(session, link.request.org_id)  # the allowance's lock, before the request's
    request = lock_request(session, link.request)
    if request.delivery == Delivery.PAPER:
        # A written-consent request has no decision link; were one made, it still could not decide: only
        # the signed form, recorded by service.domain.guardian.paper, does.
        raise NotFound("no such link")
    if request.status != GuardianRequestStatus.PENDING or subject is None or subject.erased_at is not None:
        raise LinkGone("a decision was already made with this link", code="link_used")
    if request.expires_at <= now or not is_minor(subject, now.date()):
        # Past its time, or the child reached the guardian age meanwhile: they now decide for themself.
        raise LinkGone("this link has expired", code="link_expired")
    pending = list(
        session.scalars(
            select(Consent)
            .where(Consent.guardian_request_id == request.id, Consent.status == ConsentStatus.PENDING_GUARDIAN)
            .order_by(Consent.purpose_id)
            .execution_options(populate_existing=True)
        )
    )
    chosen = {code for code in ticked if code} if approve else set()
    pending_codes = {c.purpose.code for c in pending}
    asked = {c.purpose.code for c in request.consents}
    if (chosen & asked) - pending_codes or not pending:
        # A consent the page offered moved meanwhile (the organization revoked it, say): decide nothing.
        raise StateChanged("a consent of this request changed while the guardian was deciding")
    if approve and not chosen & pending_codes:
        raise DecisionRefused("tick at least one purpose to approve, or decline", code="select_one")
    if approve and not attested:
        raise DecisionRefused("confirm that you are the child's parent or legal guardian", code="attestation_required")
    if approve:
        require_transmission_ticks(pending, chosen, {code for code in transmit if code})
    possession = _prove_possession(session, request, code, protector)
    notices: dict[str, Notice] = {}
    for consent in pending:
        if consent.purpose.code in chosen:
            notices[consent.purpose.code] = take_notice(session, consent.purpose)
    for purpose_code, notice in notices.items():
        shown = (shown_versions or {}).get(purpose_code)
        if shown is not None and shown != notice.version:
            raise NoticeChanged(
                "the notice changed after it was shown: read the new one before deciding",
                details={"purpose": purpose_code, "current_version": notice.version},
            )
    decision = settle_decision(
        session,
        request,
        subject=subject,
        pending=pending,
        notices=notices,
        unchosen_reason="not_selected" if approve else "guardian_declined",
        actor=f"guardian:{request.id}",
        now=now,
        link=link,
        evidence=lambda purpose, notice: _evidence(
            request, possession, notice, purpose.transmits_face_data, now.isoformat()
        ),
        audit={"possession": possession, "attested": bool(approve and attested)},
        possession=possession,
    )
    if decision is None:
        raise LinkGone("a decision was already made with this link", code="link_used")
    return queue_withdrawal_sms(session, request, decision, messenger)


def queue_withdrawal_sms(
    session: Session, request: GuardianRequest, decision: Decision, messenger: Messenger | None
) -> Decision:
    """Queue the withdrawal link of an approving ``decision`` in its own transaction, within the allowance.

    The caller took the organization's row lock before the request's (the lock order): the reservation
    needs it. When the allowance is used up nothing is queued and the decision stands; the link is then
    shown on the guardian's receipt, or the answer says ``withdrawal_sms: not_sent``.
    """
    if messenger is None or decision.withdrawal_token is None:
        return decision
    queued = messenger.queue_withdrawal_link(session, request, decision.withdrawal_token)
    return replace(decision, withdrawal_queued=queued)


def settle_decision(
    session: Session,
    request: GuardianRequest,
    *,
    subject: Subject,
    pending: list[Consent],
    notices: dict[str, Notice],
    unchosen_reason: str,
    actor: str,
    now: datetime,
    evidence: Callable[[Purpose, Notice], dict[str, object]],
    audit: dict[str, object],
    possession: str,
    link: GuardianLink | None = None,
    decline_evidence: dict[str, object] | None = None,
) -> Decision | None:
    """Record a guardian's decision on a locked, pending request; None if another decision claimed it first.

    Every way a guardian decides (the link's page, a signed paper form) ends here, so that the request
    leaves ``pending`` once (:func:`claim_request`, a compare-and-set) and each pending consent moves
    once (``activate``/``end_consent``, compare-and-set from ``pending_guardian``). The caller holds the
    subject's and the request's row locks and has read ``pending`` under them. ``notices`` holds, taken
    under their purpose's shared lock, the notices of the purposes the guardian approved; those without a
    current assessment are declined (``assessment_required``), every other pending purpose with
    ``unchosen_reason``. Raises :class:`StateChanged` if a consent moved meanwhile.
    """
    grantable = {c.purpose.code for c in pending if assessment_is_current(c.purpose, now)}
    approved = sorted(code for code in notices if code in grantable)
    declined = sorted(c.purpose.code for c in pending if c.purpose.code not in approved)
    status = (
        GuardianRequestStatus.APPROVED
        if approved and not declined
        else GuardianRequestStatus.PARTIALLY_APPROVED
        if approved
        else GuardianRequestStatus.DECLINED
    )
    if not claim_request(session, request, status, now):
        return None
    if link is not None:
        link.used_at = now
    age_end = guardian_age_moment(subject.guardian_required_until) if subject.guardian_required_until else None
    for consent in pending:
        purpose = consent.purpose
        if purpose.code in approved:
            end = now + timedelta(days=purpose.retention_days)
            notice = notices[purpose.code]
            activate(
                session,
                consent,
                actor=actor,
                notice=notice,
                granted_at=now,
                # Guardian consent ends when the child reaches the guardian age (see README, "Turning 14").
                expires_at=min(end, age_end) if age_end else end,
                # For a purpose that transmits, approval means both its acts of consent were given (R9).
                evidence=evidence(purpose, notice),
            )
            continue
        reason = "assessment_required" if purpose.code in notices else unchosen_reason
        if not end_consent(
            session,
            consent,
            status=ConsentStatus.DECLINED,
            actor=actor,
            reason=reason,
            expected=[ConsentStatus.PENDING_GUARDIAN],
            evidence=decline_evidence,
        ):
            raise StateChanged(f"consent {consent.id} is {consent.status} now", details={"consent_id": consent.id})
    audit_step(
        session,
        request,
        actor,
        f"guardian_request.{status.value}",
        approved=approved,
        declined=declined,
        **audit,
    )
    withdrawal_token = None
    if approved:
        last_end = max(c.expires_at for c in pending if c.expires_at is not None)
        withdrawal_token = new_link(session, request, kind="withdrawal", expires_at=last_end)
    session.flush()
    return Decision(
        status=status, approved=approved, declined=declined, withdrawal_token=withdrawal_token, possession=possession
    )


def require_transmission_ticks(pending: list[Consent], chosen: set[str], transmit: set[str]) -> None:
    """R9 for guardians: each transmitting purpose is ticked in both boxes or in neither.

    A purpose ticked without its transmission box is not approved, and the transmission box alone approves
    nothing; rather than decide either way for the guardian, the form is refused and nothing recorded.
    """
    transmitting = {c.purpose.code for c in pending if c.purpose.transmits_face_data}
    unmatched = sorted((chosen ^ transmit) & transmitting)
    if unmatched:
        raise TransmissionRefused(
            "face data of these purposes leaves the device: to agree, tick both the purpose and its "
            "transmission; to decline, leave both unticked",
            details={"purposes": unmatched},
        )


def _prove_possession(session: Session, request: GuardianRequest, code: str | None, protector: DataProtector) -> str:
    """How the decider proved they hold the phone on record; raise :class:`CodeRejected` when they did not."""
    if request.delivery != Delivery.QR:
        return "sms_link"  # the link exists only in the SMS sent to that phone
    result = check_code(session, request, code or "", protector)
    if result is not CodeCheck.OK or request.otp_verified_at is None:
        raise CodeRejected(result, max(0, OTP_MAX_FAILURES - request.otp_failures))
    return "sms_code"


def _evidence(
    request: GuardianRequest, possession: str, notice: Notice, transmits: bool, recorded_at: str
) -> dict[str, object]:
    return {
        "method": "checkbox",
        "channel": "sms_link" if request.delivery == Delivery.SMS else "qr_code",
        "locale": request.locale,
        "relationship": request.guardian_relationship,
        "guardian_attested": True,
        # How the decider proved they hold the guardian's phone: the SMS link, or a code sent to it.
        "possession": possession,
        "guardian_verification": possession,
        "code_verified_at": request.otp_verified_at.isoformat() if request.otp_verified_at else None,
        "recorded_at": recorded_at,
        "notice_digest": notice.digest,
        "transmits_face_data": transmits,
        # R9: the guardian's separate act of consent to the transmission (its own box), where it applies.
        **({"transmission_consent": True} if transmits else {}),
    }


def consents_of_child(session: Session, request: GuardianRequest) -> list[Consent]:
    """Every consent the organization holds for the child of this request, newest first."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.org_id == request.org_id, Consent.subject_id == request.subject_id)
            .order_by(Consent.created_at.desc())
        )
    )


def withdraw(session: Session, link: GuardianLink, consent_id: str) -> Consent:
    """The guardian withdraws one of the child's consents; effective at once (R3)."""
    request = link.request
    if not 1 <= len(consent_id) <= 36 or not consent_id.isascii() or not consent_id.isprintable():
        raise NotFound("no such consent")
    consent = session.get(Consent, consent_id)
    if consent is None or consent.org_id != request.org_id or consent.subject_id != request.subject_id:
        raise NotFound("no such consent")
    lock_subject(session, consent.subject_id)
    session.refresh(consent)
    if consent.status in WITHDRAWABLE and effective_status(consent, utcnow()) != ConsentStatus.EXPIRED:
        ended = end_consent(
            session, consent, status=ConsentStatus.REVOKED, actor=f"guardian:{request.id}", reason="guardian_withdrawal"
        )
        if ended:
            audit_step(
                session,
                request,
                f"guardian:{request.id}",
                "guardian.withdrew",
                consent_id=consent.id,
                purpose=consent.purpose.code,
            )
    return consent


__all__ = [
    "WITHDRAWABLE",
    "CodeRejected",
    "Decision",
    "DecisionRefused",
    "NoticeChanged",
    "TransmissionRefused",
    "consents_of_child",
    "decide",
    "lock_request",
    "require_transmission_ticks",
    "settle_decision",
    "withdraw",
]
