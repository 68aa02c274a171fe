"""A consent token is bound to its consent: its subject, purpose and organization, not merely its id.

Tried as an attacker holding a validly signed token (or the signing key's output for another consent)
would: the consent id of one person with another's subject, or with another purpose.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from service.keys.signing import issuer, key_set
from service.keys.tokens import P256_ORDER, b64url, encode_consent_token, generate_private_key_pem
from service.models import utcnow

if TYPE_CHECKING:
    from tests.support import Tenant


def _token(app: Flask, tenant: Tenant, *, consent_id: str, subject_id: str, purpose: str, org_id: str = "") -> str:
    with app.app_context():
        now = utcnow()
        return encode_consent_token(
            key_set(),
            issuer=issuer(),
            org_id=org_id or tenant.org_id,
            subject_id=subject_id,
            consent_id=consent_id,
            purpose=purpose,
            issued_at=now,
            expires_at=now + timedelta(days=1),
            guardian=False,
            notice_digest="0" * 64,
        )


@pytest.mark.committed
def test_r2_a_token_allows_only_its_own_consents_subject_and_purpose(
    tenant: Tenant, other_tenant: Tenant, app: Flask
) -> None:
    tenant.purpose("door_access")
    tenant.purpose("canteen_payment", category="payment")
    alice, bob = tenant.subject()["id"], tenant.subject()["id"]
    door = tenant.consent(alice, "door_access").json
    assert tenant.verify("door_access", token=door["token"]).json["decision"] == "allow"
    forged: dict[str, Any] = {
        "another subject": {"consent_id": door["id"], "subject_id": bob, "purpose": "door_access"},
        "another purpose": {"consent_id": door["id"], "subject_id": alice, "purpose": "canteen_payment"},
    }
    for name, claims in forged.items():
        answer = tenant.verify(claims["purpose"], token=_token(app, tenant, **claims)).json
        assert (answer["decision"], answer["reason"]) == ("deny", "invalid_token"), name
    # In batch too: one code path decides both.
    items = [{"purpose": c["purpose"], "token": _token(app, tenant, **c)} for c in forged.values()]
    batch = tenant.post("/v1/verifications/batch", {"items": items}, scope="verify").json
    assert [r["reason"] for r in batch["results"]] == ["invalid_token", "invalid_token"]
    # Another organization's key never sees the consent, whatever the token's audience says.
    stolen = _token(
        app, tenant, consent_id=door["id"], subject_id=alice, purpose="door_access", org_id=other_tenant.org_id
    )
    other_tenant.purpose("door_access")
    assert other_tenant.verify("door_access", token=stolen).json["decision"] == "deny"


def _spellings(token: str) -> dict[str, str]:
    """Other spellings of one valid token: each decodes to the same bytes, or verifies as the same signature."""
    header, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    high_s = b64url(r + (P256_ORDER - s).to_bytes(32, "big"))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(signature[-1]) ^ 1]  # a bit past the signature's 512: same bytes
    return {
        "padding": f"{header}=.{payload}.{signature}",
        "stray bits": f"{header}.{payload}.{signature[:-1]}{last}",
        "high S": f"{header}.{payload}.{high_s}",
        "standard alphabet": f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}"
        if "-" in signature or "_" in signature
        else f"{header}.{payload}.{signature}==",
    }


@pytest.mark.committed
def test_r15_one_token_has_one_spelling(tenant: Tenant) -> None:
    tenant.purpose()
    token = tenant.consent(tenant.subject()["id"]).json["token"]
    assert tenant.verify("door_access", token=token).json["decision"] == "allow"
    for name, spelling in _spellings(token).items():
        answer = tenant.verify("door_access", token=spelling).json
        assert (answer["decision"], answer["reason"]) == ("deny", "invalid_token"), name
    # Every token we issue is already in the one spelling (low S), so none of ours is refused.
    for _ in range(8):
        issued = tenant.consent(tenant.subject()["id"]).json["token"]
        signature = base64.urlsafe_b64decode(issued.split(".")[2] + "==")
        assert int.from_bytes(signature[32:], "big") <= P256_ORDER // 2


@pytest.fixture()
def own_key_file(app_config: dict[str, Any], tmp_path: Any) -> str:
    path = tmp_path / "signing-key.pem"
    path.write_bytes(generate_private_key_pem())
    app_config["SIGNING_KEY_FILE"] = str(path)
    return str(path)


@pytest.mark.committed
def test_r14_a_removed_signing_key_stops_verifying_cached_or_not(own_key_file: str, tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    token = tenant.consent(tenant.subject()["id"]).json["token"]
    for _ in range(2):  # verified once, then from the verified-signature cache
        assert tenant.verify("door_access", token=token).json["decision"] == "allow"
    # The key leaked: the operator replaces the file with a new key only; the key ring reloads (within 5 s).
    with open(own_key_file, "wb") as handle:
        handle.write(generate_private_key_pem())
    app.extensions["consent_gate.keyring"].reload()
    for _ in range(2):
        answer = tenant.verify("door_access", token=token).json
        assert (answer["decision"], answer["reason"]) == ("deny", "invalid_token")


@pytest.mark.committed
def test_r14_a_signing_key_is_retired_only_once_no_live_token_needs_it(
    own_key_file: str, tenant: Tenant, runner: Any, app: Flask
) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    old_kid = app.extensions["consent_gate.keyring"].current().kid
    current = runner.invoke(args=["keys", "retire-signing", "--", old_kid])
    assert current.exit_code == 1 and "current signing key" in current.output
    assert runner.invoke(args=["keys", "rotate-signing"]).exit_code == 0
    assert runner.invoke(args=["keys", "retire-signing", "no-such-kid"]).exit_code == 1
    refused = runner.invoke(args=["keys", "retire-signing", "--", old_kid])
    assert refused.exit_code == 1 and "1 active consent" in refused.output
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    # Once the last consent that could hold an old token has ended, the key goes.
    assert tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents").status_code == 200
    retired = runner.invoke(args=["keys", "retire-signing", "--", old_kid])
    assert retired.exit_code == 0, retired.output
    assert old_kid not in {k["kid"] for k in tenant.client.get("/.well-known/jwks.json").json["keys"]}
    assert tenant.verify("door_access", token=consent["token"]).json["reason"] == "invalid_token"
    fresh = tenant.consent(tenant.subject()["id"]).json["token"]
    assert tenant.verify("door_access", token=fresh).json["decision"] == "allow"
