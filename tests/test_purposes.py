"""The purpose catalog: notices (R1), re-consent (R5), the alternative (R6), prohibited analyses (R11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support import PurposeBody, Tenant


def test_r1_purpose_carries_its_notice_with_version_and_digest(tenant: Tenant) -> None:
    created = tenant.purpose("door_access", assess=False)
    notice = created["notice"]
    assert notice["version"] == 1
    assert notice["texts"] == {"zh-CN": "我们使用人脸识别开门。", "en": "We open the gate by face."}
    assert len(notice["digest"]) == 64
    int(notice["digest"], 16)
    read = tenant.get("/v1/purposes/door_access", scope="consents")
    assert read.status_code == 200
    assert read.json["notice"]["digest"] == notice["digest"]
    assert read.json["necessity"] and read.json["retention_days"] == 90


@pytest.mark.parametrize("field", ["notice", "necessity", "retention_days", "alternative", "name", "category"])
def test_r1_r6_purpose_without_a_required_field_is_refused_naming_it(
    tenant: Tenant, field: str, purpose_body: PurposeBody
) -> None:
    body = purpose_body()
    del body[field]
    response = tenant.post("/v1/purposes", body)
    assert response.status_code == 422
    assert response.json["code"] == "validation_error"
    assert field in response.json["errors"]["json"]
    assert tenant.get("/v1/purposes").json["items"] == []


def test_r1_notice_needs_a_text_in_a_supported_locale(tenant: Tenant, purpose_body: PurposeBody) -> None:
    for notice in ({}, {"fr": "Nous ouvrons"}, {"en": ""}):
        response = tenant.post("/v1/purposes", purpose_body(notice=notice))
        assert response.status_code == 422, notice
        assert "notice" in response.json["errors"]["json"]


def test_r6_purpose_declares_the_non_biometric_alternative(tenant: Tenant, purpose_body: PurposeBody) -> None:
    alternative = {"zh-CN": "在校门出示学生卡", "en": "Show the student card at the gate"}
    created = tenant.purpose(alternative=alternative, assess=False)
    assert created["alternative"] == alternative
    for empty in ("", {"zh-CN": ""}, {}):
        response = tenant.post("/v1/purposes", purpose_body("other_code", alternative=empty))
        assert response.status_code == 422
        assert "alternative" in response.json["errors"]["json"]


@pytest.mark.parametrize(
    "analysis",
    [
        *("race", "Ethnicity", "religion", "health", "social class", "种族", "宗教信仰"),
        *("民族识别", "肤色", "skin_color", "疾病", "宗教 信仰", "Religious-Belief", "caste", "收入水平"),
    ],
)
def test_r11_prohibited_analysis_is_refused(tenant: Tenant, analysis: str, purpose_body: PurposeBody) -> None:
    response = tenant.post("/v1/purposes", purpose_body(analyses=["liveness", analysis]))
    assert response.status_code == 422
    assert response.json["code"] == "prohibited_analysis"
    assert tenant.get("/v1/purposes").json["items"] == []


@pytest.mark.parametrize("placeholder", ["无", "没有。", "不提供", "none", "N/A", "-", "n/a.", "刷卡", "abc"])
def test_r6_a_placeholder_is_not_an_alternative(tenant: Tenant, placeholder: str, purpose_body: PurposeBody) -> None:
    for alternative in ({"zh-CN": placeholder}, {"zh-CN": "刷学生卡进入校门", "en": placeholder}):
        response = tenant.post("/v1/purposes", purpose_body(alternative=alternative))
        assert (response.status_code, response.json["code"]) == (422, "alternative_required"), alternative
    assert tenant.get("/v1/purposes").json["items"] == []
    assert tenant.post("/v1/purposes", purpose_body(alternative={"zh-CN": "刷卡进入校门"})).status_code == 201


@pytest.mark.parametrize("analysis", ["emotion", "gaze_tracking", "attractiveness", "face_trace"])
def test_r11_analyses_are_a_closed_list(tenant: Tenant, analysis: str, purpose_body: PurposeBody) -> None:
    response = tenant.post("/v1/purposes", purpose_body(analyses=["liveness", analysis]))
    assert (response.status_code, response.json["code"]) == (422, "unknown_analysis")
    assert response.json["errors"] == {"analyses": [analysis]}
    listed = ["Liveness", "verification_1to1", "IDENTIFICATION_1TON", "age-estimation", "quality check"]
    created = tenant.post("/v1/purposes", purpose_body(analyses=listed))
    assert created.status_code == 201
    assert created.json["analyses"] == [
        "liveness",
        "verification_1to1",
        "identification_1toN",
        "age_estimation",
        "quality_check",
    ]


def test_duplicate_purpose_code_conflicts(tenant: Tenant, purpose_body: PurposeBody) -> None:
    tenant.purpose(assess=False)
    response = tenant.post("/v1/purposes", purpose_body())
    assert response.status_code == 409
    assert response.json["code"] == "purpose_exists"


def test_purposes_are_listed_oldest_first_as_every_list(tenant: Tenant) -> None:
    tenant.purpose("payment", assess=False, category="payment")
    tenant.purpose("attendance", assess=False, category="attendance")
    listed = tenant.get("/v1/purposes", scope="consents").json
    assert [p["code"] for p in listed["items"]] == ["payment", "attendance"] and listed["next_cursor"] is None


def test_r5_new_notice_version_gets_a_new_digest(tenant: Tenant) -> None:
    first = tenant.purpose(assess=False)["notice"]
    response = tenant.post(
        "/v1/purposes/door_access/notices", {"texts": {"zh-CN": "新的说明", "en": "New text"}, "material": False}
    )
    assert response.status_code == 201
    assert response.json["version"] == 2
    assert response.json["digest"] != first["digest"]
    assert tenant.get("/v1/purposes/door_access").json["notice"]["version"] == 2


@pytest.mark.committed
def test_r5_material_notice_change_requires_reconsent(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"

    tenant.post(
        "/v1/purposes/door_access/notices",
        {"texts": {"zh-CN": "我们还会记录进出时间", "en": "We now also log entry times"}, "material": True},
    )

    assert tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json["status"] == "reconsent_required"
    denied = tenant.verify("door_access", token=consent["token"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "reconsent_required")
    # R10: the material change also calls for a new impact assessment before anyone consents again.
    assert tenant.consent(person["id"], notice_version=2).json["code"] == "assessment_required"
    tenant.assess(["door_access"])
    # Consenting again to the new notice version restores access; the old version is refused.
    assert tenant.consent(person["id"], notice_version=1).json["code"] == "stale_notice"
    renewed = tenant.consent(person["id"], notice_version=2)
    assert renewed.status_code == 201
    assert tenant.verify("door_access", subject_id=person["id"]).json["decision"] == "allow"


@pytest.mark.committed
def test_r5_non_material_change_keeps_consents_active(tenant: Tenant) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    tenant.post(
        "/v1/purposes/door_access/notices", {"texts": {"zh-CN": "新版告知", "en": "Typo fixed"}, "material": False}
    )
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"


def test_r1_notice_digest_covers_the_controller_and_every_field_told(tenant: Tenant, other_tenant: Tenant) -> None:
    ours = tenant.purpose(assess=False)["notice"]["digest"]
    theirs = other_tenant.purpose(assess=False)["notice"]["digest"]
    assert ours != theirs  # same texts, another controller
    longer = tenant.purpose("door_access_2", assess=False, retention_days=91)["notice"]["digest"]
    same_but_code = tenant.purpose("door_access_3", assess=False)["notice"]["digest"]
    assert len({ours, longer, same_but_code}) == 3
