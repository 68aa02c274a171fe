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
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    caller = _lookup(secret.strip())
    if caller is None:
        raise Unauthorized("unknown or revoked API key")
    if not caller.scopes.intersection(scopes):
        raise Forbidden(f"this key lacks the scope: needs one of {', '.join(scopes)}")
    g.caller = caller
    return caller


def _lookup(secret: str) -> Caller | None:
    """Find the key's caller; known keys are cached for ``API_KEY_CACHE_SECONDS`` (5 s by default).

    The cache only saves a query on the verify path: a key revoked in the database stops working on
    every instance within that bound. Unknown keys are never cached.
    """
    ttl = current_app.config["API_KEY_CACHE_SECONDS"]
    cache: dict[str, tuple[Caller, float]] = current_app.extensions.setdefault("consent_gate.key_cache", {})
    digest = hash_api_key(secret)
    now = time.monotonic()
    hit = cache.get(digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    api_key = find_active_key(db.session(), secret)
    if api_key is None:
        cache.pop(digest, None)
        return None
    caller = Caller(key_id=api_key.id, org_id=api_key.org_id, scopes=api_key.scope_set)
    if ttl > 0:
        if len(cache) > 10_000:
            cache.clear()
        cache[digest] = (caller, now + ttl)
    return caller


def current_caller() -> Caller:
    return g.caller
