"""The whole journey an enrollment app and a recognition backend make, end to end."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support import Tenant


@pytest.mark.committed
def test_allow_then_revoke_then_deny(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    person = tenant.subject("student-0001")
    granted = tenant.consent(person["id"])
    assert granted.status_code == 201, granted.json
    consent = granted.json
    assert consent["status"] == "active"
    assert consent["token"]

    allow = tenant.verify("door_access", token=consent["token"])
    assert allow.status_code == 200
    assert allow.json["decision"] == "allow"
    assert allow.json["reason"] == "consent_active"
    assert allow.json["consent_id"] == consent["id"]
    assert allow.json["verification_id"]

    revoked = tenant.post(f"/v1/consents/{consent['id']}/revoke", {"reason": "changed my mind"}, scope="consents")
    assert revoked.status_code == 200
    assert revoked.json["status"] == "revoked"
    assert revoked.json["token"] is None

    deny = tenant.verify("door_access", token=consent["token"])
    assert deny.json == {
        "decision": "deny",
        "reason": "revoked",
        "consent_id": consent["id"],
        "verification_id": deny.json["verification_id"],
    }
    by_subject = tenant.verify("door_access", subject_id=person["id"])
    assert by_subject.json["decision"] == "deny"
    assert by_subject.json["reason"] == "revoked"
