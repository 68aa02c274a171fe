"""API keys, scopes and the current organization.

``Authorization: Bearer <api key>``. A missing or unknown key answers 401, a key without the scope
403; every object lookup is then filtered by the key's organization, so another organization's
objects answer 404.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app, g, request

from service import db
from service.domain.organizations import find_active_key, hash_api_key
from service.errors import DomainError


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key, its organization and scopes."""

    key_id: str
    org_id: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"


def authenticate(*scopes: str) -> Caller:
    """Authenticate the request's API key and require one of ``scopes``."""
    secret = bearer_secret(request.headers.get("Authorization", ""))
    if secret is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    caller = key_cache().lookup(secret)
    if caller is None:
        raise Unauthorized("unknown or revoked API key")
    if not caller.scopes.intersection(scopes):
        raise Forbidden(f"this key lacks the scope: needs one of {', '.join(scopes)}")
    g.caller = caller
    return caller


class KeyCache:
    """Known keys' callers, for ``API_KEY_CACHE_SECONDS`` (5 s by default); unknown keys are never cached.

    The cache only saves a query on the verify path: a key revoked in the database stops working on
    every instance within that bound. :meth:`peek` answers from the cache alone, without a request or a
    database (the verify hot path uses it).
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl_seconds: float):
        self.ttl = ttl_seconds
        self._callers: dict[str, tuple[Caller, float]] = {}

    def peek(self, secret: str) -> Caller | None:
        hit = self._callers.get(hash_api_key(secret))
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def lookup(self, secret: str) -> Caller | None:
        cached = self.peek(secret)
        if cached is not None:
            return cached
        digest = hash_api_key(secret)
        api_key = find_active_key(db.session(), secret)
        if api_key is None:
            self._callers.pop(digest, None)
            return None
        caller = Caller(key_id=api_key.id, org_id=api_key.org_id, scopes=api_key.scope_set)
        if self.ttl > 0:
            if len(self._callers) >= self.MAX_ENTRIES:
                self._callers.clear()
            self._callers[digest] = (caller, time.monotonic() + self.ttl)
        return caller


def bearer_secret(header: str) -> str | None:
    """The key in ``Authorization: Bearer <key>``, or ``None``."""
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def key_cache() -> KeyCache:
    cache: KeyCache | None = current_app.extensions.get("consent_gate.key_cache")
    if cache is None:
        cache = current_app.extensions["consent_gate.key_cache"] = KeyCache(current_app.config["API_KEY_CACHE_SECONDS"])
    return cache


def current_caller() -> Caller:
    return g.caller
