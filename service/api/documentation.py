"""What the spec shows beyond the views' docstrings and schemas: examples and error codes, applied as it is built.

:class:`ExamplesPlugin` is an apispec plugin: as flask-smorest documents each path, it gives every operation
the request and answer examples of its entry in ``service.api.examples.OPERATIONS``, and documents each error
status with the codes the operation can answer there, each an example body of the one error shape. Codes come
from the status (``DEFAULT_CODES``: a 401 is always ``unauthorized``) and from the entry's ``errors``; a
declared code whose status the view did not document adds that response. A status answered only with its
default codes keeps the shared component (``#/components/responses/NOT_FOUND``), whose examples
:func:`error_response` gives too.
"""

from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin

from service.error_catalogue import CATALOGUE, error_example

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
    return {
        "description": f"{phrase}\n\n{lines}" if codes else phrase,
        "content": {JSON: {"schema": schema, "examples": code_examples(codes)}},
    }


class ExamplesPlugin(BasePlugin):
    """Applies ``service.api.examples.OPERATIONS`` to each operation as the spec is built."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any) -> None:
        from service.api.examples import OPERATIONS

        for method, operation in (operations or {}).items():
            entry = OPERATIONS.get(operation_key(method, path or ""))
            if entry is None:
                continue  # tests/test_spec_examples.py names every operation without an entry
            body = operation.get("requestBody", {}).get("content", {}).get(JSON)
            if body is not None and entry.request is not None:
                body.setdefault("example", entry.request)
            responses: dict[Any, Any] = operation.setdefault("responses", {})
            self._document_success(responses, entry.response)
            self._document_errors(responses, entry.errors)

    @staticmethod
    def _document_success(responses: dict[Any, Any], example: Any) -> None:
        if example is None:
            return
        for status, response in responses.items():
            if str(status).startswith("2") and isinstance(response, dict):
                for media in response.get("content", {}).values():
                    media.setdefault("example", example)

    @staticmethod
    def _document_errors(responses: dict[Any, Any], declared: tuple[str, ...]) -> None:
        by_status: dict[int, list[str]] = {}
        for code in declared:
            if code not in CATALOGUE:
                raise KeyError(f"error code {code!r} is not in service.error_catalogue.CATALOGUE")
            by_status.setdefault(CATALOGUE[code].status, []).append(code)
        statuses = {int(status) for status in responses if str(status).isdigit() and int(status) >= 400}
        for status in sorted(statuses | set(by_status)):
            defaults = DEFAULT_CODES.get(status, ())
            extra = [code for code in by_status.get(status, ()) if code not in defaults]
            if not extra and status in statuses:
                continue  # the shared component documents the default codes
            codes = list(dict.fromkeys([*defaults, *by_status[status]]))
            for key in (status, str(status)):
                responses.pop(key, None)
            responses[str(status)] = error_response(status, codes, "Error")
