"""API keys, scopes and the current organization.

``Authorization: Bearer <api key>``. A missing or unknown key answers 401, a key without the scope
403; every object lookup is then filtered by the key's organization, so another organization's
objects answer 404.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import current_app, g, request

from service import db
from service.domain.api_keys import USE_RECORD_SECONDS, record_key_use
from service.domain.organizations import find_active_key, hash_api_key
from service.errors import DomainError

log = logging.getLogger(__name__)


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
    cache = key_cache()
    caller = require(bearer_secret(request.headers.get("Authorization", "")), cache.lookup, scopes)
    g.caller = caller
    if cache.use_due(caller.key_id):
        g.key_use_due = caller.key_id  # written by record_key_use_after_request, once the view is done
    return caller


def record_key_use_after_request(exc: BaseException | None) -> None:
    """Write the caller's ``last_used_at`` (at most once a minute per key) after the view, in its own small
    transaction; a failure here is logged and changes no answer."""
    key_id = g.pop("key_use_due", None)
    if key_id is None or exc is not None:
        return
    session = db.session()
    try:
        session.rollback()  # whatever the view left open; it committed what it meant to
        record_key_use(session, key_id=key_id)
        session.commit()
    except Exception:
        session.rollback()
        log.warning("could not record the use of API key %s", key_id, exc_info=True)


def require(secret: str | None, find: Callable[[str], Caller | None], scopes: Iterable[str]) -> Caller:
    """The caller of the key ``secret``, as ``find`` knows it: 401 without a known key, 403 without a scope."""
    if secret is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    caller = find(secret)
    if caller is None:
        raise Unauthorized("unknown or revoked API key")
    if not caller.scopes.intersection(scopes):
        raise Forbidden(f"this key lacks the scope: needs one of {', '.join(scopes)}")
    return caller


class KeyCache:
    """Known keys' callers, for ``API_KEY_CACHE_SECONDS`` (5 s by default); unknown keys are never cached.

    The cache only saves a query on the verify path: a key revoked in the database stops working on
    every instance within that bound, counted from the read that found it active. :meth:`peek` answers
    from the cache alone, without a request or a database (the verification endpoint uses it, and
    :meth:`remember` for what it read itself).

    A key revoked through this process stops here at once: :meth:`forget_key` drops it and remembers, for
    ``ttl``, that it was revoked, so that a request that read the key as active before the revocation
    committed, and remembers it after, cannot put it back.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.clock = clock
        self._callers: dict[str, tuple[Caller, float]] = {}
        self._uses: dict[str, float] = {}
        #: Keys revoked through this process in the last ``ttl``: key id → when.
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()  # forget_key and remember: never on the path of a cache hit

    def forget_key(self, key_id: str) -> None:
        """Drop a key revoked through this process, at once and for good (other processes: within ``ttl``).

        Call it after the revocation committed: a read from then on finds the key revoked. A read from
        before may still be on its way to :meth:`remember`, which refuses it for ``ttl``; after that, an
        entry it would make has expired already (entries live ``ttl`` from their read).
        """
        now = self.clock()
        with self._lock:
            # Only the last ``ttl``'s revocations: as many as admin keys can make within their rate limit.
            self._revoked = {key: at for key, at in self._revoked.items() if now - at < self.ttl}
            self._revoked[key_id] = now
            for digest, (caller, _) in list(self._callers.items()):
                if caller.key_id == key_id:
                    self._callers.pop(digest, None)

    def use_due(self, key_id: str) -> bool:
        """True at most once every ``USE_RECORD_SECONDS`` per key: time to write its ``last_used_at``."""
        now = self.clock()
        last = self._uses.get(key_id)
        if last is not None and now - last < USE_RECORD_SECONDS:
            return False
        if len(self._uses) >= self.MAX_ENTRIES:
            self._uses.clear()
        self._uses[key_id] = now
        return True

    def peek(self, secret: str) -> Caller | None:
        hit = self._callers.get(hash_api_key(secret))
        return hit[0] if hit is not None and hit[1] > self.clock() else None

    def lookup(self, secret: str) -> Caller | None:
        cached = self.peek(secret)
        if cached is not None:
            return cached
        read_at = self.clock()
        api_key = find_active_key(db.session(), secret)
        found = None if api_key is None else Caller(api_key.id, api_key.org_id, api_key.scope_set)
        return self.remember(secret, found, read_at=read_at)

    def remember(self, secret: str, caller: Caller | None, *, read_at: float) -> Caller | None:
        """Keep ``caller``, read from the database at ``read_at`` (this cache's clock, taken before the
        read), for the next requests of ``secret`` until ``read_at + ttl``; forget a key found revoked or
        unknown. A key revoked through this process lately is never kept. Returns ``caller``: the request
        that read it goes on either way."""
        digest = hash_api_key(secret)
        if caller is None:
            self._callers.pop(digest, None)
            return None
        expires = read_at + self.ttl
        if self.ttl <= 0 or expires <= self.clock():
            return caller
        with self._lock:
            if caller.key_id in self._revoked:  # revoked: read before the revocation committed
                return caller
            if len(self._callers) >= self.MAX_ENTRIES:
                self._callers.clear()
            self._callers[digest] = (caller, expires)
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
