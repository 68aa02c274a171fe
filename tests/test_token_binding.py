"""A consent token is bound to its consent: its subject, purpose and organization, not merely its id.

Tried as an attacker holding a validly signed token (or the signing key's output for another consent)
would: the consent id of one person with another's subject, or with another purpose.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from service.keys.signing import issuer, key_set
from service.keys.tokens import encode_consent_token
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
