"""Adult consent, one person and one purpose at a time (R2), and its withdrawal (R3)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from schemas.consents import (
    ConsentCreateSchema,
    ConsentPageSchema,
    ConsentQuerySchema,
    ConsentReceiptSchema,
    ConsentSchema,
    RevokeSchema,
)
from service import db
from service.api import Blueprint
from service.domain import consents
from service.domain.consent_lifecycle import effective_status, persist_expiry
from service.domain.pages import Page
from service.domain.receipts import build_receipt, sign_receipt
from service.errors import Unprocessable
from service.keys.api_keys import current_caller
from service.keys.signing import issuer, key_set
from service.models import Consent, utcnow

blp = Blueprint("consents", __name__, url_prefix="/v1/consents", description="Separate consent (R2, R3)")

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 128},
    "description": "Repeating a request with the same key returns the same consent",
}


def consent_view(consent: Consent) -> dict[str, Any]:
    return {
        "id": consent.id,
        "subject_id": consent.subject_id,
        "purpose": consent.purpose.code,
        "status": effective_status(consent, utcnow()),
        "notice_version": consent.notice_version,
        "notice_digest": consent.notice_digest,
        "guardian_authorized": consent.guardian_authorized,
        "evidence": consent.evidence,
        "granted_at": consent.granted_at,
        "expires_at": consent.expires_at,
        "ended_at": consent.ended_at,
        "end_reason": consent.end_reason,
        "end_note": consent.end_note,
        "token": consents.consent_token(
            consent, keys=key_set(), issuer=issuer(), public_url=current_app.config["PUBLIC_URL"]
        ),
        "created_at": consent.created_at,
    }


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 128:
        raise Unprocessable("Idempotency-Key must have 1 to 128 characters", code="invalid_idempotency_key")
    return key


@blp.route("")
class Consents(MethodView):
    @blp.authorized("consents")
    @blp.arguments(ConsentQuerySchema, location="query")
    @blp.response(200, ConsentPageSchema)
    def get(self, query: dict[str, Any]) -> Page[dict[str, Any]]:
        """List the organization's consents

        Filter with `subject_id`, `purpose` (a code) and `status` (as `GET /v1/consents/{id}` shows it: an
        active consent past `expires_at` is `expired`). Oldest first; page with `cursor` (the `next_cursor` of
        the last page) and `limit` (at most 1000, 100 by default). Each item carries its token while active.
        """
        listed = consents.list_consents(
            db.session(),
            org_id=current_caller().org_id,
            cursor=query["cursor"],
            limit=query["limit"],
            subject_id=query.get("subject_id"),
            purpose=query.get("purpose"),
            status=query.get("status"),
        )
        return listed.map(consent_view)

    @blp.authorized("consents")
    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, ConsentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(parameters=[IDEMPOTENCY_HEADER])
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Record an adult's separate consent to one purpose, or their refusal

        Binds the person to the notice version they were shown (an older one answers 409 `stale_notice`)
        and returns the consent token. A person under the guardian age answers 409 `guardian_required`;
        a purpose without a current impact assessment 409 `assessment_required`; a second live consent
        to the same purpose 409 `consent_exists`. A purpose with `transmits_face_data: true` needs the
        person's own act of consent to the transmission, `evidence.transmission_consent: true` (else 422
        `transmission_consent_required`, R9).

        `"decision": "declined"` records a refusal (PIPL 16): 201, status `declined`, no token, the
        evidence and an audit event like a grant's. It is bound to any notice version the purpose has had,
        needs no assessment, and is refused for a minor (409 `guardian_required`: the guardian declines
        through a guardian request) and while a live consent exists (409 `consent_exists`: withdraw it).
        """
        caller = current_caller()
        session = db.session()
        key = _idempotency_key()
        fingerprint = consents.request_fingerprint(request.get_json(silent=True) or {})
        for attempt in range(2):
            if key is not None:
                replay = consents.find_by_idempotency_key(
                    session, org_id=caller.org_id, key=key, fingerprint=fingerprint
                )
                if replay is not None:
                    return consent_view(replay)
            record = consents.decline_consent if fields["decision"] == "declined" else consents.grant_consent
            try:
                consent = record(
                    session,
                    org_id=caller.org_id,
                    actor=caller.actor,
                    subject_id=fields["subject_id"],
                    purpose_code=fields["purpose"],
                    notice_version=fields["notice_version"],
                    evidence=fields["evidence"],
                    idempotency_key=key,
                    fingerprint=fingerprint,
                )
                session.commit()
                return consent_view(consent)
            except IntegrityError:
                # A concurrent request with the same key or for the same live consent won the race:
                # look again, and answer as that request did.
                session.rollback()
                if attempt:
                    raise
        raise AssertionError("unreachable")


@blp.route("/<string:consent_id>")
class ConsentById(MethodView):
    @blp.authorized("consents")
    @blp.response(200, ConsentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, consent_id: str) -> dict[str, Any]:
        """Read a consent: its status, and its token while active

        `status` is `active`, `pending_guardian`, `declined`, `revoked`, `expired` or
        `reconsent_required`; `token` is a freshly signed consent token while `active`, else `null`. A
        consent past its `expires_at` reads as `expired` (and the expiry is recorded).
        """
        session = db.session()
        consent = consents.get_consent(session, org_id=current_caller().org_id, consent_id=consent_id)
        if persist_expiry(session, consent):
            session.commit()
        return consent_view(consent)


@blp.route("/<string:consent_id>/receipt")
class ConsentReceipt(MethodView):
    @blp.authorized("consents", "admin")
    @blp.response(200, ConsentReceiptSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, consent_id: str) -> dict[str, Any]:
        """A signed consent receipt (ISO/IEC TS 27560 fields)

        `receipt` holds the record; `jws` is the same receipt signed ES256 with the consent-token key
        (header `typ: consent-receipt+jws`, `kid` in `/.well-known/jwks.json`), for the person to keep.
        """
        session = db.session()
        consent = consents.get_consent(session, org_id=current_caller().org_id, consent_id=consent_id)
        receipt = build_receipt(session, consent)
        return {"receipt": receipt, "jws": sign_receipt(receipt, key_set())}


@blp.route("/<string:consent_id>/revoke")
class ConsentRevocation(MethodView):
    @blp.authorized("consents")
    @blp.arguments(RevokeSchema, required=False)
    @blp.response(200, ConsentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any], consent_id: str) -> dict[str, Any]:
        """Withdraw a consent, effective at once everywhere

        Idempotent: withdrawing a revoked consent answers 200 and changes nothing. A revoke that answered
        200 is never undone: a guardian approval, erasure or expiry racing it loses. Earlier lawful
        processing stays on record (R3). `end_reason` becomes `withdrawn`; the optional `reason` text is
        kept as `end_note`, outside the audit trail, and erased with the subject.
        """
        caller = current_caller()
        session = db.session()
        consent = consents.revoke_consent(
            session, org_id=caller.org_id, actor=caller.actor, consent_id=consent_id, note=fields.get("reason")
        )
        session.commit()
        return consent_view(consent)
