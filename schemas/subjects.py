"""People and their consents."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import LOCALES, StrictSchema, text

CONSENT_STATUSES = ("active", "pending_guardian", "declined", "revoked", "expired", "reconsent_required")
EVIDENCE_METHODS = ("checkbox", "button", "signature", "voice", "other")
EVIDENCE_CHANNELS = ("mobile_app", "web", "kiosk", "paper", "sms_link", "qr_code", "other")


class SubjectCreateSchema(StrictSchema):
    external_ref = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Your reference for the person, unique within your organization"},
    )
    birth_date = ma.fields.Date(required=True, metadata={"description": "The server computes age from it (R4)"})


class SubjectSchema(StrictSchema):
    id = ma.fields.String()
    external_ref = ma.fields.String(allow_none=True)
    birth_date = ma.fields.Date(allow_none=True)
    is_minor = ma.fields.Boolean()
    guardian_required_until = ma.fields.Date(
        allow_none=True, metadata={"description": "The day the person reaches the guardian age"}
    )
    created_at = ma.fields.DateTime()
    erased_at = ma.fields.DateTime(allow_none=True)


class EvidenceSchema(StrictSchema):
    method = ma.fields.String(required=True, validate=validate.OneOf(EVIDENCE_METHODS))
    channel = ma.fields.String(required=True, validate=validate.OneOf(EVIDENCE_CHANNELS))
    locale = ma.fields.String(required=True, validate=validate.OneOf(LOCALES))


class ConsentCreateSchema(StrictSchema):
    subject_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=36))
    purpose = ma.fields.String(required=True, validate=validate.Length(min=1, max=64))
    notice_version = ma.fields.Integer(
        required=True, validate=validate.Range(min=1), metadata={"description": "The notice version shown"}
    )
    evidence = ma.fields.Nested(EvidenceSchema, required=True)


class ConsentSchema(StrictSchema):
    id = ma.fields.String()
    subject_id = ma.fields.String()
    purpose = ma.fields.String()
    status = ma.fields.String(metadata={"enum": list(CONSENT_STATUSES)})
    notice_version = ma.fields.Integer()
    notice_digest = ma.fields.String()
    guardian_authorized = ma.fields.Boolean()
    evidence = ma.fields.Dict()
    granted_at = ma.fields.DateTime(allow_none=True)
    expires_at = ma.fields.DateTime(allow_none=True)
    ended_at = ma.fields.DateTime(allow_none=True)
    end_reason = ma.fields.String(allow_none=True)
    token = ma.fields.String(allow_none=True, metadata={"description": "The consent token, while active"})
    created_at = ma.fields.DateTime()


class RevokeSchema(StrictSchema):
    reason = text(500, required=False, metadata={"description": "Why, as the person or operator said it"})


class ConsentReceiptSchema(StrictSchema):
    receipt = ma.fields.Dict(metadata={"description": "The consent record, with ISO/IEC TS 27560 fields"})
    jws = ma.fields.String(metadata={"description": "The receipt signed ES256 (compact JWS)"})
