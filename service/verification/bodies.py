"""Reading and validating a verification's body: the same answers for every shape, size and encoding.

The body is read whatever its transfer encoding (a declared length, or chunked), up to the endpoint's
size limit; its nesting is measured before any parser sees it; it is parsed as JSON; then checked against
the marshmallow schema that documents it, so that every 4xx detail comes from that one schema. A body
the schema would plainly accept (the common case) is recognised without running marshmallow, by rules
read off the same schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import validate
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, UnprocessableEntity

from schemas.common import unstorable
from schemas.verifications import VerificationBatchRequestSchema, VerificationRequestSchema
from service.errors import UnsupportedMediaType
from service.limits import MAX_JSON_DEPTH, BadRequestJson, json_depth
from service.verification.rules import VerificationRequest

Reader = Callable[[Any], list[VerificationRequest]]


def _longest(field: ma.fields.Field) -> int:
    """The ``max`` of a field's length validator: read off the schema so the two cannot drift apart."""
    return next(int(v.max) for v in field.validators if isinstance(v, validate.Length) and v.max is not None)


FIELD_LENGTHS = {name: _longest(field) for name, field in VerificationRequestSchema().fields.items()}
BATCH_MAX = _longest(VerificationBatchRequestSchema().fields["items"])
SINGLE_SCHEMA = VerificationRequestSchema()
BATCH_SCHEMA = VerificationBatchRequestSchema()


def _with_messages(error: HTTPException, messages: Any) -> HTTPException:
    """As webargs raises it, so that ``service.errors.http_error_body`` renders it as for every view."""
    error.data = {"messages": {"json": messages}}  # type: ignore[attr-defined]
    return error


def read_body(environ: dict[str, Any], max_length: int) -> bytes:
    """The request body, whatever its transfer encoding; 413 beyond ``max_length``, 415 if not JSON."""
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise UnsupportedMediaType()
    encoding = environ.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
    chunked = encoding == "chunked"
    declared = environ.get("CONTENT_LENGTH", "").strip()
    if encoding and not chunked:
        raise BadRequest("the only transfer encoding accepted is chunked")
    if chunked and declared:
        # RFC 9112 6.3: a message with both is a smuggling attempt or a broken proxy: refuse it.
        raise BadRequest("send either Content-Length or Transfer-Encoding: chunked, not both")
    if declared and not (declared.isascii() and declared.isdigit() and len(declared) <= 12):
        raise BadRequest("the Content-Length header is not a number")
    if declared and int(declared) > max_length:
        raise RequestEntityTooLarge()
    try:
        if declared:
            return bytes(environ["wsgi.input"].read(int(declared)))
        if chunked or environ.get("wsgi.input_terminated"):
            # No declared length: read one byte past the limit to know whether it is over.
            body = bytes(environ["wsgi.input"].read(max_length + 1))
            if len(body) > max_length:
                raise RequestEntityTooLarge()
            return body
    except HTTPException:
        raise
    except Exception:  # the client's framing is broken (a bad chunk size, a body cut short): its error
        raise BadRequest("the request body could not be read: its framing is broken") from None
    return b""


def check_depth(body: bytes) -> bytes:
    """``body``, unless its JSON nesting is too deep to parse safely: 400 ``json_too_deep``."""
    # Counting brackets is a C loop; only a body with enough of them is measured properly.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and json_depth(body) > MAX_JSON_DEPTH:
        raise BadRequestJson()
    return body


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body`` (its depth checked already): 400 ``malformed_json`` if it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))  # UTF-8 only, no byte-order mark (RFC 8259), as elsewhere
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or a number too long to convert
        raise _with_messages(BadRequest(), ["Invalid JSON body."]) from None


def _plain_item(data: Any) -> VerificationRequest | None:
    """The request in ``data`` if the schema plainly accepts it as it stands (the common case)."""
    if type(data) is not dict or "purpose" not in data or ("token" in data) == ("subject_id" in data):
        return None
    for name, value in data.items():
        longest = FIELD_LENGTHS.get(name)
        if longest is None or type(value) is not str or not 0 < len(value) <= longest:
            return None
        if not (value.isascii() and "\x00" not in value) and unstorable(value):  # ASCII: only NUL is unstorable
            return None
    return VerificationRequest(**data)


def _validated(schema: ma.Schema, data: Any) -> Any:
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        raise _with_messages(UnprocessableEntity(), error.messages) from None


def single(data: Any) -> list[VerificationRequest]:
    """The one request of ``POST /v1/verifications``; 422 with the schema's details if it is not one."""
    found = _plain_item(data)
    if found is None:
        found = VerificationRequest(**_validated(SINGLE_SCHEMA, data))
    return [found]


def batch(data: Any) -> list[VerificationRequest]:
    """The items of ``POST /v1/verifications/batch``, in order; 422 with the schema's details if invalid."""
    plain = type(data) is dict and data.keys() == {"items"} and type(data["items"]) is list
    if plain and 0 < len(data["items"]) <= BATCH_MAX:
        items = [_plain_item(entry) for entry in data["items"]]
        if all(item is not None for item in items):
            return items  # type: ignore[return-value]
    return [VerificationRequest(**item) for item in _validated(BATCH_SCHEMA, data)["items"]]
