"""flask-smorest, customised once: the error shape, authentication, and the blueprints."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import flask_smorest
from flask import Flask
from werkzeug.exceptions import HTTPException

from service.errors import DomainError, ErrorSchema, error_body, http_error_body
from service.keys.api_keys import authenticate, record_key_use_after_request

log = logging.getLogger(__name__)


class Api(flask_smorest.Api):
    """The API: every error, ours or the framework's, answers with :class:`ErrorSchema`."""

    ERROR_SCHEMA = ErrorSchema

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


class Blueprint(flask_smorest.Blueprint):
    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """As flask-smorest's, and a JSON body also documents 400 (malformed JSON) and 413 (too large)."""
        parse = super().arguments(schema, *args, **kwargs)
        if kwargs.get("location", "json") != "json":
            return parse

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            documented = self.alt_response(400, response="BAD_REQUEST")(parse(view))
            return self.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")(documented)

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
        wellknown,
        health,
    ):
        api.register_blueprint(module.blp)
    api.register_blueprint(rights.access_blp)
    app.teardown_request(record_key_use_after_request)
    app.extensions["consent_gate.api"] = api
    return api
