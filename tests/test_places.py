"""Places, enforced (R7, Measures Art. 13): private places refused however they are named, public places
derived from the location type and proving their signs and collection area."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from service.domain.places import (
    LOCATION_TYPES,
    PROHIBITED_LOCATION_TYPES,
    check_location,
    check_signage,
    names_private_place,
)
from service.errors import Unprocessable

if TYPE_CHECKING:
    from tests.support import Tenant

SIGNAGE = {"posted_on": "2026-01-05", "text": "人脸识别区域 Face recognition in use", "photo_sha256": "0f" * 32}
EVIDENCE: dict[str, Any] = {"signage": SIGNAGE, "collection_area": "东门闸机 East gate turnstiles"}

#: Private places, spelled as people write them: both languages, any case, width, spacing or punctuation.
PRIVATE_PLACES = (
    *("hotel room", "Hotel Room 1203", "HOTEL-ROOM", "hotelroom", "guest rooms, 3rd floor", "Bathroom", "bath house"),
    *("public baths", "Toilet block B", "toilets", "Changing room", "changing-rooms", "locker room", "Dormitory 5"),
    *("student dorm", "restroom", "rest room", "washroom", "Men's room", "shower area", "WC", "Sauna", "bedroom"),
    *("ｈｏｔｅｌ　ｒｏｏｍ", "bath\u200broom", "toi\u00adlet", "fitting rooms", "nursing room", "lavatory"),
    *("客房", "酒店客房1203", "酒店 客 房", "卫生间", "衛生間", "厕所", "男厕", "公共浴室", "浴池", "更衣室"),
    *("员工更衣间", "宿舍楼", "学生宿舍3号楼", "洗手间", "淋浴间", "房间号1203", "1203房间", "盥洗室", "试衣间"),
    *("桑拿房", "寝室", "卧室", "哺乳室", "二楼 洗 手 间", "Hotel 客房 1203"),
)
#: Ordinary places that must pass.
ORDINARY_PLACES = (
    *("学校大门", "Main gate", "office lobby", "教学楼入口", "地铁站闸机", "Bus station concourse", "停车场入口"),
    *("Staff canteen", "食堂", "图书馆", "Restaurant entrance", "Washington Street gate", "Showroom", "Classroom 3"),
    *("Meeting room 2", "Hotel lobby", "酒店大堂", "Loading dock", "Subclass lab", "Bedford Road gate", "Bat hall"),
)


@pytest.mark.parametrize("place", PRIVATE_PLACES)
def test_r7_private_place_named_under_other_is_refused_domain(place: str) -> None:
    assert names_private_place(place)
    with pytest.raises(Unprocessable) as refused:
        check_location("other", place)
    assert refused.value.code == "prohibited_location"
    assert refused.value.details == {"location_description": ["names a private place"]}


@pytest.mark.parametrize("place", ORDINARY_PLACES)
def test_r7_ordinary_place_named_under_other_passes_domain(place: str) -> None:
    assert not names_private_place(place)
    check_location("other", place)


def test_r7_other_needs_a_location_description_domain() -> None:
    for description in (None, "", "n/a", "-", "无", "x"):
        with pytest.raises(Unprocessable) as refused:
            check_location("other", description)
        assert refused.value.code == "validation_error"
        assert refused.value.details is not None and "location_description" in refused.value.details
    check_location("school", None)


def test_r7_signs_posted_in_the_future_are_refused_domain() -> None:
    today = date(2026, 3, 1)
    tomorrow = {**SIGNAGE, "posted_on": date(2026, 3, 2), "photo_sha256": "a" * 64}
    with pytest.raises(Unprocessable) as refused:
        check_signage(public_place=True, signage=tomorrow, collection_area="East gate", today=today)
    assert refused.value.code == "signage_required"
    assert refused.value.details == {"signage": {"posted_on": ["in the future: signs must already be posted"]}}
    check_signage(public_place=True, signage={**tomorrow, "posted_on": today}, collection_area="East gate", today=today)
    check_signage(public_place=False, signage=None, collection_area=None, today=today)


@pytest.mark.parametrize("place", PRIVATE_PLACES[:4] + PRIVATE_PLACES[-8:])
def test_r7_private_place_named_under_other_is_refused(tenant: Tenant, place: str) -> None:
    body = {"name": "Camera", "location_type": "other", "location_description": place, **EVIDENCE}
    response = tenant.post("/v1/devices", body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == "prohibited_location"
    assert "location_description" in response.json["errors"]
    assert tenant.get("/v1/devices").json["items"] == []


def test_r7_other_without_a_description_is_refused_naming_it(tenant: Tenant) -> None:
    response = tenant.post("/v1/devices", {"name": "Camera", "location_type": "other", **EVIDENCE})
    assert response.status_code == 422
    assert "location_description" in response.json["errors"]
    assert tenant.get("/v1/devices").json["items"] == []


@pytest.mark.parametrize("field", [{"public_place": False}, {"public_place": True}, {"signage_posted": True}])
def test_r7_public_place_is_read_only(tenant: Tenant, field: dict[str, bool]) -> None:
    response = tenant.post("/v1/devices", {"name": "Gate", "location_type": "school", **field})
    assert response.status_code == 422
    assert response.json["code"] == "validation_error"
    assert set(response.json["errors"]["json"]) == set(field)
    assert tenant.get("/v1/devices").json["items"] == []


PUBLIC = {"retail_store", "bank_branch", "transport_hub", "street", "public_square", "hotel_lobby", "hospital"}


@pytest.mark.parametrize("location_type", [t for t in LOCATION_TYPES if t not in PROHIBITED_LOCATION_TYPES])
def test_r7_public_place_is_derived_from_the_location_type(tenant: Tenant, location_type: str) -> None:
    expected = location_type in PUBLIC | {"stadium", "other"}
    body = {"name": "Camera", "location_type": location_type, "location_description": "East side", **EVIDENCE}
    created = tenant.post("/v1/devices", body)
    assert created.status_code == 201, created.json
    assert created.json["public_place"] is expected
    bare = tenant.post(
        "/v1/devices", {"name": "Camera", "location_type": location_type, "location_description": "East side"}
    )
    if expected:
        assert bare.status_code == 422 and bare.json["code"] == "signage_required"
    else:
        assert bare.status_code == 201 and bare.json["public_place"] is False
        assert bare.json["signage"] is None and bare.json["collection_area"] is None


FUTURE = (date.today() + timedelta(days=3)).isoformat()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"signage": None}, {"signage"}),
        ({"collection_area": None}, {"collection_area"}),
        ({"signage": None, "collection_area": None}, {"signage", "collection_area"}),
        ({"collection_area": " - "}, {"collection_area"}),
        ({"signage": {**SIGNAGE, "posted_on": None}}, {"signage.posted_on"}),
        ({"signage": {**SIGNAGE, "posted_on": FUTURE}}, {"signage.posted_on"}),
        ({"signage": {**SIGNAGE, "text": "无"}}, {"signage.text"}),
        ({"signage": {**SIGNAGE, "text": "  ! "}}, {"signage.text"}),
        ({"signage": {**SIGNAGE, "photo_sha256": "F0" * 32}}, {"signage.photo_sha256"}),
        ({"signage": {**SIGNAGE, "photo_sha256": "0f" * 31}}, {"signage.photo_sha256"}),
        ({"signage": {**SIGNAGE, "photo_sha256": "zz" * 32}}, {"signage.photo_sha256"}),
        ({"signage": {"text": "Cameras"}}, {"signage.posted_on", "signage.photo_sha256"}),
        ({"signage": {}}, {"signage.posted_on", "signage.text", "signage.photo_sha256"}),
    ],
)
def test_r7_public_place_without_fit_evidence_is_refused_naming_it(
    tenant: Tenant, change: dict[str, Any], named: set[str]
) -> None:
    body: dict[str, Any] = {"name": "Square", "location_type": "public_square", **EVIDENCE, **change}
    body = {key: value for key, value in body.items() if value is not None}
    if isinstance(body.get("signage"), dict):
        body["signage"] = {key: value for key, value in body["signage"].items() if value is not None}
    response = tenant.post("/v1/devices", body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == "signage_required"
    errors = response.json["errors"]
    found = {f"signage.{key}" for key in errors.get("signage", {}) if isinstance(errors["signage"], dict)}
    found |= {key for key in errors if key != "signage" or not isinstance(errors["signage"], dict)}
    assert found == named
    assert tenant.get("/v1/devices").json["items"] == []


def test_r7_malformed_signage_is_a_validation_error_naming_it(tenant: Tenant) -> None:
    body = {"name": "Square", "location_type": "public_square", **EVIDENCE}
    response = tenant.post("/v1/devices", {**body, "signage": {**SIGNAGE, "posted_on": "yesterday"}})
    assert response.status_code == 422
    assert "posted_on" in response.json["errors"]["json"]["signage"]
    assert tenant.get("/v1/devices").json["items"] == []


def test_r7_device_reads_show_the_evidence(tenant: Tenant) -> None:
    body = {"name": "Hall", "location_type": "other", "location_description": "展览馆入口 Exhibition hall", **EVIDENCE}
    created = tenant.post("/v1/devices", body).json
    for shown in (tenant.get(f"/v1/devices/{created['id']}").json, tenant.get("/v1/devices").json["items"][0]):
        assert shown["public_place"] is True
        assert shown["location_description"] == "展览馆入口 Exhibition hall"
        assert shown["signage"] == SIGNAGE
        assert shown["collection_area"] == EVIDENCE["collection_area"]
    events = tenant.get("/v1/audit/events").json["events"]
    registered = next(e for e in events if e["object_id"] == created["id"])
    assert registered["data"]["signage_photo_sha256"] == SIGNAGE["photo_sha256"]


@pytest.mark.committed
def test_r7_public_place_device_denies_other_purposes_and_another_tenants_device_is_unknown(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    tenant.purpose("door_access")
    tenant.purpose("station_watchlist", category="public_safety", name={"zh-CN": "车站安全", "en": "Station safety"})
    person = tenant.subject()
    tenant.consent(person["id"], "door_access")
    tenant.consent(person["id"], "station_watchlist")
    hall = {"name": "Hall", "location_type": "other", "location_description": "Exhibition hall", **EVIDENCE}
    device = tenant.post("/v1/devices", hall).json
    refused = tenant.verify("door_access", subject_id=person["id"], device_id=device["id"]).json
    assert (refused["decision"], refused["reason"]) == ("deny", "public_safety_only")
    allowed = tenant.verify("station_watchlist", subject_id=person["id"], device_id=device["id"]).json
    assert allowed["decision"] == "allow"
    theirs = other_tenant.post("/v1/devices", hall).json
    unknown = tenant.verify("station_watchlist", subject_id=person["id"], device_id=theirs["id"]).json
    assert (unknown["decision"], unknown["reason"]) == ("deny", "device_unknown")


@pytest.mark.parametrize("place", ["Hotel room 302", "3楼女卫生间", "员工宿舍"])
def test_r7_private_place_named_in_location_is_refused_whatever_the_type(tenant: Tenant, place: str) -> None:
    """The free-text ``location`` is read too: an ``office`` in "Hotel room 302" is a hotel room."""
    with pytest.raises(Unprocessable) as refused:
        check_location("office", None, place)
    assert refused.value.details == {"location": ["names a private place"]}
    response = tenant.post("/v1/devices", {"name": "Cam", "location_type": "office", "location": place})
    assert (response.status_code, response.json["code"]) == (422, "prohibited_location")
    assert tenant.get("/v1/devices").json["items"] == []
