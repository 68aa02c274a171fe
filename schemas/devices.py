"""Recognition devices."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema
from service.domain.places import LOCATION_TYPES


class DeviceCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    location_type = ma.fields.String(
        required=True,
        validate=validate.OneOf(LOCATION_TYPES),
        metadata={
            "description": "`hotel_room`, `public_bathhouse`, `changing_room` and `toilet` are refused with "
            "422 `prohibited_location` (R7)"
        },
    )
    location = ma.fields.String(load_default="", validate=validate.Length(max=500))
    public_place = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "In a public place: needs `signage_posted` (else 422 `signage_required`) and "
            "verifies only public-safety purposes"
        },
    )
    signage_posted = ma.fields.Boolean(load_default=False)


class DeviceSchema(StrictSchema):
    id = ma.fields.String()
    name = ma.fields.String()
    location_type = ma.fields.String()
    location = ma.fields.String()
    public_place = ma.fields.Boolean()
    signage_posted = ma.fields.Boolean()
    active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    deactivated_at = ma.fields.DateTime(allow_none=True)
