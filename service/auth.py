"""API keys, scopes and the current organization.

``Authorization: Bearer <api key>``. A missing or unknown key answers 401, a key without the scope
403; every object lookup is then filtered by the key's organization, so another organization's
objects answer 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from service import db
from service.domain.organizations import find_active_key
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
    api_key = find_active_key(db.session(), secret.strip())
    if api_key is None:
        raise Unauthorized("unknown or revoked API key")
    caller = Caller(key_id=api_key.id, org_id=api_key.org_id, scopes=api_key.scope_set)
    if not caller.scopes.intersection(scopes):
        raise Forbidden(f"this key lacks the scope: needs one of {', '.join(scopes)}")
    g.caller = caller
    return caller


def current_caller() -> Caller:
    return g.caller
