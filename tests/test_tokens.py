"""Consent tokens: ES256 JWTs with pinned algorithm, checked type, issuer and audience."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import create_app
from service.config import ConfigError
from service.keys.tokens import (
    ExpiredToken,
    InvalidToken,
    KeySet,
    canonical,
    decode_consent_token,
    generate_private_key_pem,
    thumbprint,
)

if TYPE_CHECKING:
    from tests.support import Tenant


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture()
def granted(tenant: Tenant) -> dict[str, Any]:
    tenant.purpose()
    person = tenant.subject()
    return tenant.consent(person["id"]).json  # type: ignore[no-any-return]


def test_token_header_and_claims_follow_the_contract(tenant: Tenant, granted: dict[str, Any]) -> None:
    token = granted["token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["typ"] == "consent+jwt" and header["kid"]
    jwks = tenant.client.get("/.well-known/jwks.json").json
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert key["kty"] == "EC" and key["crv"] == "P-256" and "d" not in key
    public = jwt.PyJWK(key).key
    claims = jwt.decode(token, public, algorithms=["ES256"], audience=tenant.org_id)
    assert claims["iss"] == "http://consent-gate.test"
    assert claims["sub"] == granted["subject_id"]
    assert claims["jti"] == granted["id"]
    assert claims["pur"] == "door_access"
    assert claims["grd"] is False
    assert claims["ntc"] == granted["notice_digest"]
    assert claims["exp"] == int(datetime.fromisoformat(granted["expires_at"]).timestamp())
    assert claims["iat"] <= time.time()


def _forge(header: dict[str, Any], claims: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None) -> str:
    if key is None:
        return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode()) + "."
    # Signed in the canonical (low-S) form, so that each forgery is refused for the reason it tests.
    return canonical(jwt.encode(claims, key, algorithm="ES256", headers=header))


def _claims(tenant: Tenant, granted: dict[str, Any]) -> dict[str, Any]:
    return jwt.decode(granted["token"], options={"verify_signature": False})  # type: ignore[no-any-return]


def _assert_invalid(tenant: Tenant, token: str, reason: str = "invalid_token") -> None:
    response = tenant.verify("door_access", token=token)
    assert response.status_code == 200
    assert (response.json["decision"], response.json["reason"]) == ("deny", reason)


@pytest.mark.committed
def test_alg_none_and_hmac_confusion_are_refused(tenant: Tenant, granted: dict[str, Any]) -> None:
    claims = _claims(tenant, granted)
    kid = jwt.get_unverified_header(granted["token"])["kid"]
    _assert_invalid(tenant, _forge({"alg": "none", "typ": "consent+jwt", "kid": kid}, claims))
    jwks = json.dumps(tenant.client.get("/.well-known/jwks.json").json["keys"][0]).encode()
    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "consent+jwt", "kid": kid}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    sig = hmac.new(jwks, signing_input.encode(), hashlib.sha256).digest()
    _assert_invalid(tenant, signing_input + "." + b64(sig))


@pytest.mark.committed
def test_a_token_signed_by_another_key_is_refused(tenant: Tenant, granted: dict[str, Any]) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    kid = jwt.get_unverified_header(granted["token"])["kid"]
    _assert_invalid(tenant, _forge({"typ": "consent+jwt", "kid": kid}, _claims(tenant, granted), attacker))


@pytest.mark.committed
@pytest.mark.parametrize("source", ["jku", "x5u", "jwk", "x5c"])
def test_header_key_sources_are_never_followed(
    tenant: Tenant, granted: dict[str, Any], app: Flask, source: str
) -> None:
    keys: KeySet = app.extensions["consent_gate.keyring"].current()
    header = {"typ": "consent+jwt", "kid": keys.kid, source: "http://attacker.invalid/keys"}
    # Even signed by the real key, a token naming a key source is refused outright.
    _assert_invalid(tenant, _forge(header, _claims(tenant, granted), keys.signing_key))


@pytest.mark.committed
def test_wrong_type_issuer_or_audience_is_refused(
    tenant: Tenant, other_tenant: Tenant, granted: dict[str, Any], app: Flask
) -> None:
    keys: KeySet = app.extensions["consent_gate.keyring"].current()
    claims = _claims(tenant, granted)
    _assert_invalid(tenant, _forge({"typ": "JWT", "kid": keys.kid}, claims, keys.signing_key))
    _assert_invalid(tenant, _forge({"typ": "consent+jwt", "kid": keys.kid}, {**claims, "iss": "x"}, keys.signing_key))
    # Another organization's key sees the token as invalid: the audience is not theirs.
    other_tenant.purpose()
    response = other_tenant.verify("door_access", token=granted["token"]).json
    assert (response["decision"], response["reason"]) == ("deny", "invalid_token")


@pytest.mark.committed
@pytest.mark.parametrize("claim", ["exp", "jti", "pur", "sub", "aud", "iss", "iat"])
def test_required_claims_are_required(tenant: Tenant, granted: dict[str, Any], app: Flask, claim: str) -> None:
    keys: KeySet = app.extensions["consent_gate.keyring"].current()
    claims = _claims(tenant, granted)
    del claims[claim]
    _assert_invalid(tenant, _forge({"typ": "consent+jwt", "kid": keys.kid}, claims, keys.signing_key))


@pytest.mark.committed
def test_expired_token_is_denied_expired(tenant: Tenant, granted: dict[str, Any], app: Flask) -> None:
    keys: KeySet = app.extensions["consent_gate.keyring"].current()
    claims = {**_claims(tenant, granted), "exp": int(time.time()) - 5}
    token = _forge({"typ": "consent+jwt", "kid": keys.kid}, claims, keys.signing_key)
    _assert_invalid(tenant, token, reason="expired")


def test_decode_unit_rejects_and_accepts() -> None:
    keys = KeySet.from_pem_blob(generate_private_key_pem())
    now = int(time.time())
    claims = {"iss": "i", "aud": "a", "sub": "s", "jti": "j", "pur": "p", "iat": now, "exp": now + 60}
    good = canonical(
        jwt.encode(claims, keys.signing_key, algorithm="ES256", headers={"typ": "consent+jwt", "kid": keys.kid})
    )
    assert decode_consent_token(good, keys.public_keys, issuer="i", audience="a")["pur"] == "p"
    with pytest.raises(InvalidToken):
        decode_consent_token(good, keys.public_keys, issuer="i", audience="b")
    old = canonical(
        jwt.encode(
            {**claims, "exp": now - 1},
            keys.signing_key,
            algorithm="ES256",
            headers={"typ": "consent+jwt", "kid": keys.kid},
        )
    )
    with pytest.raises(ExpiredToken):
        decode_consent_token(old, keys.public_keys, issuer="i", audience="a")
    for garbage in ("", "a.b", "a.b.c", "...", "eyJ.eyJ.sig"):
        with pytest.raises(InvalidToken):
            decode_consent_token(garbage, keys.public_keys, issuer="i", audience="a")


def test_kid_is_the_rfc7638_thumbprint() -> None:
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        "kid": "ignored",
        "use": "sig",
    }
    # RFC 7638: only the required members, in lexicographic order, no white space.
    canonical = '{"crv":"P-256","kty":"EC","x":"' + jwk["x"] + '","y":"' + jwk["y"] + '"}'
    assert thumbprint(jwk) == b64(hashlib.sha256(canonical.encode()).digest())


def test_development_signing_key_is_generated_once_with_mode_0600(tmp_path: Any) -> None:
    instance = tmp_path / "inst"
    first = create_app({"ENV": "development", "INSTANCE_PATH": str(instance)})
    path = first.config["SIGNING_KEY_FILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = create_app({"ENV": "development", "INSTANCE_PATH": str(instance)})
    assert (
        first.extensions["consent_gate.keyring"].current().kid
        == second.extensions["consent_gate.keyring"].current().kid
    )


def test_production_refuses_to_generate_a_signing_key(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="SIGNING_KEY_FILE is not set"):
        create_app({"ENV": "production", "INSTANCE_PATH": str(tmp_path / "prod")})
    assert not (tmp_path / "prod" / "signing-key.pem").exists()


@pytest.mark.committed
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    part=st.sampled_from([0, 1, 2]),
    position=st.integers(min_value=0, max_value=10_000),
    replacement=st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ")),
)
def test_property_any_change_to_a_token_is_denied_never_5xx(
    tenant: Tenant, granted: dict[str, Any], part: int, position: int, replacement: str
) -> None:
    token = granted["token"]
    parts = token.split(".")
    segment = parts[part]
    index = position % len(segment)
    if segment[index] == replacement:
        replacement = "A" if replacement != "A" else "B"
    parts[part] = segment[:index] + replacement + segment[index + 1 :]
    tampered = ".".join(parts)
    if tampered == token:
        return
    # base64url can decode two strings to the same bytes only in the last character's unused bits,
    # which would leave the token valid; that is not a change of the token's content.
    if all(unb64_safe(a) == unb64_safe(b) for a, b in zip(parts, token.split("."), strict=True)):
        return
    response = tenant.verify("door_access", token=tampered)
    assert response.status_code == 200, response.json
    assert response.json["decision"] == "deny"


@pytest.mark.committed
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    claims=st.dictionaries(
        st.sampled_from(["iss", "aud", "sub", "jti", "pur", "exp", "iat", "grd"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans(), st.lists(st.integers(), max_size=2)),
    )
)
def test_property_resigned_payload_changes_are_denied_never_5xx(
    tenant: Tenant, granted: dict[str, Any], app: Flask, claims: dict[str, Any]
) -> None:
    keys: KeySet = app.extensions["consent_gate.keyring"].current()
    original = _claims(tenant, granted)
    changed = {**original, **claims}
    if changed == original:
        return
    # Signed at the JWS level so that claims PyJWT itself would refuse to encode still get through.
    token = jwt.api_jws.PyJWS().encode(
        json.dumps(changed).encode(),
        keys.signing_key,
        algorithm="ES256",
        headers={"typ": "consent+jwt", "kid": keys.kid},
    )
    response = tenant.verify("door_access", token=token)
    assert response.status_code == 200
    # Only a change that keeps every checked claim valid and pointing at the same consent may pass.
    if response.json["decision"] == "allow":
        assert changed["jti"] == original["jti"] and changed["pur"] == "door_access"
        assert changed["aud"] == tenant.org_id and changed["iss"] == original["iss"]


def unb64_safe(part: str) -> bytes | None:
    try:
        return unb64(part)
    except Exception:
        return None
