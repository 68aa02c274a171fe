"""Every endpoint, walked with a second organization's key and the first one's ids: 404 everywhere."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant


def _first_org_ids(tenant: Tenant, guardian: GuardianKit) -> dict[str, str]:
    child = guardian.setup_child(tenant)
    adult = tenant.subject()
    consent = tenant.consent(adult["id"]).json
    request = tenant.guardian_request(child["id"], ["door_access"], delivery="qr").json
    device = tenant.post("/v1/devices", {"name": "Gate", "location_type": "school"}).json
    page = guardian.browser(tenant.post(f"/v1/subjects/{adult['id']}/access-link", scope="consents").json["url"])
    page.submit(action="request", kind="complaint", details="a complaint")
    rights_request = tenant.get("/v1/rights-requests").json["items"][0]
    ended = tenant.consent(tenant.subject()["id"]).json  # allowed once, then revoked: a deletion is owed
    assert tenant.verify("door_access", token=ended["token"]).json["decision"] == "allow"
    assert tenant.post(f"/v1/consents/{ended['id']}/revoke", {}, scope="consents").status_code == 200
    deletion = tenant.get("/v1/deletions").json["items"][0]
    [assessment, *_] = tenant.get("/v1/assessments").json["items"]
    incident = tenant.incident(["door_access"], severity="minor").json
    key = next(k for k in tenant.get("/v1/keys").json["items"] if k["scopes"] == ["consents"])
    webhook = tenant.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["consent.revoked"]}).json
    return {
        "key_id": key["id"],
        "webhook_id": webhook["id"],
        "deletion_id": deletion["id"],
        "rights_request_id": rights_request["id"],
        "assessment_id": assessment["id"],
        "incident_id": incident["id"],
        "code": "door_access",
        "subject_id": adult["id"],
        "consent_id": consent["id"],
        "request_id": request["id"],
        "device_id": device["id"],
        "token": consent["token"],
    }


@pytest.mark.committed
def test_every_operation_with_ids_answers_404_to_another_organization(
    app: Flask, tenant: Tenant, other_tenant: Tenant, guardian: GuardianKit
) -> None:
    ours = _first_org_ids(tenant, guardian)
    spec = app.extensions["consent_gate.api"].spec.to_dict()
    walked = 0
    for path, operations in spec["paths"].items():
        names = re.findall(r"\{([^}]+)\}", path)
        if not names or path.startswith("/v1/status-lists"):
            continue  # status lists are public by design: they reveal only bits
        concrete = path
        for name in names:
            concrete = concrete.replace("{" + name + "}", ours[name])
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            body: Any = {}
            if method == "post" and path.endswith("/notices"):
                body = {"texts": {"zh-CN": "新版告知", "en": "x"}, "material": True}
            if method == "post" and path.endswith("/paper-decision"):  # a valid body: the id is what is walked
                body = {"decisions": {"door_access": "approve"}, "form_sha256": "0" * 64, "signed_on": "2025-09-01"}
            if method == "post" and path.endswith("/close"):
                body = {"outcome": "closed by someone else"}
            for scope in ("admin", "consents", "verify"):
                response = other_tenant.client.open(
                    concrete, method=method.upper(), json=body, headers=other_tenant.headers(scope)
                )
                assert response.status_code in {403, 404}, (method, path, scope, response.status_code)
                if response.status_code == 404:
                    assert response.json["code"] == "not_found"
                    walked += 1
    assert walked >= 14
    # And nothing of ours shows in their lists and feeds.
    for path, scope in (
        ("/v1/purposes", "admin"),
        ("/v1/devices", "admin"),
        ("/v1/keys", "admin"),
        ("/v1/webhooks", "admin"),
        ("/v1/subjects", "consents"),
        ("/v1/consents", "consents"),
        ("/v1/guardian-requests", "consents"),
        ("/v1/deletions", "admin"),
        ("/v1/assessments", "admin"),
        ("/v1/incidents", "admin"),
        ("/v1/audit/events", "admin"),
        ("/v1/consent-events", "verify"),
        ("/v1/reports/compliance", "admin"),
        ("/v1/rights-requests", "admin"),
    ):
        text = other_tenant.get(path, scope=scope).get_data(as_text=True)
        for value in (
            ours["subject_id"],
            ours["consent_id"],
            ours["device_id"],
            ours["request_id"],
            ours["rights_request_id"],
            ours["assessment_id"],
            ours["incident_id"],
            ours["key_id"],
            ours["deletion_id"],
            ours["webhook_id"],
        ):
            assert value not in text, (path, value)
    denied = other_tenant.verify("door_access", token=ours["token"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "invalid_token")
    batch = other_tenant.post(
        "/v1/verifications/batch",
        {
            "items": [
                {"purpose": "door_access", "token": ours["token"]},
                {"purpose": "door_access", "subject_id": ours["subject_id"]},
            ]
        },
        scope="verify",
    ).json["results"]
    assert [r["decision"] for r in batch] == ["deny", "deny"]
    # Untouched on our side.
    assert tenant.get(f"/v1/consents/{ours['consent_id']}", scope="consents").json["status"] == "active"
