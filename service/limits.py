"""Rate limits (flask-limiter): per API key on the API, per client address on guardian and public pages.

Counters live in Redis when ``REDIS_URL`` is set, shared by every instance; otherwise in each process.
If Redis becomes unreachable, limits fall back to per-process memory rather than failing requests.
"""

from __future__ import annotations

import hashlib
import re
from typing import cast

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter

from service.errors import DomainError, NotFound

API_BLUEPRINTS = (
    "purposes",
    "assessments",
    "devices",
    "subjects",
    "consents",
    "guardian-requests",
    "audit",
    "reports",
)
VERIFY_BLUEPRINTS = ("verifications", "consent-events")
PUBLIC_BLUEPRINTS = ("jwks", "status-lists")
EXEMPT_BLUEPRINTS = ("health", "api-docs")


def _client_address() -> str:
    return f"ip:{request.remote_addr or 'unknown'}"


def _api_key_or_address() -> str:
    header = request.headers.get("Authorization", "")
    if header:
        # The key itself never becomes a storage key: only a prefix of its hash does.
        return "key:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    return _client_address()


def _blueprint(app: Flask, name: str) -> Blueprint:
    return cast(Blueprint, app.blueprints[name])


def init_app(app: Flask) -> Limiter:
    config = app.config
    limiter = Limiter(
        key_func=_api_key_or_address,
        app=app,
        storage_uri=config["REDIS_URL"] or "memory://",
        strategy="fixed-window",
        headers_enabled=True,
        key_prefix=config["RATE_LIMIT_PREFIX"],
        in_memory_fallback_enabled=True,
        enabled=config["RATE_LIMITS_ENABLED"],
    )
    for name in API_BLUEPRINTS:
        limiter.limit(config["RATE_LIMIT_API"])(_blueprint(app, name))
    for name in VERIFY_BLUEPRINTS:
        limiter.limit(config["RATE_LIMIT_VERIFY"])(_blueprint(app, name))
    for name in PUBLIC_BLUEPRINTS:
        limiter.limit(config["RATE_LIMIT_PUBLIC"], key_func=_client_address)(_blueprint(app, name))
    limiter.limit(config["RATE_LIMIT_GUARDIAN"], key_func=_client_address)(_blueprint(app, "guardian"))
    for name in EXEMPT_BLUEPRINTS:
        if name in app.blueprints:
            limiter.exempt(_blueprint(app, name))
    app.extensions["consent_gate.limiter"] = limiter
    app.before_request(check_body)
    return limiter


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:\\.|[^"\\])*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """The deepest nesting of a JSON document, found without parsing it (strings are skipped)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


BATCH_ENDPOINT = "verifications.VerificationBatch"


def check_body() -> None:
    """Body limits, before anything reads the body.

    A thousand tokens do not fit the default size limit, so the batch endpoint alone gets a larger one.
    Deeply nested JSON is refused before the parser sees it (it would recurse until it fails).
    """
    if "\x00" in request.path:
        raise NotFound("no such resource")
    if request.endpoint == BATCH_ENDPOINT:
        request.max_content_length = current_app.config["BATCH_MAX_CONTENT_LENGTH"]
    if (
        request.method in {"POST", "PUT", "PATCH"}
        and request.is_json
        and request.content_length
        and json_depth(request.get_data(cache=True)) > MAX_JSON_DEPTH
    ):
        raise BadRequestJson()


class BadRequestJson(DomainError):
    status = 400
    code = "json_too_deep"

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels is refused")
