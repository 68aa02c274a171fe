"""Consents: an adult's separate consent, its withdrawal, its receipt."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from schemas.common import ID_FIELD_LENGTH, LOCALES, ListQuerySchema, StrictSchema, page_schema, text
from service.domain.statuses import ConsentStatus

EVIDENCE_METHODS = ("checkbox", "button", "signature", "voice", "other")
#: What the person decided: consent, or a refusal that is recorded as carefully (PIPL 16).
CONSENT_DECISIONS = ("granted", "declined")
EVIDENCE_CHANNELS = ("mobile_app", "web", "kiosk", "paper", "sms_link", "qr_code", "other")


class JsonBoolean(ma.fields.Boolean):
    """A JSON `true` or `false` only: an act of consent is not a string or a number that reads as one."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class EvidenceSchema(StrictSchema):
    method = ma.fields.String(required=True, validate=validate.OneOf(EVIDENCE_METHODS))
    channel = ma.fields.String(required=True, validate=validate.OneOf(EVIDENCE_CHANNELS))
    locale = ma.fields.String(required=True, validate=validate.OneOf(LOCALES))
    transmission_consent = JsonBoolean(
        required=False,
        metadata={
            "description": "The person's own, separate act of consent to their face data leaving the device "
            "(R9). Required `true` to grant a purpose with `transmits_face_data: true` (else 422 "
            "`transmission_consent_required`); recorded in the consent's evidence"
        },
    )


class ConsentCreateSchema(StrictSchema):
    subject_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=36))
    purpose = ma.fields.String(required=True, validate=validate.Length(min=1, max=64))
    notice_version = ma.fields.Integer(
        required=True, validate=validate.Range(min=1), metadata={"description": "The notice version shown"}
    )
    evidence = ma.fields.Nested(EvidenceSchema, required=True)
    decision = ma.fields.String(
        required=False,
        load_default=CONSENT_DECISIONS[0],
        validate=validate.OneOf(CONSENT_DECISIONS),
        metadata={
            "description": "`granted` (default) or `declined`: a refusal is recorded like a grant (201, status "
            "`declined`, no token), without penalty (PIPL 16, Measures Art. 12)"
        },
    )


class ConsentSchema(StrictSchema):
    id = ma.fields.String()
    subject_id = ma.fields.String()
    purpose = ma.fields.String()
    status = ma.fields.String(metadata={"enum": [status.value for status in ConsentStatus]})
    notice_version = ma.fields.Integer()
    notice_digest = ma.fields.String()
    guardian_authorized = ma.fields.Boolean()
    evidence = ma.fields.Dict()
    granted_at = ma.fields.DateTime(allow_none=True)
    expires_at = ma.fields.DateTime(allow_none=True)
    ended_at = ma.fields.DateTime(allow_none=True)
    end_reason = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why it ended, as a code: `withdrawn`, `subject_erased`, `guardian_withdrawal`, "
            "`guardian_declined`, `not_selected`, `guardian_request_expired`, `guardian_age_reached`, "
            "`retention_period_ended` ..."
        },
    )
    end_note = ma.fields.String(
        allow_none=True,
        metadata={"description": "The words given with a withdrawal (`reason` of the revoke); erased with the subject"},
    )
    token = ma.fields.String(allow_none=True, metadata={"description": "The consent token, while active"})
    created_at = ma.fields.DateTime()


ConsentPageSchema = page_schema(ConsentSchema, "ConsentPageSchema")


class ConsentQuerySchema(ListQuerySchema):
    subject_id = ma.fields.String(validate=ID_FIELD_LENGTH, metadata={"description": "Only this person's consents"})
    purpose = ma.fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "Only consents to this purpose (its code)"}
    )
    status = ma.fields.String(
        validate=validate.OneOf([status.value for status in ConsentStatus]),
        metadata={"description": "Only consents in this status, as `GET /v1/consents/{id}` shows it"},
    )


class RevokeSchema(StrictSchema):
    reason = text(
        500,
        required=False,
        metadata={
            "description": "Why, as the person or operator said it. Kept on the consent as `end_note`, out of "
            "the audit trail, and erased with the subject"
        },
    )


class ConsentReceiptSchema(StrictSchema):
    receipt = ma.fields.Dict(metadata={"description": "The consent record, with ISO/IEC TS 27560 fields"})
    jws = ma.fields.String(metadata={"description": "The receipt signed ES256 (compact JWS)"})
