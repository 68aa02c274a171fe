"""flask-smorest, customised once: the error shape, authentication, and the blueprints."""

from __future__ import annotations

import functools
import http
import logging
from collections.abc import Callable
from typing import Any

import flask_smorest
from flask import Flask, request
from werkzeug.exceptions import HTTPException

from service.api.documentation import COMPONENT_CODES, ExamplesPlugin, error_response
from service.error_catalogue import catalogue_markdown
from service.errors import DomainError, ErrorSchema, UnsupportedMediaType, error_body, http_error_body
from service.keys.api_keys import authenticate, record_key_use_after_request

log = logging.getLogger(__name__)


#: Appended to the spec's description (``API_SPEC_OPTIONS``): the error catalogue.
ERROR_CODES_SECTION = f"""## Error codes

Every error answers one JSON shape; its `code` is stable and one of these. Each operation lists, under
its error statuses, the codes it can answer, each with an example body.

{catalogue_markdown()}
"""


class Api(flask_smorest.Api):
    """The API: every error, ours or the framework's, answers with :class:`ErrorSchema`."""

    ERROR_SCHEMA = ErrorSchema

    def _init_spec(self, **kwargs: Any) -> None:
        kwargs.setdefault("extra_plugins", [ExamplesPlugin()])
        super()._init_spec(**kwargs)
        info = self.spec.options.get("info", {})  # the app's settings: a copy, never changed in place
        description = "\n\n".join(part for part in (info.get("description"), ERROR_CODES_SECTION) if part)
        self.spec.options["info"] = {**info, "description": description}

    def _register_responses(self) -> None:
        """flask-smorest's shared error responses, each with real bodies of the error shape as examples."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status in COMPONENT_CODES:
                response = error_response(status, list(COMPONENT_CODES[status]), self.ERROR_SCHEMA)
            elif not 100 <= status < 200 and status not in (204, 304):
                response["content"] = {self.DEFAULT_RESPONSE_CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)
        default = error_response(500, ["internal_error"], self.ERROR_SCHEMA)
        default["description"] = "Default error response\n\n" + default["description"].split("\n\n", 1)[1]
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def _register_error_handlers(self) -> None:
        self._app.register_error_handler(HTTPException, self.handle_http_exception)
        self._app.register_error_handler(DomainError, handle_domain_error)

    def handle_http_exception(self, error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
        if (error.code or 500) >= 500:
            log.error("internal error: %s", error.name)
        return http_error_body(error)


def handle_domain_error(error: DomainError) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = dict(getattr(error, "headers", ()))
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return error_body(error.status, error.code, error.message, error.details), error.status, headers


def require_json_body(view: Callable[..., Any]) -> Callable[..., Any]:
    """A body sent as anything but JSON answers 415 ``unsupported_media_type``, before webargs would read it
    as missing (and answer 422 for fields that are there). No body at all is left to the schema."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if has_body and not request.is_json:  # application/json or application/*+json, as the verify endpoint
            raise UnsupportedMediaType()
        return view(*args, **kwargs)

    return wrapper


class Blueprint(flask_smorest.Blueprint):
    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """As flask-smorest's; a JSON body must be sent as JSON (415), and also documents 400 (malformed
        JSON) and 413 (too large)."""
        parse = super().arguments(schema, *args, **kwargs)
        if kwargs.get("location", "json") != "json":
            return parse

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            documented = self.alt_response(400, response="BAD_REQUEST")(require_json_body(parse(view)))
            documented = self.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")(documented)
            return self.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")(documented)

        return decorator

    def authorized(self, *scopes: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Require an API key with one of ``scopes``; documents the security scheme, 401 and 403."""

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                authenticate(*scopes)
                return view(*args, **kwargs)

            documented = self.doc(security=[{"ApiKey": []}])(wrapper)
            documented = self.alt_response(401, response="UNAUTHORIZED")(documented)
            return self.alt_response(403, response="FORBIDDEN")(documented)

        return decorator


def init_app(app: Flask) -> Api:
    from service.api import (
        assessments,
        audit,
        consent_events,
        consents,
        deletions,
        devices,
        filings,
        guardian_requests,
        health,
        incidents,
        keys,
        organization,
        purposes,
        reports,
        rights,
        status_lists,
        subjects,
        verifications,
        webhooks,
        wellknown,
    )

    api = Api(app)
    api.spec.components.security_scheme(
        "ApiKey", {"type": "http", "scheme": "bearer", "description": "An API key from `consent-gate keys create`"}
    )
    for module in (
        organization,
        keys,
        purposes,
        assessments,
        incidents,
        subjects,
        consents,
        devices,
        guardian_requests,
        rights,
        verifications,
        deletions,
        consent_events,
        status_lists,
        audit,
        reports,
        filings,
        webhooks,
        wellknown,
        health,
    ):
        api.register_blueprint(module.blp)
    api.register_blueprint(rights.access_blp)
    app.teardown_request(record_key_use_after_request)
    app.extensions["consent_gate.api"] = api
    return api
