"""Filings with the cyberspace office (R12, Measures Art. 15), and the materials pack."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema
from service.domain.filing_records import FILING_KINDS


def not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("must not be blank")


class FilingCreateSchema(StrictSchema):
    kind = ma.fields.String(
        load_default="initial",
        validate=validate.OneOf(FILING_KINDS),
        metadata={"description": "`initial` (the first filing) or `change` (after a material change)"},
    )
    filed_on = ma.fields.Date(
        required=True, metadata={"description": "The day it was filed; not in the future", "example": "2026-11-20"}
    )
    authority = ma.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=200), not_blank],
        metadata={"description": "The cyberspace office filed with", "example": "上海市互联网信息办公室"},
    )
    filing_number = ma.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=100), not_blank],
        metadata={"description": "The number the office gave the filing", "example": "沪网信备-2026-0001"},
    )

    @ma.post_load
    def strip_texts(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        for name in ("authority", "filing_number"):
            data[name] = data[name].strip()
        return data


class FilingSchema(StrictSchema):
    id = ma.fields.String()
    kind = ma.fields.String()
    filed_on = ma.fields.Date()
    authority = ma.fields.String()
    filing_number = ma.fields.String()
    purposes = ma.fields.List(
        ma.fields.String(), attribute="purpose_codes", metadata={"description": "The purposes it covers"}
    )
    created_at = ma.fields.DateTime()


class FilingMaterialsSchema(StrictSchema):
    generated_at = ma.fields.DateTime()
    handler = ma.fields.Dict(metadata={"description": "Who processes: name, contact, pipo, complaint_channel"})
    count = ma.fields.Dict(metadata={"description": "People with an active consent now, and the threshold"})
    purposes = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "Each purpose with its processing method and capture"}
    )
    devices = ma.fields.List(ma.fields.Dict(), metadata={"description": "Active recognition devices"})
    safeguards = ma.fields.List(ma.fields.Dict(), metadata={"description": "The safeguards of each current assessment"})
    assessments = ma.fields.List(ma.fields.Dict(), metadata={"description": "Every impact assessment"})
    filings = ma.fields.List(ma.fields.Dict(), metadata={"description": "The filings recorded so far"})
