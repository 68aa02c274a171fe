"""The device registry and where faces may be processed (R7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support import Tenant


def device(tenant: Tenant, **fields: object) -> dict:  # type: ignore[type-arg]
    body = {"name": "Main gate", "location_type": "school", **fields}
    response = tenant.post("/v1/devices", body)
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("place", ["hotel_room", "public_bathhouse", "changing_room", "toilet"])
def test_r7_devices_in_private_places_are_refused(tenant: Tenant, place: str) -> None:
    response = tenant.post("/v1/devices", {"name": "x", "location_type": place})
    assert response.status_code == 422
    assert response.json["code"] == "prohibited_location"
    assert tenant.get("/v1/devices").json["items"] == []


#: The evidence a public place needs (R7): the signs and the collection area.
SIGNS = {
    "signage": {"posted_on": "2026-01-05", "text": "人脸识别区域 Face recognition in use", "photo_sha256": "ab" * 32},
    "collection_area": "Platform 2 ticket gates",
}


def test_r7_public_place_needs_signage(tenant: Tenant) -> None:
    response = tenant.post("/v1/devices", {"name": "Square", "location_type": "public_square"})
    assert response.status_code == 422 and response.json["code"] == "signage_required"
    assert set(response.json["errors"]) == {"signage", "collection_area"}
    created = device(tenant, location_type="public_square", **SIGNS)
    assert created["public_place"] and created["active"]
    assert created["signage"] == SIGNS["signage"] and created["collection_area"] == SIGNS["collection_area"]


def test_r7_unknown_location_type_is_a_validation_error(tenant: Tenant) -> None:
    assert tenant.post("/v1/devices", {"name": "x", "location_type": "moon"}).status_code == 422


def test_devices_are_listed_read_and_deactivated(tenant: Tenant, other_tenant: Tenant) -> None:
    created = device(tenant)
    assert tenant.get(f"/v1/devices/{created['id']}").json["name"] == "Main gate"
    assert [d["id"] for d in tenant.get("/v1/devices").json["items"]] == [created["id"]]
    assert other_tenant.get(f"/v1/devices/{created['id']}").status_code == 404
    assert other_tenant.post(f"/v1/devices/{created['id']}/deactivate").status_code == 404
    off = tenant.post(f"/v1/devices/{created['id']}/deactivate")
    assert off.status_code == 200 and off.json["active"] is False and off.json["deactivated_at"]


@pytest.mark.committed
def test_r7_verification_through_unknown_or_deactivated_device_denies(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    tenant.consent(person["id"])
    gate = device(tenant)
    assert tenant.verify("door_access", subject_id=person["id"], device_id=gate["id"]).json["decision"] == "allow"
    unknown = tenant.verify("door_access", subject_id=person["id"], device_id="00000000-0000-0000-0000-00000000000f")
    assert (unknown.json["decision"], unknown.json["reason"]) == ("deny", "device_unknown")
    theirs = device(other_tenant)
    assert (
        tenant.verify("door_access", subject_id=person["id"], device_id=theirs["id"]).json["reason"] == "device_unknown"
    )
    tenant.post(f"/v1/devices/{gate['id']}/deactivate")
    off = tenant.verify("door_access", subject_id=person["id"], device_id=gate["id"]).json
    assert (off["decision"], off["reason"]) == ("deny", "device_unknown")


@pytest.mark.committed
def test_r7_public_place_device_verifies_only_public_safety_purposes(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    tenant.purpose("station_watchlist", category="public_safety", name={"zh-CN": "车站安全", "en": "Station safety"})
    person = tenant.subject()
    tenant.consent(person["id"], "door_access")
    tenant.consent(person["id"], "station_watchlist")
    square = device(tenant, location_type="transport_hub", **SIGNS)
    refused = tenant.verify("door_access", subject_id=person["id"], device_id=square["id"]).json
    assert (refused["decision"], refused["reason"]) == ("deny", "public_safety_only")
    allowed = tenant.verify("station_watchlist", subject_id=person["id"], device_id=square["id"]).json
    assert allowed["decision"] == "allow"


def test_device_registration_is_audited(tenant: Tenant) -> None:
    created = device(tenant)
    tenant.post(f"/v1/devices/{created['id']}/deactivate")
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"] if e["object_id"] == created["id"]]
    assert actions == ["device.registered", "device.deactivated"]
