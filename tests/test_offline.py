"""The offline verifier gives the server's decisions, from cached JWKS and status lists, within its staleness."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import jwt
import pytest
from flask import Flask

from service.keys.tokens import canonical
from service.models import utcnow
from service.offline import OfflineVerifier

if TYPE_CHECKING:
    from tests.support import ForceExpiry, Tenant


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_verifier(tenant: Tenant, clock: Clock, *, max_staleness: float = 300.0) -> tuple[OfflineVerifier, dict]:  # type: ignore[type-arg]
    state: dict[str, Any] = {"up": True, "fetches": []}

    def fetch(url: str, _timeout: float) -> bytes:
        state["fetches"].append(url)
        if not state["up"]:
            raise OSError("service unreachable")
        response = tenant.client.get(urlparse(url).path)
        assert response.status_code == 200, url
        return response.data

    verifier = OfflineVerifier(
        "http://consent-gate.test", audience=tenant.org_id, max_staleness=max_staleness, fetch=fetch, clock=clock
    )
    return verifier, state


@pytest.mark.committed
def test_offline_decisions_match_the_server(
    tenant: Tenant, other_tenant: Tenant, app: Flask, force_expiry: ForceExpiry
) -> None:
    tenant.purpose("door_access")
    tenant.purpose("payment", category="payment")
    tokens = {}
    for name in ("valid", "revoked", "expired", "erased"):
        person = tenant.subject()
        tokens[name] = tenant.consent(person["id"]).json
    tokens["payment"] = tenant.consent(tokens["valid"]["subject_id"], "payment").json
    tenant.post(f"/v1/consents/{tokens['revoked']['id']}/revoke", scope="consents")
    tenant.delete(f"/v1/subjects/{tokens['erased']['subject_id']}")
    force_expiry(tokens["expired"]["id"])
    other_tenant.purpose("door_access")
    foreign = other_tenant.consent(other_tenant.subject()["id"]).json["token"]

    verifier, _ = make_verifier(tenant, Clock())
    cases = [
        (tokens["valid"]["token"], "door_access", ("allow", "consent_active")),
        (tokens["revoked"]["token"], "door_access", ("deny", "revoked")),
        (tokens["expired"]["token"], "door_access", ("deny", None)),
        (tokens["erased"]["token"], "door_access", ("deny", None)),
        (tokens["payment"]["token"], "door_access", ("deny", "purpose_mismatch")),
        (foreign, "door_access", ("deny", "invalid_token")),
        ("not.a.token", "door_access", ("deny", "invalid_token")),
    ]
    for token, purpose, (decision, reason) in cases:
        offline = verifier.verify(token, purpose=purpose)
        server = tenant.verify(purpose, token=token).json
        assert offline.decision == server["decision"] == decision, (token[:20], offline, server)
        if reason is not None:
            assert offline.reason == server["reason"] == reason
        else:
            # An invalidated token's bit is set: offline says revoked, the server names the cause.
            assert offline.reason == "revoked" and server["reason"] in {"expired", "subject_erased"}


@pytest.mark.committed
def test_an_expired_token_is_expired_offline_too(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    keys = app.extensions["consent_gate.keyring"].current()
    claims = {**jwt.decode(consent["token"], options={"verify_signature": False}), "exp": int(utcnow().timestamp()) - 5}
    token = canonical(
        jwt.encode(claims, keys.signing_key, algorithm="ES256", headers={"typ": "consent+jwt", "kid": keys.kid})
    )
    verifier, _ = make_verifier(tenant, Clock())
    assert (
        verifier.verify(token, purpose="door_access").reason
        == tenant.verify("door_access", token=token).json["reason"]
        == "expired"
    )


def test_revocation_reaches_the_offline_verifier_within_the_ttl(tenant: Tenant) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    clock = Clock()
    verifier, _ = make_verifier(tenant, clock)
    assert verifier.verify(consent["token"], purpose="door_access").allowed
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    clock.now += 30  # within the list's 60 s ttl the cached list still says valid
    assert verifier.verify(consent["token"], purpose="door_access").allowed
    clock.now += 31  # past the ttl it refreshes and denies
    assert verifier.verify(consent["token"], purpose="door_access").reason == "revoked"


def test_offline_denies_when_its_caches_are_too_stale(tenant: Tenant) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    clock = Clock()
    verifier, state = make_verifier(tenant, clock, max_staleness=120)
    assert verifier.verify(consent["token"], purpose="door_access").allowed
    state["up"] = False
    clock.now += 90  # list past its ttl, refresh fails, cached copy is 90 s old: still usable
    assert verifier.verify(consent["token"], purpose="door_access").allowed
    clock.now += 60  # 150 s: older than max_staleness
    decision = verifier.verify(consent["token"], purpose="door_access")
    assert (decision.decision, decision.reason) == ("deny", "unavailable")
    state["up"] = True
    assert verifier.verify(consent["token"], purpose="door_access").allowed


def test_offline_never_follows_a_status_uri_outside_the_service(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    keys = app.extensions["consent_gate.keyring"].current()
    claims = jwt.decode(consent["token"], options={"verify_signature": False})
    claims["status"] = {"status_list": {"idx": 0, "uri": "http://attacker.invalid/list"}}
    token = canonical(
        jwt.encode(claims, keys.signing_key, algorithm="ES256", headers={"typ": "consent+jwt", "kid": keys.kid})
    )
    verifier, state = make_verifier(tenant, Clock())
    assert verifier.verify(token, purpose="door_access").decision == "deny"
    assert not any("attacker" in url for url in state["fetches"])


def test_offline_module_imports_neither_flask_nor_the_database() -> None:
    code = (
        "import sys, service.offline; "
        "bad = [m for m in ('flask', 'sqlalchemy', 'marshmallow', 'psycopg') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
