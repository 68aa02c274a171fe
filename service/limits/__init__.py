"""Rate limits: per API key on the API, per client address on the guardian's, people's and report pages and
the public endpoints.

Counters live in Redis when ``REDIS_URL`` is set, shared by every instance; otherwise in each process.
If Redis becomes unreachable, limits fall back to per-process memory rather than failing requests.

flask-limiter guards every blueprint but the exempt ones (``EXEMPT_BLUEPRINTS``: probes, the spec, the
docs page) and one: the verification endpoint (``service.verification.endpoint``, which answers in front
of Flask) counts with ``service.limits.keys.KeyLimit``, the same fixed window checked without a request
context. ``tests/test_rate_limit_coverage.py`` checks every route is limited or exempt for a stated reason.
"""

from __future__ import annotations

import hashlib
import re
from typing import cast

from flask import Blueprint, Flask, request
from flask_limiter import Limiter

from service.errors import DomainError, NotFound
from service.keys.api_keys import bearer_secret
from service.limits.keys import KeyLimit

#: Every blueprint is limited or exempt, by name here; ``tests/test_rate_limit_coverage.py`` walks every route.
API_BLUEPRINTS = (
    "organization",
    "keys",
    "purposes",
    "assessments",
    "incidents",
    "devices",
    "subjects",
    "consents",
    "guardian-requests",
    "access-links",
    "rights-requests",
    "audit",
    "reports",
    "deletions",
    "filings",
    "webhooks",
)
VERIFY_BLUEPRINTS = ("consent-events",)
KEY_LIMITED_BLUEPRINTS = ("verifications",)  # limited by KeyLimit instead
PUBLIC_BLUEPRINTS = ("jwks", "status-lists")
#: Pages opened by a token in their URL, counted per client address: each request may be a guess at a token,
#: and the report page computes a whole organization's report. The guardian's pages have their own limit.
PAGE_BLUEPRINTS = ("people", "report_page")
#: Probes, the spec and the documentation page: static or nearly, and needed when all else is busy.
EXEMPT_BLUEPRINTS = ("health", "api-docs", "docs")


def _client_address() -> str:
    return address_identity(request.remote_addr)


def caller_identity(authorization: str, address: str | None) -> str:
    """Who a counter counts: the API key (a prefix of its hash, never the key), else the address.

    The key as parsed, not the header as spelled: ``bearer KEY`` and ``Bearer   KEY`` are one caller.
    """
    secret = bearer_secret(authorization)
    if secret is not None:
        return "key:" + hashlib.sha256(secret.encode()).hexdigest()[:32]
    return f"ip:{address or 'unknown'}"


def _api_key_or_address() -> str:
    return caller_identity(request.headers.get("Authorization", ""), request.remote_addr)


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, headers: list[tuple[str, str]]):
        super().__init__(message)
        self.headers = headers


def check_key_limit(limit: KeyLimit, identity: str, cost: int = 1) -> list[tuple[str, str]]:
    """Count this request (of ``cost``) against ``limit``: raise 429 when over it, else the headers to send."""
    allowance = limit.hit(identity, cost)
    if not allowance.allowed:
        raise RateLimited(limit.message, allowance.headers)
    return allowance.headers


def key_identity(key_id: str) -> str:
    """Who a verification counts against once its key is known: the key itself, however it was spelled."""
    return f"key:{key_id}"


def address_identity(address: str | None) -> str:
    """Who a request without a valid key counts against: its client address (``REMOTE_ADDR``, which
    ``TRUSTED_PROXY_HOPS`` takes from ``X-Forwarded-For``)."""
    return f"ip:{address or 'unknown'}"


def verify_limit(app: Flask) -> KeyLimit:
    return cast(KeyLimit, app.extensions["consent_gate.verify_limit"])


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
    for name in PAGE_BLUEPRINTS:
        limiter.limit(config["RATE_LIMIT_PEOPLE"], key_func=_client_address)(_blueprint(app, name))
    for name in EXEMPT_BLUEPRINTS + KEY_LIMITED_BLUEPRINTS:
        if name in app.blueprints:
            limiter.exempt(_blueprint(app, name))
    app.extensions["consent_gate.verify_limit"] = KeyLimit(
        config["RATE_LIMIT_VERIFY"],
        storage_uri=config["REDIS_URL"],
        prefix=config["RATE_LIMIT_PREFIX"],
        scope="verifications",
        enabled=config["RATE_LIMITS_ENABLED"],
    )
    app.extensions["consent_gate.limiter"] = limiter
    app.before_request(check_body)
    return limiter


MAX_JSON_DEPTH = 32
#: A JSON string, or an unclosed one running to the end. Linear on any input: each string is matched once
#: from its opening quote, without backtracking (a pattern that could fail on an unclosed string would be
#: retried from every later quote: quadratic, a minute for 64 KB).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
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


def check_body() -> None:
    """Body limits, before anything reads the body: deeply nested JSON is refused before the parser sees
    it (it would recurse until it fails)."""
    if "\x00" in request.path:
        raise NotFound("no such resource")
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


def trust_proxies(app: Flask) -> None:
    """Take the client address from ``X-Forwarded-For`` as set by ``TRUSTED_PROXY_HOPS`` proxies of ours.

    Limits per client address (guardian pages, public endpoints, requests without a valid key) count the
    address a request came from. Behind a load balancer that is the balancer's, unless the service trusts
    the address it forwards; it must trust exactly as many hops as there are proxies, never more, or a
    client could write its own ``X-Forwarded-For`` and get a fresh allowance with every request.
    """
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]
