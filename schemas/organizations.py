"""The organization (the personal-information handler) as people are told of it."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema, text


class PipoSchema(StrictSchema):
    name = text(200, metadata={"description": "The personal-information protection officer's name or role"})
    contact = text(200, metadata={"description": "How people reach the officer (phone, e-mail)"})

    @ma.validates_schema
    def not_blank(self, data: dict[str, Any], **_kwargs: Any) -> None:
        blank = [field for field in ("name", "contact") if field in data and not data[field].strip()]
        if blank:
            raise ma.ValidationError({field: ["cannot be blank"] for field in blank})


class OrganizationSchema(StrictSchema):
    id = ma.fields.String()
    name = ma.fields.String()
    contact = ma.fields.String(metadata={"description": "How people reach the organization"})
    pipo = ma.fields.Nested(PipoSchema, allow_none=True, metadata={"description": "PIPL Art. 52"})
    complaint_channel = ma.fields.String(
        allow_none=True, metadata={"description": "Where people complain or exercise their rights (PIPL Art. 50)"}
    )
    created_at = ma.fields.DateTime()


class OrganizationPatchSchema(StrictSchema):
    contact = text(200, required=False)
    pipo = ma.fields.Nested(PipoSchema, allow_none=True, metadata={"description": "null removes it"})
    complaint_channel = ma.fields.String(
        allow_none=True, validate=validate.Length(min=1, max=500), metadata={"description": "null removes it"}
    )

    @ma.validates_schema
    def something_to_change(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("give contact, pipo or complaint_channel", "_schema")
        if "contact" in data and not data["contact"].strip():
            raise ma.ValidationError("the contact cannot be blank", "contact")
        if data.get("complaint_channel") is not None and not data["complaint_channel"].strip():
            raise ma.ValidationError("the complaint channel cannot be blank (null removes it)", "complaint_channel")
