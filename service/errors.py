"""Domain errors and the one JSON error shape every failure answers with.

Every error body is ``{"code": <stable machine-readable string>, "status": <HTTP status>,
"message": <human text>, "errors": <details, optional>, "request_id": <the id on the request's log lines>}``.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import UnsupportedMediaType as WerkzeugUnsupportedMediaType

#: HTTP statuses raised by Flask/werkzeug/webargs themselves, and the code each answers with.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


#: Every error ``code`` the API answers with. A test keeps this list and the code in step.
ERROR_CODES = (
    "bad_request",
    "malformed_json",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "gone",
    "payload_too_large",
    "unsupported_media_type",
    "validation_error",
    "invalid_cursor",
    "rate_limited",
    "internal_error",
    "service_unavailable",
    "database_unavailable",
    "prohibited_analysis",
    "unknown_analysis",
    "alternative_required",
    "missing_locale",
    "contact_required",
    "purpose_exists",
    "unknown_purpose",
    "subject_exists",
    "subject_erased",
    "guardian_required",
    "assessment_required",
    "stale_notice",
    "consent_exists",
    "consent_ended",
    "idempotency_key_reused",
    "invalid_idempotency_key",
    "invalid_name",
    "too_many_keys",
    "webhook_url_refused",
    "webhook_event_unknown",
    "too_many_webhooks",
    "invalid_scopes",
    "not_a_minor",
    "invalid_phone",
    "request_not_pending",
    "not_paper_request",
    "link_expired",
    "link_used",
    "request_locked",
    "prohibited_location",
    "signage_required",
    "json_too_deep",
    "state_changed",
    "sms_budget_exhausted",
    "phone_erased",
    "select_one",
    "attestation_required",
    "code_missing",
    "code_expired",
    "code_wrong",
    "code_locked",
    "transmission_consent_required",
    "recently_declined",
    "no_guardian_phone",
    "assessment_incomplete",
    "already_filed",
    "not_filed",
)


class DomainError(Exception):
    """A rule said no. ``code`` is stable and documented; ``status`` is the HTTP status."""

    status = 409
    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unprocessable(DomainError):
    status = 422
    code = "validation_error"


class ErrorSchema(ma.Schema):
    """The error body."""

    code = ma.fields.String(
        required=True,
        metadata={"description": "Stable machine-readable error code", "enum": list(ERROR_CODES)},
    )
    status = ma.fields.Integer(required=True, metadata={"description": "HTTP status"})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong, for people"})
    errors = ma.fields.Dict(metadata={"description": "Details, for example the invalid fields"})
    request_id = ma.fields.String(
        required=True,
        metadata={
            "description": "The request's id, as in the `X-Request-ID` header and on the service's log lines: "
            "quote it when reporting a problem"
        },
    )


class UnsupportedMediaType(WerkzeugUnsupportedMediaType):
    """A body that is not JSON where JSON is expected: 415 ``unsupported_media_type``."""

    description = "send the body as JSON, with 'Content-Type: application/json'"


def _current_request_id() -> str | None:
    # Imported here: the offline verifier imports service.* without Flask installed.
    from flask import g, has_request_context

    return g.get("request_id") if has_request_context() else None


def error_body(status: int, code: str, message: str, errors: Any = None) -> dict[str, Any]:
    """The error shape; in a Flask request it carries the request's id (the verification endpoint, in front
    of Flask, adds its own)."""
    body: dict[str, Any] = {"code": code, "status": status, "message": message}
    if errors:
        body["errors"] = errors
    found = _current_request_id()
    if found is not None:
        body["request_id"] = found
    return body


def _problems(errors: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Each invalid field's dotted path (``notice.en``, ``items.0.purpose``) and first message."""
    if isinstance(errors, dict):
        found = []
        for key, value in errors.items():
            # ``_schema``: the body as a whole; the top level of webargs' messages names a location (json, query).
            step = path if key == "_schema" or (not path and key in LOCATIONS) else (*path, str(key))
            found.extend(_problems(value, step))
        return found
    if isinstance(errors, list | tuple):
        if errors and all(isinstance(item, str) for item in errors):
            return [(".".join(path), errors[0])]
        return [found for item in errors for found in _problems(item, path)]
    return [(".".join(path), str(errors))]


#: Where webargs read what it refused: the first key of its messages.
LOCATIONS = frozenset({"json", "query", "querystring", "form", "headers", "cookies", "files", "view_args", "path"})


def validation_message(errors: Any) -> str:
    """The top-level message of a 422: the first invalid field and what is wrong with it."""
    problems = _problems(errors)
    if not problems:
        return "the request is invalid"
    field, problem = problems[0]
    message = f"{field}: {problem}" if field else problem
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more: see errors)"
    return message


def http_error_body(error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Turn a werkzeug/webargs HTTP exception into the error shape."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    code = data.get("error_code") or HTTP_CODES.get(status, "error")
    if status == 400 and errors and "json" in errors:
        code = "malformed_json"
    message = data.get("message") or error.description or error.name
    if status == 422 and errors:
        message = validation_message(errors)
    if status >= 500:
        message = error.name
    headers = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return error_body(status, code, message, errors), status, headers
