"""Guardian requests: the app's side of the guardian flow."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import LOCALES, StrictSchema

RELATIONSHIPS = ("parent", "legal_guardian", "other")
DELIVERIES = ("sms", "qr")
REQUEST_STATUSES = ("pending", "approved", "partially_approved", "declined", "expired", "locked")


class GuardianSchema(StrictSchema):
    phone = ma.fields.String(
        required=True, validate=validate.Length(min=4, max=20), metadata={"description": "E.164, e.g. +8613812345678"}
    )
    relationship = ma.fields.String(required=True, validate=validate.OneOf(RELATIONSHIPS))


class GuardianRequestCreateSchema(StrictSchema):
    subject_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=36))
    purposes = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=20),
    )
    guardian = ma.fields.Nested(GuardianSchema, required=True)
    delivery = ma.fields.String(
        required=True,
        validate=validate.OneOf(DELIVERIES),
        metadata={
            "description": "`sms`: the link goes to the guardian's phone. `qr`: the app shows the QR code; "
            "the guardian proves the phone with an SMS code before deciding."
        },
    )
    locale = ma.fields.String(load_default="zh-CN", validate=validate.OneOf(LOCALES))


class GuardianConsentSchema(StrictSchema):
    id = ma.fields.String()
    purpose = ma.fields.String()
    status = ma.fields.String()


class GuardianOnRecordSchema(StrictSchema):
    phone_masked = ma.fields.String()
    relationship = ma.fields.String()


class GuardianRequestSchema(StrictSchema):
    id = ma.fields.String()
    subject_id = ma.fields.String()
    status = ma.fields.String(metadata={"enum": list(REQUEST_STATUSES)})
    delivery = ma.fields.String()
    delivery_status = ma.fields.String(metadata={"enum": ["pending", "sent", "failed", "not_required"]})
    delivery_error = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why the last link SMS failed: `sms_invalid_number`, `sms_rejected`, "
            "`sms_provider_unavailable`"
        },
    )
    locale = ma.fields.String()
    guardian = ma.fields.Nested(GuardianOnRecordSchema)
    consents = ma.fields.List(ma.fields.Nested(GuardianConsentSchema))
    approve_url = ma.fields.String(allow_none=True, metadata={"description": "While pending"})
    qr_png_url = ma.fields.String(allow_none=True)
    qr_svg_url = ma.fields.String(allow_none=True)
    expires_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)
    poll_interval = ma.fields.Integer(metadata={"description": "Seconds between polls of this resource"})
    created_at = ma.fields.DateTime()
