"""Notices people can read in their language (R1): purposes' texts by locale, how faces are processed and
captured, the effect on rights; who the handler is and how to reach them (issue 12, point 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select

from service import db
from service.domain.organizations import create_organization
from service.domain.purposes import LOCALIZED_FIELDS, check_locales, in_locale, notice_digest
from service.errors import Unprocessable
from service.keys.api_keys import Caller
from service.models import ApiKey, Organization, Purpose
from service.verification.rules import VerificationRequest

if TYPE_CHECKING:
    from tests.support import GuardianKit, PurposeBody, Tenant


def test_r1_required_locales_domain() -> None:
    fields = {"name": {"en": "Door"}, "alternative": {"zh-CN": "刷卡", "en": "Card"}, "notice": {"zh-CN": "  "}}
    with pytest.raises(Unprocessable) as refused:
        check_locales(fields, ("zh-CN",))
    assert refused.value.code == "missing_locale"
    assert refused.value.details == {"name": ["missing zh-CN"], "notice": ["missing zh-CN"]}
    with pytest.raises(Unprocessable) as both:
        check_locales({"alternative": {"zh-CN": "刷卡"}}, ("zh-CN", "en"))
    assert both.value.details == {"alternative": ["missing en"]}
    check_locales({"name": {"zh-CN": "门禁", "en": "Door"}}, ("zh-CN", "en"))
    # A page shows its own language where it was given, else the required one: never nothing.
    assert in_locale({"zh-CN": "门禁", "en": "Door"}, "en") == ("Door", "en")
    assert in_locale({"zh-CN": "门禁"}, "en") == ("门禁", "zh-CN")


@pytest.mark.parametrize("field", LOCALIZED_FIELDS)
def test_r1_person_facing_fields_are_locale_maps(tenant: Tenant, purpose_body: PurposeBody, field: str) -> None:
    plain = tenant.post("/v1/purposes", purpose_body(**{field: "一段中文说明文字"}))
    assert (plain.status_code, plain.json["code"]) == (422, "validation_error")
    assert field in plain.json["errors"]["json"]
    english_only = tenant.post("/v1/purposes", purpose_body(**{field: {"en": "Some English text"}}))
    assert (english_only.status_code, english_only.json["code"]) == (422, "missing_locale")
    assert english_only.json["errors"] == {field: ["missing zh-CN"]}
    unknown = tenant.post("/v1/purposes", purpose_body(**{field: {"zh-CN": "说明", "fr": "Texte"}}))
    assert unknown.status_code == 422
    missing = purpose_body()
    del missing[field]
    assert tenant.post("/v1/purposes", missing).status_code == 422
    assert tenant.get("/v1/purposes").json["items"] == []


def test_r1_every_required_locale_is_required(app: Flask, tenant: Tenant, purpose_body: PurposeBody) -> None:
    app.config["REQUIRED_LOCALES"] = ("zh-CN", "en")
    body = purpose_body(rights_impact={"zh-CN": "您可随时撤回同意。"}, notice={"zh-CN": "我们刷脸开门。"})
    refused = tenant.post("/v1/purposes", body)
    assert (refused.status_code, refused.json["code"]) == (422, "missing_locale")
    assert refused.json["errors"] == {"notice": ["missing en"], "rights_impact": ["missing en"]}
    assert tenant.get("/v1/purposes").json["items"] == []
    created = tenant.post("/v1/purposes", purpose_body())
    assert created.status_code == 201, created.json
    notice = tenant.post("/v1/purposes/door_access/notices", {"texts": {"zh-CN": "更新"}, "material": False})
    assert (notice.status_code, notice.json["code"]) == (422, "missing_locale")
    assert tenant.get("/v1/purposes/door_access").json["notice"]["version"] == 1


def test_r1_purpose_states_processing_rights_and_capture(tenant: Tenant, purpose_body: PurposeBody) -> None:
    created = tenant.purpose(assess=False, capture="device")
    body = purpose_body()
    for field in LOCALIZED_FIELDS:
        assert created[field] == body[field]
    assert created["capture"] == "device"
    for capture in ("camera", "", None):
        assert tenant.post("/v1/purposes", purpose_body("other", capture=capture)).status_code == 422
    no_capture = purpose_body("other")
    del no_capture["capture"]
    assert tenant.post("/v1/purposes", no_capture).json["errors"]["json"] == {
        "capture": ["Missing data for required field."]
    }


def _digest(org: Organization, **changes: Any) -> str:
    purpose = Purpose(
        code="door_access",
        category="access_control",
        retention_days=90,
        analyses=[],
        transmits_face_data=False,
        name={"zh-CN": "门禁"},
        description={"zh-CN": "刷脸开门"},
        necessity={"zh-CN": "人多"},
        alternative={"zh-CN": "刷卡开门"},
        processing_method={"zh-CN": "比对后删除"},
        rights_impact={"zh-CN": "可撤回"},
        capture="device",
    )
    for name, value in changes.items():
        setattr(purpose, name, value)
    return notice_digest(org, purpose, 1, {"zh-CN": "告知"})


def test_r1_notice_digest_covers_everything_told() -> None:
    org = Organization(id="o1", name="学校", contact="010-1234")
    base = _digest(org)
    assert _digest(org) == base
    for field in LOCALIZED_FIELDS:
        assert _digest(org, **{field: {"zh-CN": "改了", "en": "changed"}}) != base, field
    assert _digest(org, capture="personal_device") != base
    assert _digest(org, name={"zh-CN": "门禁", "en": "Door"}) != base  # another locale is another notice
    org.pipo_name, org.pipo_contact = "王老师", "010-5678"
    assert _digest(org) != base
    org.complaint_channel = "12315"
    assert _digest(org) != base


@pytest.mark.committed
def test_r1_device_capture_needs_a_registered_device(app: Flask, tenant: Tenant) -> None:
    tenant.purpose("gate", capture="device")
    person = tenant.subject()
    token = tenant.consent(person["id"], purpose="gate").json["token"]
    device = tenant.post("/v1/devices", {"name": "Main gate", "location_type": "school"}).json
    # Through the endpoint, single and batch.
    for ask in ({"token": token}, {"subject_id": person["id"]}):
        denied = tenant.post("/v1/verifications", {"purpose": "gate", **ask}, scope="verify").json
        assert (denied["decision"], denied["reason"]) == ("deny", "device_required")
        allowed = tenant.post(
            "/v1/verifications", {"purpose": "gate", "device_id": device["id"], **ask}, scope="verify"
        )
        assert allowed.json["decision"] == "allow", allowed.json
        unknown = tenant.post("/v1/verifications", {"purpose": "gate", "device_id": "nope", **ask}, scope="verify")
        assert unknown.json["reason"] == "device_unknown"
    batch = tenant.post(
        "/v1/verifications/batch",
        {
            "items": [
                {"purpose": "gate", "token": token},
                {"purpose": "gate", "token": token, "device_id": device["id"]},
            ]
        },
        scope="verify",
    ).json
    assert [item["reason"] for item in batch["results"]] == ["device_required", "consent_active"]
    # The rule itself, on the verifier the endpoint uses.
    verifier = app.extensions["consent_gate.verifier"]
    with app.app_context():
        key = db.session().scalars(select(ApiKey).where(ApiKey.org_id == tenant.org_id)).first()
        assert key is not None
        caller = Caller(key.id, tenant.org_id, frozenset({"verify"}))
    results = verifier.answer(caller, [VerificationRequest("gate", subject_id=person["id"])])
    assert [decision.reason for decision, _ in results] == ["device_required"]


@pytest.mark.committed
def test_r1_personal_device_capture_needs_no_device(tenant: Tenant) -> None:
    tenant.purpose("selfie_check", capture="personal_device")
    person = tenant.subject()
    tenant.consent(person["id"], purpose="selfie_check")
    assert tenant.verify("selfie_check", subject_id=person["id"]).json["decision"] == "allow"


def test_r1_organization_needs_a_contact(app: Flask) -> None:
    with app.app_context():
        session = db.session()
        for contact in ("", "   ", "x" * 201):
            with pytest.raises(Unprocessable) as refused:
                create_organization(session, name="学校", contact=contact)
            assert refused.value.code == "contact_required"
        org = create_organization(session, name="学校", contact=" 010-1234 ")
        assert org.contact == "010-1234"
        session.rollback()


def test_r1_organization_patch_sets_pipo_and_complaint_channel(
    tenant: Tenant, other_tenant: Tenant, client: Any
) -> None:
    before = tenant.get("/v1/organization").json
    assert before["contact"] == "privacy@sunrise.example"
    assert before["pipo"] is None and before["complaint_channel"] is None
    body = {
        "contact": "010-6000 1234",
        "pipo": {"name": "王丽（个人信息保护负责人）", "contact": "pipo@sunrise.example"},
        "complaint_channel": "致电 010-6000 5678 或发送邮件至 complaints@sunrise.example",
    }
    changed = client.patch("/v1/organization", json=body, headers=tenant.headers("admin"))
    assert changed.status_code == 200, changed.json
    assert {k: changed.json[k] for k in body} == body
    assert tenant.get("/v1/organization").json == changed.json
    # Another tenant's organization is untouched; only admin keys may change it.
    assert other_tenant.get("/v1/organization").json["pipo"] is None
    for scope in ("consents", "verify"):
        assert client.patch("/v1/organization", json=body, headers=tenant.headers(scope)).status_code == 403
    for bad in (
        {},
        {"contact": "  "},
        {"contact": ""},
        {"name": "Evil"},
        {"pipo": {"name": "x"}},
        {"org_id": "x"},
        {"pipo": {"name": " ", "contact": "x"}},
        {"complaint_channel": "  "},
    ):
        refused = client.patch("/v1/organization", json=bad, headers=tenant.headers("admin"))
        assert refused.status_code == 422, bad
    assert tenant.get("/v1/organization").json == changed.json
    removed = client.patch("/v1/organization", json={"pipo": None}, headers=tenant.headers("admin"))
    assert removed.json["pipo"] is None and removed.json["contact"] == "010-6000 1234"
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"]]
    assert actions.count("organization.updated") == 2


def test_r1_guardian_page_shows_everything_in_its_language(
    tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    client.patch(
        "/v1/organization",
        json={"pipo": {"name": "王丽", "contact": "pipo@sunrise.example"}, "complaint_channel": "致电 010-6000 5678"},
        headers=tenant.headers("admin"),
    )
    child = guardian.setup_child(tenant)
    assert tenant.guardian_request(child["id"], ["door_access"]).status_code == 202
    page = guardian.browser(guardian.url_from(outbox()[0]))
    chinese = page.open().get_data(as_text=True)
    for expected in (
        "校门通行",
        "刷脸打开校门",
        "闸机摄像头拍摄人脸",
        "人脸信息属于敏感个人信息",
        "刷学生卡同样可以开启校门",
    ):
        assert expected in chinese, expected
    for expected in (
        "个人信息处理者",
        "个人信息保护负责人",
        "王丽",
        "致电 010-6000 5678",
        "不满十四周岁",
        "在孩子或您本人的手机上",
    ):
        assert expected in chinese, expected
    assert "Door access" not in chinese and "A student card" not in chinese
    english = page.open("?lang=en").get_data(as_text=True)
    for expected in ("Door access", "The gate camera takes a picture", "Face data is sensitive", "A student card"):
        assert expected in english, expected
    assert "Personal information protection officer" in english and "under 14" in english


def test_r1_a_new_notice_restates_the_purposes_texts(tenant: Tenant, purpose_body: PurposeBody) -> None:
    """A purpose made before a field existed (or whose texts change) states it with a new notice."""
    first = tenant.purpose(assess=False)["notice"]
    rights = {"zh-CN": "新的权益说明：可随时查阅、删除。", "en": "New rights text: see or delete at any time."}
    restated = tenant.post(
        "/v1/purposes/door_access/notices",
        {"texts": {"zh-CN": "更新", "en": "Updated"}, "material": False, "rights_impact": rights},
    )
    assert restated.status_code == 201, restated.json
    purpose = tenant.get("/v1/purposes/door_access").json
    assert purpose["rights_impact"] == rights and purpose["notice"]["digest"] != first["digest"]
    for bad in ({"rights_impact": {"en": "only English"}}, {"alternative": {"zh-CN": "无"}}, {"capture": "device"}):
        refused = tenant.post(
            "/v1/purposes/door_access/notices", {"texts": {"zh-CN": "再更新"}, "material": False, **bad}
        )
        assert refused.status_code == 422, bad
    assert tenant.get("/v1/purposes/door_access").json == purpose
