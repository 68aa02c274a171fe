"""Guardian requests: consent for a child under the guardian age comes from a parent or guardian (R4)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, url_for
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from schemas.common import ListQuerySchema
from schemas.guardian import (
    GuardianRequestCreateSchema,
    GuardianRequestPageSchema,
    GuardianRequestSchema,
    PaperDecisionAnswerSchema,
    PaperDecisionSchema,
)
from service import db
from service.api import Blueprint
from service.domain import guardian as flow
from service.domain.consent_lifecycle import effective_status
from service.domain.guardian import Messenger
from service.domain.pages import Page
from service.domain.statuses import Delivery, GuardianRequestStatus
from service.errors import Conflict, NotFound
from service.keys.api_keys import current_caller
from service.keys.data_key import protector
from service.models import GuardianRequest, utcnow
from service.qr import qr_png, qr_svg

blp = Blueprint(
    "guardian-requests", __name__, url_prefix="/v1/guardian-requests", description="Guardian consent for children (R4)"
)


PAPER_DECISION_EXAMPLE = {
    "decisions": {"door_access": "approve", "canteen_payment": "decline"},
    "form_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "signed_on": "2025-09-01",
}


def approve_url(request: GuardianRequest) -> str | None:
    """The decision link, for ``delivery: qr`` while pending; never for ``sms`` (the link lives in the SMS)."""
    if request.delivery != Delivery.QR or request.status != GuardianRequestStatus.PENDING:
        return None
    if request.link_ciphertext is None:
        return None
    return flow.link_url(current_app.config["PUBLIC_URL"], protector().decrypt(request.link_ciphertext))


def request_view(request: GuardianRequest) -> dict[str, Any]:
    now = utcnow()
    view: dict[str, Any] = {
        "id": request.id,
        "subject_id": request.subject_id,
        "status": request.status,
        "delivery": request.delivery,
        "delivery_status": request.delivery_status,
        "delivery_error": request.delivery_error,
        "locale": request.locale,
        "guardian": {"phone_masked": request.phone_masked, "relationship": request.guardian_relationship},
        "consents": [
            {"id": c.id, "purpose": c.purpose.code, "status": effective_status(c, now)} for c in request.consents
        ],
        "expires_at": request.expires_at,
        "decided_at": request.decided_at,
        "poll_interval": current_app.config["GUARDIAN_POLL_INTERVAL"],
        "created_at": request.created_at,
    }
    if request.delivery == Delivery.QR:
        pending = request.status == GuardianRequestStatus.PENDING
        base = current_app.config["PUBLIC_URL"].rstrip("/")
        view["approve_url"] = approve_url(request)
        view["qr_png_url"] = (
            base + url_for("guardian-requests.GuardianRequestQrPng", request_id=request.id) if pending else None
        )
        view["qr_svg_url"] = (
            base + url_for("guardian-requests.GuardianRequestQrSvg", request_id=request.id) if pending else None
        )
    return view


def _current(request_id: str) -> GuardianRequest:
    """The request, with an overdue expiry recorded first (reads move overdue requests to ``expired``)."""
    session = db.session()
    request = flow.get_request(session, org_id=current_caller().org_id, request_id=request_id)
    if flow.expire_if_due(session, request):
        session.commit()
    return request


@blp.route("")
class GuardianRequests(MethodView):
    @blp.authorized("consents")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, GuardianRequestPageSchema)
    def get(self, query: dict[str, Any]) -> Page[dict[str, Any]]:
        """List the organization's guardian requests

        Oldest first; page with `cursor` (the `next_cursor` of the last page) and `limit` (at most 1000, 100
        by default). Each item is as `GET /v1/guardian-requests/{id}` shows it (overdue ones are recorded as
        `expired` first).
        """
        session = db.session()
        listed = flow.list_requests(
            session, org_id=current_caller().org_id, cursor=query["cursor"], limit=query["limit"]
        )
        if sum(flow.expire_if_due(session, request) for request in listed.items):
            session.commit()
        return listed.map(request_view)

    @blp.authorized("consents")
    @blp.arguments(GuardianRequestCreateSchema)
    @blp.response(202, GuardianRequestSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Ask a parent or guardian to decide for a child, purpose by purpose

        Creates one `pending_guardian` consent per purpose. With `delivery: sms` the link is sent to the
        guardian's phone, and only there: no answer carries it, so only the guardian can decide. The SMS
        is queued with the request (`delivery_status: queued`) and sent right after by the dispatcher; poll
        to see `sent`, or `failed` with `delivery_error` after its retries (then use `resend`). With `delivery: qr` show
        `qr_png_url` to the guardian, who proves the phone with an SMS code before any decision. With
        `delivery: paper` (written consent) nothing is sent and there is no link: the guardian signs a form
        and you record it with `paper-decision`. Poll this resource every `poll_interval` seconds to learn
        the outcome.

        `guardian.phone` must be a mobile number of `SMS_ALLOWED_REGIONS` (422 `invalid_phone`);
        `guardian.relationship` is `parent` or `legal_guardian`. Every SMS counts against the allowance
        of that phone in your organization (one of a kind a minute, five an hour: 429 `rate_limited`) and
        your organization's daily budget (429 `sms_budget_exhausted`); a 429 creates nothing. A subject who
        is not a minor answers 409 `not_a_minor`.

        No repeated asking after a refusal (PIPL 16): a purpose the guardian declined for this child (or
        left unticked while approving others) less than `REASK_AFTER_DAYS` (30) days ago answers 409
        `recently_declined`, naming the purposes (`errors.purposes`) and when each may be asked again
        (`errors.ask_again_after`); nothing is created and no SMS sent.
        """
        caller = current_caller()
        session = db.session()
        messenger = Messenger.of(current_app)
        try:
            request, reservation, token = flow.create_guardian_request(
                session,
                org_id=caller.org_id,
                actor=caller.actor,
                messenger=messenger,
                subject_id=fields["subject_id"],
                purposes=fields["purposes"],
                phone=fields["guardian"]["phone"],
                allowed_regions=current_app.config["SMS_ALLOWED_REGIONS"],
                relationship=fields["guardian"]["relationship"],
                delivery=fields["delivery"],
                locale=fields["locale"],
                hours=current_app.config["GUARDIAN_REQUEST_HOURS"],
                reask_after_days=current_app.config["REASK_AFTER_DAYS"],
                child_display_name=fields.get("child_display_name"),
            )
            if reservation is not None and token is not None:
                messenger.queue_link(session, request, reservation, token)  # sent after the commit
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict("a live consent to one of these purposes exists", code="consent_exists") from None
        return request_view(request)


@blp.route("/<string:request_id>")
class GuardianRequestById(MethodView):
    @blp.authorized("consents")
    @blp.response(200, GuardianRequestSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, request_id: str) -> dict[str, Any]:
        """Poll a guardian request: its status and each consent's

        `pending`, `approved`, `partially_approved`, `declined` or `expired` (a pending request past its
        `expires_at` is recorded as expired when read), with `delivery_status` of the SMS. Poll every
        `poll_interval` seconds. `approve_url` and the QR links appear only for `delivery: qr` while pending.
        """
        return request_view(_current(request_id))


@blp.route("/<string:request_id>/resend")
class GuardianRequestResend(MethodView):
    @blp.authorized("consents")
    @blp.response(200, GuardianRequestSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, request_id: str) -> dict[str, Any]:
        """Send the link SMS again

        `delivery: sms` only. The SMS carries a new link; the one sent before stops working (no copy of
        a link is kept, so a new one is the only way to send it again). Counts against the same allowance
        as every SMS (429 `rate_limited` or `sms_budget_exhausted`, with `Retry-After`); a failed attempt
        does not hold back the next resend.
        The SMS is queued (`delivery_status: queued`); the outcome shows in `delivery_status` and
        `delivery_error` once the dispatcher sent it or gave up.
        """
        session = db.session()
        request = _current(request_id)
        if request.status != GuardianRequestStatus.PENDING:
            raise Conflict(f"the request is {request.status}", code="request_not_pending")
        if request.delivery != Delivery.SMS:
            raise Conflict(f"a delivery: {request.delivery} request has no link SMS", code="request_not_pending")
        messenger = Messenger.of(current_app)
        reservation = messenger.reserve(session, request, "link")
        token = flow.renew_decision_link(session, request)  # the link in an earlier SMS stops working
        messenger.queue_link(session, request, reservation, token)
        session.commit()
        return request_view(request)


@blp.route("/<string:request_id>/paper-decision")
class GuardianRequestPaperDecision(MethodView):
    @blp.authorized("consents")
    @blp.arguments(PaperDecisionSchema, example=PAPER_DECISION_EXAMPLE)
    @blp.response(200, PaperDecisionAnswerSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, fields: dict[str, Any], request_id: str) -> dict[str, Any]:
        """Record a guardian's written decision (PIPL Art. 29), from the signed paper form

        `delivery: paper` requests only (else 409 `not_paper_request`), while `pending` (else 409
        `request_not_pending`: a decision is recorded once). `decisions` answers every purpose of the
        request exactly once; `form_sha256` is the SHA-256 of the signed form as you keep it; `signed_on`
        the day it was signed, neither in the future nor before the request was opened (422
        `validation_error`, naming the field). Approved purposes become `active` with a token
        (`guardian_authorized: true`, evidence `method: written`, `channel: paper`, `form_sha256`,
        `signed_on`), the others `declined`. A purpose approved on the form but revoked meanwhile answers
        409 `state_changed` and nothing is recorded: a revoked consent never comes back. A notice changed
        since the request was opened answers 409 `stale_notice` (the form shows the older text). Then the
        withdrawal link is texted to the guardian's phone, within its SMS allowance (`withdrawal_sms`).
        """
        caller = current_caller()
        session = db.session()
        request = _current(request_id)
        decision = flow.record_paper_decision(
            session,
            request,
            actor=caller.actor,
            decisions=fields["decisions"],
            transmission_consent=fields["transmission_consent"],
            form_sha256=fields["form_sha256"],
            signed_on=fields["signed_on"],
            messenger=Messenger.of(current_app),  # the withdrawal SMS is queued in the decision's transaction
        )
        session.commit()
        withdrawal_sms = "not_required"
        if decision.withdrawal_token:
            withdrawal_sms = "queued" if decision.withdrawal_queued else "not_sent"
        session.refresh(request)
        return {**request_view(request), "withdrawal_sms": withdrawal_sms}


def _qr(request_id: str, render: Any, mimetype: str) -> Response:
    request = _current(request_id)
    if request.delivery != Delivery.QR:
        # The decision link of an SMS request reaches the guardian's phone only, and a paper request has
        # none: there is no QR code of either.
        raise NotFound(f"a delivery: {request.delivery} request has no QR code")
    url = approve_url(request)
    if url is None:
        raise Conflict(f"the request is {request.status}: there is nothing to scan", code="request_not_pending")
    response = Response(render(url), mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/<string:request_id>/qr.png")
class GuardianRequestQrPng(MethodView):
    @blp.authorized("consents")
    @blp.response(200, content_type="image/png", description="The QR code of `approve_url`")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def get(self, request_id: str) -> Response:
        """The QR code of the approval link, as PNG (`delivery: qr` only; 404 otherwise)

        Show it to the guardian, who scans it with the phone on record and proves it with an SMS code. A
        request no longer pending answers 409 `request_not_pending`: there is nothing to scan.
        """
        return _qr(request_id, qr_png, "image/png")


@blp.route("/<string:request_id>/qr.svg")
class GuardianRequestQrSvg(MethodView):
    @blp.authorized("consents")
    @blp.response(200, content_type="image/svg+xml", description="The QR code of `approve_url`")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def get(self, request_id: str) -> Response:
        """The QR code of the approval link, as SVG (`delivery: qr` only; 404 otherwise)

        The same code as `qr.png`, scalable for print. A request no longer pending answers 409
        `request_not_pending`.
        """
        return _qr(request_id, qr_svg, "image/svg+xml")
