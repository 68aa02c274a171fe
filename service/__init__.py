"""Consent Gate: separate, purpose-scoped consent for facial recognition."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the offline verifier imports service.* without Flask or SQLAlchemy installed
    from flask import Flask
    from sqlalchemy.exc import DBAPIError, IntegrityError

#: The one version: the package's (pyproject reads it from here), ``consent-gate --version`` and the spec's
#: ``info.version``. The contract is v2 (DESIGN.md); its paths stay under ``/v1``.
__version__ = "2.0.0"

log = logging.getLogger(__name__)

API_SETTINGS = {
    "API_TITLE": "Consent Gate",
    "API_VERSION": __version__,
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Issues, verifies and revokes separate, purpose-scoped consent for processing a "
            "person's face, runs the guardian flow for children under 14, and keeps the records the "
            "facial-recognition Measures and the PIPL ask for. Every error answers with "
            "`{code, status, message, errors?, request_id}`; `code` is stable.",
        }
    },
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, database, signing keys, API, CLI. Nothing happens at import time.

    In production (``ENV``, the default) it refuses, with one ``ConfigError`` naming each of them, the
    development defaults that are unsafe there (``config.production_problems``).
    """
    from flask import Flask
    from sqlalchemy.exc import DBAPIError, IntegrityError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from service import api, cli, db, docs, guardian, headers, limits, observability, people, report, sms
    from service.config import finalize, from_environment, refuse_unsafe_production
    from service.keys import data_key, signing
    from service.verification import endpoint

    settings = from_environment()
    settings.update(config or {})
    refuse_unsafe_production(settings)
    app = Flask(__name__, instance_path=settings.get("INSTANCE_PATH") or None)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(API_SETTINGS)
    app.config.update(finalize(settings, app.instance_path))

    observability.init_app(app)
    headers.init_app(app)  # before limits: see headers.init_app
    db.init_app(app)
    signing.init_app(app)
    data_key.init_app(app)
    sms.init_app(app)
    api.init_app(app)
    docs.init_app(app)
    guardian.init_app(app)
    people.init_app(app)
    report.init_app(app)
    limits.init_app(app)
    endpoint.init_app(app)
    limits.trust_proxies(app)
    cli.init_app(app)
    app.register_error_handler(DBAPIError, _database_unavailable)
    app.register_error_handler(IntegrityError, _integrity_conflict)
    app.register_error_handler(PoolTimeout, _no_connection_free)
    return app


def _database_unavailable(error: DBAPIError) -> tuple[dict[str, Any], int]:
    from service.errors import error_body

    log.error("database error: %s", type(error.orig).__name__ if error.orig else type(error).__name__)
    return error_body(503, "service_unavailable", "the database is unavailable; try again"), 503


def _no_connection_free(_error: Exception) -> tuple[dict[str, Any], int]:
    from service.errors import error_body

    # Every pooled connection stayed in use for DB_TIMEOUT_MS (DB_POOL_SIZE below the threads' needs).
    log.error("database error: no pooled connection free within the timeout")
    return error_body(503, "service_unavailable", "the database is unavailable; try again"), 503


def _integrity_conflict(_error: IntegrityError) -> tuple[dict[str, Any], int]:
    from service.errors import error_body

    # A concurrent request changed the same thing first; repeating the request gives its answer.
    return error_body(409, "conflict", "a concurrent change conflicted with this request; try again"), 409
