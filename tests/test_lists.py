"""Every list pages the same way (issue 14): ``{items, next_cursor}``, ``?cursor=&limit=``, keyset, per tenant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

#: Every list, with the scope that reads it.
LISTS = (
    ("/v1/purposes", "admin"),
    ("/v1/subjects", "consents"),
    ("/v1/consents", "consents"),
    ("/v1/guardian-requests", "consents"),
    ("/v1/assessments", "admin"),
    ("/v1/incidents", "admin"),
    ("/v1/devices", "admin"),
    ("/v1/keys", "admin"),
    ("/v1/deletions", "admin"),
    ("/v1/rights-requests", "admin"),
)


def _fill(tenant: Tenant, guardian: GuardianKit) -> None:
    """At least three rows in every list."""
    guardian.setup_child(tenant)  # door_access and canteen_payment
    tenant.purpose("library")
    for n, code in enumerate(("door_access", "canteen_payment", "library")):
        tenant.incident([code], severity="minor")
        assert tenant.post("/v1/devices", {"name": f"Gate {code}", "location_type": "school"}).status_code == 201
        adult = tenant.subject()
        body = {"transmission_consent": True} if code == "canteen_payment" else None
        granted = tenant.consent(adult["id"], purpose=code) if body is None else _transmitting(tenant, adult["id"])
        assert granted.status_code == 201, granted.json
        page = guardian.browser(tenant.post(f"/v1/subjects/{adult['id']}/access-link", scope="consents").json["url"])
        page.submit(action="request", kind="complaint", details=f"about {code}")
        child = tenant.subject(age_years=9)
        asked = tenant.guardian_request(child["id"], ["door_access"], delivery="qr", phone=f"+861381234567{n}")
        assert asked.status_code == 202, asked.json


def _transmitting(tenant: Tenant, subject_id: str) -> Any:
    body = {
        "subject_id": subject_id,
        "purpose": "canteen_payment",
        "notice_version": 1,
        "evidence": {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN", "transmission_consent": True},
    }
    return tenant.post("/v1/consents", body, scope="consents")


def _walk(tenant: Tenant, path: str, scope: str, limit: int = 2) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        answer = tenant.get(path + query, scope=scope)
        assert answer.status_code == 200, (path, answer.json)
        assert set(answer.json) == {"items", "next_cursor"}
        assert len(answer.json["items"]) <= limit
        seen += [item.get("id", item.get("code")) for item in answer.json["items"]]
        cursor = answer.json["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError(f"{path} never ended")


def test_every_list_walked_by_small_pages_shows_each_row_once_and_nothing_to_another_tenant(
    tenant: Tenant, other_tenant: Tenant, guardian: GuardianKit
) -> None:
    _fill(tenant, guardian)
    for path, scope in LISTS:
        if path == "/v1/deletions":
            continue  # deletions are owed by verifications (committed test below)
        everything = tenant.get(path + "?limit=1000", scope=scope).json
        assert everything["next_cursor"] is None and len(everything["items"]) >= 3, path
        walked = _walk(tenant, path, scope)
        assert walked == [item.get("id", item.get("code")) for item in everything["items"]], path  # each once, in order
        assert len(set(walked)) == len(walked)
        theirs = other_tenant.get(path + "?limit=1000", scope=scope).json["items"]
        assert not {item.get("id", item.get("code")) for item in theirs} & set(walked), path
        # Our cursor, carried to another organization, pages only that organization's rows.
        cursor = tenant.get(path + "?limit=1", scope=scope).json["next_cursor"]
        carried = other_tenant.get(f"{path}?cursor={cursor}", scope=scope)
        assert carried.status_code == 200 and not {i.get("id", i.get("code")) for i in carried.json["items"]} & set(
            walked
        ), path


@pytest.mark.committed
def test_deletions_walk_by_small_pages(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.purpose()
    for _ in range(3):
        consent = tenant.consent(tenant.subject()["id"]).json
        assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
        assert tenant.post(f"/v1/consents/{consent['id']}/revoke", {}, scope="consents").status_code == 200
    walked = _walk(tenant, "/v1/deletions", "admin")
    assert len(walked) == 3 and len(set(walked)) == 3
    assert other_tenant.get("/v1/deletions").json == {"items": [], "next_cursor": None}


def test_a_walk_is_stable_under_inserts_between_pages(tenant: Tenant) -> None:
    before = [tenant.subject()["id"] for _ in range(4)]
    first = tenant.get("/v1/subjects?limit=2", scope="consents").json
    inserted = tenant.subject()["id"]  # lands after every row already there: nothing shifts
    rest = _walk_from(tenant, "/v1/subjects", "consents", first["next_cursor"])
    assert [s["id"] for s in first["items"]] + rest == [*before, inserted]


def _walk_from(tenant: Tenant, path: str, scope: str, cursor: str | None) -> list[str]:
    seen: list[str] = []
    while cursor is not None:
        page = tenant.get(f"{path}?limit=2&cursor={cursor}", scope=scope).json
        seen += [item.get("id", item.get("code")) for item in page["items"]]
        cursor = page["next_cursor"]
    return seen


@pytest.mark.parametrize("path,scope", LISTS)
def test_bad_cursors_and_limits_answer_422_with_a_stable_code(tenant: Tenant, path: str, scope: str) -> None:
    for cursor in ("nonsense", "Zm9vOjE6Mg", "%00", "a" * 201, "cHVycG9zZXM6MTIzNDU2Nzg5MDEyMzQ1Njc6eA"):
        answer = tenant.get(f"{path}?cursor={cursor}", scope=scope)
        assert answer.status_code == 422, (path, cursor)
        assert answer.json["code"] in {"invalid_cursor", "validation_error"}, (path, cursor)
    assert tenant.get(f"{path}?cursor=nonsense", scope=scope).json["code"] == "invalid_cursor"
    for limit in ("0", "1001", "-1", "x"):
        answer = tenant.get(f"{path}?limit={limit}", scope=scope)
        assert (answer.status_code, answer.json["code"]) == (422, "validation_error"), (path, limit)


def test_a_cursor_of_another_list_is_refused(tenant: Tenant) -> None:
    for code in ("door_access", "canteen"):
        tenant.purpose(code)
    cursor = tenant.get("/v1/purposes?limit=1").json["next_cursor"]
    assert cursor
    refused = tenant.get(f"/v1/devices?cursor={cursor}")
    assert (refused.status_code, refused.json["code"]) == (422, "invalid_cursor")


def test_consents_are_filtered_by_subject_purpose_and_status(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    tenant.purpose("canteen")
    one, two = tenant.subject(), tenant.subject()
    first = tenant.consent(one["id"]).json
    tenant.consent(one["id"], purpose="canteen")
    tenant.consent(two["id"])
    assert tenant.post(f"/v1/consents/{first['id']}/revoke", {}, scope="consents").status_code == 200

    def ids(query: str) -> list[tuple[str, str, str]]:
        answer = tenant.get(f"/v1/consents?{query}", scope="consents")
        assert answer.status_code == 200, answer.json
        return [(c["subject_id"], c["purpose"], c["status"]) for c in answer.json["items"]]

    assert ids(f"subject_id={one['id']}") == [(one["id"], "door_access", "revoked"), (one["id"], "canteen", "active")]
    assert ids("purpose=door_access&status=active") == [(two["id"], "door_access", "active")]
    assert ids("status=revoked") == [(one["id"], "door_access", "revoked")]
    assert ids("subject_id=no-such-person") == []
    assert tenant.get("/v1/consents?status=happy", scope="consents").status_code == 422
    assert tenant.get("/v1/consents", scope="verify").status_code == 403
