"""Fields and base classes shared by the API schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import validate

from service.config import SUPPORTED_LOCALES as LOCALES

ID_FIELD_LENGTH = validate.Length(min=1, max=36)


#: Cursors and counters are 32-bit integers in the database.
MAX_INT = 2_147_483_647


def unstorable(value: Any) -> bool:
    """Text no database can store: NUL characters, or lone UTF-16 surrogates that are not valid Unicode."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, Mapping):  # a JSON object, or the query string's multidict (every value of a key)
        values = value.getlist if hasattr(value, "getlist") else None
        return any(unstorable(k) or any(unstorable(v) for v in (values(k) if values else [value[k]])) for k in value)
    if isinstance(value, list):
        return any(unstorable(item) for item in value)
    return False


class StrictSchema(ma.Schema):
    """Rejects unknown fields (no face data rides along) and text that cannot be stored."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load
    def refuse_unstorable_text(self, data: Any, **_kwargs: Any) -> Any:
        if unstorable(data):
            raise ma.ValidationError("text must be valid Unicode without NUL characters", "_schema")
        return data


def text(max_length: int, *, required: bool = True, **kwargs: Any) -> ma.fields.String:
    return ma.fields.String(required=required, validate=validate.Length(min=1, max=max_length), **kwargs)


class LocalizedText(ma.fields.Dict):
    """A text people read, by locale: ``{"zh-CN": …, "en": …}``. A plain string is refused; the locales
    in ``REQUIRED_LOCALES`` are checked by the domain (422 ``missing_locale``)."""

    def __init__(self, max_length: int, *, required: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("description", 'By locale: {"zh-CN": …, "en": …}')
        super().__init__(
            keys=ma.fields.String(validate=validate.OneOf(LOCALES)),
            values=ma.fields.String(validate=validate.Length(min=1, max=max_length)),
            validate=validate.Length(min=1, error="give the text in zh-CN and/or en"),
            required=required,
            **kwargs,
        )


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
    after = ma.fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_INT))
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ListQuerySchema(StrictSchema):
    """``?cursor=&limit=`` of every list (a list with filters subclasses it)."""

    cursor = ma.fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The `next_cursor` of the last page; absent for the first page"},
    )
    limit = ma.fields.Integer(
        load_default=100, validate=validate.Range(min=1, max=1000), metadata={"description": "At most 1000"}
    )


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The schema of a page of ``item``: ``{"items": [...], "next_cursor": str | null}``."""
    fields: dict[str, Any] = {
        "items": ma.fields.List(ma.fields.Nested(item)),
        "next_cursor": ma.fields.String(
            allow_none=True,
            metadata={"description": "Pass it as `cursor` for the next page; null on the last page"},
        ),
    }
    return type(name, (StrictSchema,), {**fields, "__doc__": f"A page of {item.__name__.removesuffix('Schema')}."})
