"""Recognition devices."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema, page_schema
from service.domain.places import LOCATION_TYPES

#: Fields a v1 client may still send: derived or replaced in v2, refused with a reason rather than ignored.
READ_ONLY = {
    "public_place": "derived from location_type: read-only",
    "signage_posted": "replaced by signage {posted_on, text, photo_sha256} and collection_area",
}


class SignageSchema(StrictSchema):
    """Evidence of the prominent signs a public place needs (R7); the registry checks each field (422
    ``signage_required`` naming it)."""

    posted_on = ma.fields.Date(metadata={"description": "The day the signs were posted; not in the future"})
    text = ma.fields.String(
        validate=validate.Length(max=2000), metadata={"description": "What the signs say (at least 4 characters)"}
    )
    photo_sha256 = ma.fields.String(
        validate=validate.Length(max=64),
        metadata={"description": "SHA-256 of a photo of the signs as posted: 64 lowercase hex digits"},
    )


class DeviceCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    location_type = ma.fields.String(
        required=True,
        validate=validate.OneOf(LOCATION_TYPES),
        metadata={
            "description": "`hotel_room`, `public_bathhouse`, `changing_room` and `toilet` are refused with "
            "422 `prohibited_location` (R7). `retail_store`, `bank_branch`, `transport_hub`, `street`, "
            "`public_square`, `hotel_lobby`, `hospital`, `stadium` and `other` are public places: they need "
            "`signage` and `collection_area` and verify only public-safety purposes"
        },
    )
    location = ma.fields.String(load_default="", validate=validate.Length(max=500))
    location_description = ma.fields.String(
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": "Required for `location_type: other`; naming a private place (hotel room, bathroom, "
            "toilet, changing room, dormitory, in English or Chinese) → 422 `prohibited_location`"
        },
    )
    signage = ma.fields.Nested(SignageSchema, metadata={"description": "Required in a public place"})
    collection_area = ma.fields.String(
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Where faces are collected; required in a public place"},
    )

    @ma.pre_load
    def refuse_read_only(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, dict):
            sent = {name: [reason] for name, reason in READ_ONLY.items() if name in data}
            if sent:
                raise ma.ValidationError(sent)
        return data


class DeviceSchema(StrictSchema):
    id = ma.fields.String()
    name = ma.fields.String()
    location_type = ma.fields.String()
    location = ma.fields.String()
    location_description = ma.fields.String(allow_none=True)
    public_place = ma.fields.Boolean(metadata={"description": "Derived from `location_type`"})
    signage = ma.fields.Nested(SignageSchema, allow_none=True)
    collection_area = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    deactivated_at = ma.fields.DateTime(allow_none=True)


DevicePageSchema = page_schema(DeviceSchema, "DevicePageSchema")
