"""Verification requests and decisions."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema

REASONS = (
    "consent_active",
    "invalid_token",
    "no_consent",
    "unknown_purpose",
    "purpose_mismatch",
    "pending_guardian",
    "declined",
    "revoked",
    "expired",
    "reconsent_required",
    "assessment_required",
    "device_required",
    "device_unknown",
    "prohibited_location",
    "public_safety_only",
    "subject_erased",
    "unavailable",
)


class VerificationRequestSchema(StrictSchema):
    purpose = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The purpose the caller is about to process"},
    )
    token = ma.fields.String(validate=validate.Length(min=1, max=4096))
    subject_id = ma.fields.String(validate=validate.Length(min=1, max=36))
    device_id = ma.fields.String(validate=validate.Length(min=1, max=64))

    @ma.validates_schema
    def one_credential(self, data: dict[str, object], **_kwargs: object) -> None:
        if ("token" in data) == ("subject_id" in data):
            raise ma.ValidationError("give exactly one of token or subject_id", "_schema")


class VerificationSchema(StrictSchema):
    decision = ma.fields.String(metadata={"enum": ["allow", "deny"]})
    reason = ma.fields.String(metadata={"enum": list(REASONS)})
    consent_id = ma.fields.String(allow_none=True)
    verification_id = ma.fields.String(allow_none=True)


class VerificationUnavailableSchema(StrictSchema):
    """Answered when the service cannot decide: it fails closed."""

    decision = ma.fields.String(metadata={"enum": ["deny"]})
    reason = ma.fields.String(metadata={"enum": ["unavailable"]})
    code = ma.fields.String(metadata={"enum": ["service_unavailable"]})
    status = ma.fields.Integer()
    message = ma.fields.String()
    request_id = ma.fields.String(metadata={"description": "The request's id, as in the `X-Request-ID` header"})


class VerificationBatchRequestSchema(StrictSchema):
    items = ma.fields.List(
        ma.fields.Nested(VerificationRequestSchema),
        required=True,
        validate=validate.Length(min=1, max=1000, error="give 1 to 1000 items"),
    )


class VerificationBatchSchema(StrictSchema):
    results = ma.fields.List(ma.fields.Nested(VerificationSchema), metadata={"description": "One per item, in order"})
