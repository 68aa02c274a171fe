"""The offline verifier: a client module for recognition backends. It imports nothing from Flask or the
database, only PyJWT and cryptography (and the standard library), so it can live inside a backend.

    from service.offline import OfflineVerifier

    verifier = OfflineVerifier("https://consent.example.cn", audience=ORG_ID, max_staleness=300)
    decision = verifier.verify(token, purpose="door_access")
    if decision.allowed: ...

It checks the token's signature against the service's JWKS, its type, issuer, audience, expiry and
purpose, and its bit in the status list named by the token. The JWKS and status lists are cached and
refreshed after their ``ttl``; when a refresh fails, cached copies serve until they are older than
``max_staleness`` seconds, after which every decision is ``deny`` with reason ``unavailable``.
A token invalidated for any reason (revoked, expired early, erased, re-consent needed) has its status bit
set and is denied ``revoked``: the status list does not say which.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from service.keys.status_bits import bit_at, decode_bits
from service.keys.tokens import ALGORITHM, ExpiredToken, InvalidToken, UnknownKey, decode_consent_token

STATUS_LIST_TYPE = "statuslist+jwt"


def _http_get(url: str, timeout: float) -> bytes:
    if not url.startswith(("https://", "http://")):
        raise ValueError("only http(s) URLs are fetched")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
        return response.read()


@dataclass(frozen=True)
class OfflineDecision:
    decision: str
    reason: str
    consent_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


@dataclass
class _Cached:
    value: Any
    fetched_at: float
    ttl: float


class StaleCache(Exception):
    """A needed JWKS or status list could not be refreshed and the cached copy is too old."""


class OfflineVerifier:
    def __init__(
        self,
        base_url: str,
        *,
        audience: str,
        issuer: str | None = None,
        max_staleness: float = 300.0,
        jwks_ttl: float = 300.0,
        timeout: float = 2.0,
        fetch: Callable[[str, float], bytes] = _http_get,
        clock: Callable[[], float] = time.time,
    ):
        self.base_url = base_url.rstrip("/")
        self.audience = audience
        self.issuer = issuer or self.base_url
        self.max_staleness = max_staleness
        self.jwks_ttl = jwks_ttl
        self.timeout = timeout
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks: _Cached | None = None
        self._last_forced = float("-inf")
        self._lists: dict[str, _Cached] = {}

    # caches ------------------------------------------------------------------------------------

    def _keys(self, *, force: bool = False) -> dict[str, Any]:
        now = self._clock()
        cached = self._jwks
        if force or cached is None or now - cached.fetched_at >= cached.ttl:
            try:
                document = json.loads(self._fetch(f"{self.base_url}/.well-known/jwks.json", self.timeout))
                keys = {k["kid"]: jwt.PyJWK(k, algorithm=ALGORITHM).key for k in document["keys"]}
                cached = self._jwks = _Cached(keys, now, self.jwks_ttl)
            except Exception as exc:
                if cached is None or now - cached.fetched_at > self.max_staleness:
                    raise StaleCache("JWKS unavailable") from exc
        return cached.value

    def _status_bits(self, uri: str) -> bytes:
        now = self._clock()
        cached = self._lists.get(uri)
        if cached is None or now - cached.fetched_at >= cached.ttl:
            try:
                cached = self._lists[uri] = self._load_status_list(uri, now)
            except Exception as exc:
                if cached is None or now - cached.fetched_at > self.max_staleness:
                    raise StaleCache("status list unavailable") from exc
        return cached.value

    def _load_status_list(self, uri: str, now: float) -> _Cached:
        if not uri.startswith(self.base_url + "/"):
            raise InvalidToken("status list outside the trusted service")  # never follow foreign URLs
        token = self._fetch(uri, self.timeout).decode()
        header = jwt.get_unverified_header(token)
        if header.get("typ") != STATUS_LIST_TYPE or header.get("alg") != ALGORITHM:
            raise InvalidToken("not a status list token")
        key = self._keys().get(header.get("kid"))  # type: ignore[arg-type]
        if key is None:
            raise InvalidToken("status list signed by an unknown key")
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["sub", "iat", "exp"]})
        if claims["sub"] != uri or claims["status_list"]["bits"] != 1:
            raise InvalidToken("status list does not match its URI")
        return _Cached(decode_bits(claims["status_list"]["lst"]), now, float(claims.get("ttl", 60)))

    # decisions ---------------------------------------------------------------------------------

    def verify(self, token: str, *, purpose: str) -> OfflineDecision:
        """Decide locally, with the server's decisions and reasons; fail closed."""
        try:
            with self._lock:
                return self._verify(token, purpose)
        except StaleCache:
            return OfflineDecision("deny", "unavailable")
        except Exception:
            return OfflineDecision("deny", "unavailable")

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            return decode_consent_token(token, self._keys(), issuer=self.issuer, audience=self.audience)
        except UnknownKey:
            # A key rotated in since the last fetch: look again, at most every 10 s, whatever tokens arrive.
            if self._clock() - self._last_forced < 10:
                raise
            self._last_forced = self._clock()
            return decode_consent_token(token, self._keys(force=True), issuer=self.issuer, audience=self.audience)

    def _verify(self, token: str, purpose: str) -> OfflineDecision:
        try:
            claims = self._decode(token)
        except ExpiredToken:
            return OfflineDecision("deny", "expired")
        except InvalidToken:
            return OfflineDecision("deny", "invalid_token")
        if claims["pur"] != purpose:
            return OfflineDecision("deny", "purpose_mismatch", claims["jti"])
        status = claims.get("status", {}).get("status_list") if isinstance(claims.get("status"), dict) else None
        if not isinstance(status, dict) or not isinstance(status.get("idx"), int) or not status.get("uri"):
            # Without a status entry revocation cannot be checked offline: refuse rather than guess.
            return OfflineDecision("deny", "invalid_token", claims["jti"])
        bits = self._status_bits(status["uri"])
        index = status["idx"]
        if index < 0 or index // 8 >= len(bits):
            return OfflineDecision("deny", "invalid_token", claims["jti"])
        if bit_at(bits, index):
            return OfflineDecision("deny", "revoked", claims["jti"])
        return OfflineDecision("allow", "consent_active", claims["jti"])
