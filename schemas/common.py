"""Fields and base classes shared by the API schemas."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

LOCALES = ("zh-CN", "en")
ID_FIELD_LENGTH = validate.Length(min=1, max=36)


class StrictSchema(ma.Schema):
    """Rejects unknown fields (R: no face data rides along), the marshmallow default made explicit."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


def text(max_length: int, *, required: bool = True, **kwargs: Any) -> ma.fields.String:
    return ma.fields.String(required=required, validate=validate.Length(min=1, max=max_length), **kwargs)


class NoticeTexts(ma.fields.Dict):
    """Notice texts by locale, at least one of zh-CN and en."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=ma.fields.String(validate=validate.OneOf(LOCALES)),
            values=ma.fields.String(validate=validate.Length(min=1, max=20000)),
            validate=validate.Length(min=1, error="give the notice in zh-CN and/or en"),
            **kwargs,
        )


class PageQuerySchema(StrictSchema):
    after = ma.fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
