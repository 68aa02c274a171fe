"""What the spec shows beyond the views' docstrings and schemas: examples and error codes, applied as it is built.

:class:`ExamplesPlugin` is an apispec plugin: as flask-smorest documents each path, it gives every operation
the request and answer examples of its entry in ``service.api.examples.OPERATIONS``, and documents each error
status with the codes the operation can answer there, each an example body of the one error shape. Codes come
from the status (``DEFAULT_CODES``: a 401 is always ``unauthorized``), from the entry's ``errors``, and from
what every operation of a kind can answer (:func:`implied_codes`: a list's ``invalid_cursor``, the rate
limiter's 429, the database's 503); a code whose status the view did not document adds that response. A
status answered only with the codes of its shared component (``#/components/responses/NOT_FOUND``, whose
examples :func:`error_response` gives too) refers to that component.
"""

from __future__ import annotations

import http
from typing import TYPE_CHECKING, Any

from apispec import BasePlugin

from service.error_catalogue import CATALOGUE, error_example

if TYPE_CHECKING:
    from service.api.examples import Operation

#: The codes a status always stands for where an operation documents it.
DEFAULT_CODES: dict[int, tuple[str, ...]] = {
    400: ("malformed_json", "json_too_deep"),
    401: ("unauthorized",),
    403: ("forbidden",),
    404: ("not_found",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    422: ("validation_error",),
    429: ("rate_limited",),
}

#: The codes the shared responses (``#/components/responses/...``) show: the defaults, and the failures that
#: may answer any request but that an operation declares where it answers them itself (``/readyz``).
COMPONENT_CODES: dict[int, tuple[str, ...]] = {
    **DEFAULT_CODES,
    500: ("internal_error",),
    503: ("service_unavailable",),
}

#: The headers an error status carries, whichever code answers it. A 503 keeps the ``Retry-After`` the rate
#: limiter sends with the answers it counts (``service.headers`` drops it from every other status).
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds until the rate limiter's window resets, on the operations it counts: "
            "a time to try again",
            "required": False,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

#: Operations that answer without the database: neither a pool timeout nor a database error reaches them, so
#: they never answer 503 ``service_unavailable``. ``tests/test_spec_examples.py`` breaks the database and
#: checks that these answer and every other operation answers 503.
WITHOUT_DATABASE = frozenset({"GET /healthz", "GET /.well-known/jwks.json"})

JSON = "application/json"


def operation_key(method: str, path: str) -> str:
    """How ``OPERATIONS`` names an operation: ``"POST /v1/consents"``, the path as the spec writes it."""
    return f"{method.upper()} {path}"


def code_examples(codes: list[str]) -> dict[str, Any]:
    return {code: {"summary": CATALOGUE[code].meaning, "value": error_example(code)} for code in codes}


def error_response(status: int, codes: list[str], schema: Any) -> dict[str, Any]:
    """A documented error status: its codes, each with its meaning and an example body."""
    phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Error"
    lines = "\n".join(f"- `{code}`: {CATALOGUE[code].meaning}" for code in codes)
    response: dict[str, Any] = {
        "description": f"{phrase}\n\n{lines}" if codes else phrase,
        "content": {JSON: {"schema": schema, "examples": code_examples(codes)}},
    }
    if status in ERROR_HEADERS:
        response["headers"] = ERROR_HEADERS[status]
    return response


def rate_limited(blueprint: str) -> bool:
    """Whether the rate limiter counts the operations of ``blueprint``: all but those it exempts."""
    from service.limits import EXEMPT_BLUEPRINTS

    return blueprint not in EXEMPT_BLUEPRINTS


def implied_codes(key: str, blueprint: str, operation: dict[str, Any]) -> list[str]:
    """The codes an operation answers because of what it is, whatever its entry declares.

    A list (a ``cursor`` query parameter) refuses a cursor it did not give; the rate limiter answers 429 on
    every operation it counts; a pool timeout or a database error answers 503 on every operation that uses
    the database.
    """
    codes = []
    query = {parameter.get("name") for parameter in _parameters(operation) if parameter.get("in") == "query"}
    if "cursor" in query:
        codes.append("invalid_cursor")
    if rate_limited(blueprint):
        codes.append("rate_limited")
    if key not in WITHOUT_DATABASE:
        codes.append("service_unavailable")
    return codes


def _parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [parameter for parameter in operation.get("parameters", []) if isinstance(parameter, dict)]


class ExamplesPlugin(BasePlugin):
    """Applies ``service.api.examples.OPERATIONS`` to each operation as the spec is built."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, rule: Any = None, **_: Any
    ) -> None:
        from service.api.examples import OPERATIONS

        blueprint = rule.endpoint.split(".", 1)[0] if rule is not None else ""
        for method, operation in (operations or {}).items():
            key = operation_key(method, path or "")
            entry = OPERATIONS.get(key)
            if entry is None:
                continue  # tests/test_spec_examples.py names every operation without an entry
            body = operation.get("requestBody", {}).get("content", {}).get(JSON)
            if body is not None and entry.request is not None:
                body.setdefault("example", entry.request)
            responses: dict[Any, Any] = operation.setdefault("responses", {})
            self._document_success(responses, entry)
            self._document_errors(responses, entry.errors, implied_codes(key, blueprint, operation))

    @staticmethod
    def _document_success(responses: dict[Any, Any], entry: Operation) -> None:
        for status, response in responses.items():
            if not str(status).startswith("2") or not isinstance(response, dict):
                continue
            content = response.setdefault("content", {})
            if not content and (entry.media is not None or entry.response is not None):
                # A view documented without a schema: a text or binary answer, a free-form object.
                content[entry.media or JSON] = _media_without_schema(entry.media or JSON)
            if entry.response is not None:
                for media in content.values():
                    media.setdefault("example", entry.response)
            for media_type, example in entry.other_media:
                content.setdefault(media_type, {**_media_without_schema(media_type), "example": example})
            if not content:
                del response["content"]  # 204: no body

    @staticmethod
    def _document_errors(responses: dict[Any, Any], declared: tuple[str, ...], implied: list[str]) -> None:
        by_status: dict[int, list[str]] = {}
        for code in declared:
            if code not in CATALOGUE:
                raise KeyError(f"error code {code!r} is not in service.error_catalogue.CATALOGUE")
            by_status.setdefault(CATALOGUE[code].status, []).append(code)
        statuses = {int(status) for status in responses if str(status).isdigit() and int(status) >= 400}
        for code in implied:
            status = CATALOGUE[code].status
            if status == 503 and status in statuses:
                continue  # the view answers 503 its own way (the verification's deny, /readyz)
            by_status.setdefault(status, []).append(code)
        for status in sorted(statuses | set(by_status)):
            defaults = DEFAULT_CODES.get(status, ())
            extra = [code for code in by_status.get(status, ()) if code not in defaults]
            if not extra and status in statuses:
                continue  # the view's response: the shared component, which documents the default codes
            codes = list(dict.fromkeys([*defaults, *by_status[status]]))
            for key in (status, str(status)):
                responses.pop(key, None)
            if codes == list(COMPONENT_CODES.get(status, ())):
                responses[str(status)] = http.HTTPStatus(status).name  # the shared component
            else:
                responses[str(status)] = error_response(status, codes, "Error")


def _media_without_schema(media: str) -> dict[str, Any]:
    if media == JSON:
        return {"schema": {"type": "object"}}
    if media.startswith("text/") or media.endswith(("+jwt", "+xml", "ndjson")):
        return {"schema": {"type": "string"}}
    return {}  # binary: OpenAPI 3.1 describes it by its media type alone
