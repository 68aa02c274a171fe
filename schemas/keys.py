"""The organization's API keys."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema, page_schema, text
from service.domain.organizations import SCOPES


class ApiKeyCreateSchema(StrictSchema):
    name = text(100, metadata={"description": "What the key is for, e.g. `gate terminals, building A`"})
    scopes = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(SCOPES)),
        required=True,
        validate=validate.Length(min=1, max=len(SCOPES)),
        metadata={"description": "One or more of `admin`, `consents`, `verify`"},
    )


class ApiKeySchema(StrictSchema):
    """A key as listed: never its secret, nor the secret's hash."""

    id = ma.fields.String()
    name = ma.fields.String(allow_none=True, metadata={"description": "Null for keys made before names existed"})
    prefix = ma.fields.String(metadata={"description": "The first characters of the key, to tell keys apart"})
    scopes = ma.fields.List(ma.fields.String(), attribute="scope_list")
    created_at = ma.fields.DateTime()
    last_used_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When it last authenticated a request; up to a minute behind"}
    )
    revoked_at = ma.fields.DateTime(allow_none=True)
    created_by = ma.fields.String(
        attribute="creator",
        metadata={
            "description": "Who created the key: the `id` of the key that created it through this API, or `cli` "
            "for a key made with `consent-gate keys create`"
        },
    )


ApiKeyPageSchema = page_schema(ApiKeySchema, "ApiKeyPageSchema")


class ApiKeyCreatedSchema(StrictSchema):
    id = ma.fields.String()
    key = ma.fields.String(metadata={"description": "The key itself: shown once, never stored, never shown again"})
    name = ma.fields.String()
    scopes = ma.fields.List(ma.fields.String())
