"""People's rights (PIPL 44-50, R16): the person's page, its link, the copy, withdrawal, requests, complaints."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import rights
from service.domain.subjects import CHINA_TIME
from service.errors import NotFound
from service.models import AccessLink, AuditEvent, Consent, utcnow

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

PHONE = "+8613812345678"


def page_link(tenant: Tenant, subject_id: str) -> dict[str, Any]:
    response = tenant.post(f"/v1/subjects/{subject_id}/access-link", scope="consents")
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def adult_with_consent(tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    return person, consent


def path_of(url: str) -> str:
    return "/p/" + url.rsplit("/p/", 1)[1]


# --- The domain ---------------------------------------------------------------------------------------------


def test_pipl50_rights_request_has_a_due_date_domain() -> None:
    # Filed on a Friday afternoon, China time: 15 working days later is three weeks on, a Friday.
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=CHINA_TIME)
    due = rights.rights_due_at(friday)
    assert due.astimezone(CHINA_TIME).date() == date(2026, 3, 27)
    assert (due.astimezone(CHINA_TIME).hour, due.astimezone(CHINA_TIME).minute) == (23, 59)
    # Holidays are skipped and make-up working days count, as for filing (R12).
    holidays = frozenset({date(2026, 3, 9), date(2026, 3, 10)})
    extra = frozenset({date(2026, 3, 14)})
    shifted = rights.rights_due_at(friday, holidays=holidays, extra_workdays=extra)
    assert shifted.astimezone(CHINA_TIME).date() == date(2026, 3, 30)
    # The day filed is China's: 17:00 UTC on Thursday is already Friday in Beijing.
    late = datetime(2026, 3, 5, 17, 0, tzinfo=UTC)
    assert rights.rights_due_at(late) == due


def test_pipl44_person_sees_and_copies_their_data_domain(tenant: Tenant, app: Flask, db_session: Session) -> None:
    person, consent = adult_with_consent(tenant)
    neighbour = tenant.subject()
    theirs = tenant.consent(neighbour["id"]).json
    issued = rights.issue_access_link(
        db_session, org_id=tenant.org_id, actor="test", subject_id=person["id"], hours=72, daily_sms_limit=500
    )
    assert issued.link.holder == "person" and issued.reservation is None
    # Stored hashed: the token is nowhere in the row.
    assert issued.token not in json.dumps({c.name: str(getattr(issued.link, c.name)) for c in AccessLink.__table__.c})
    link = rights.resolve_access_link(db_session, issued.token)
    assert [c.id for c in rights.consents_of_person(db_session, link)] == [consent["id"]]
    copy = rights.copy_of_data(db_session, link)
    assert copy["subject"]["id"] == person["id"] and copy["subject"]["external_ref"] == person["external_ref"]
    [held] = copy["consents"]
    assert held["id"] == consent["id"] and held["status"] == "active"
    assert held["notice"]["version"] == 1 and len(held["notice"]["digest"]) == 64
    assert held["notice"]["texts"]["zh-CN"] == "我们使用人脸识别开门。"
    assert held["evidence"]["method"] == "checkbox"
    assert copy["controller"]["name"] == "Sunrise School"
    text = json.dumps(copy, ensure_ascii=False)
    assert theirs["id"] not in text and neighbour["id"] not in text and neighbour["external_ref"] not in text


def test_r3_withdraw_on_page_only_the_persons_own_consent_domain(tenant: Tenant, db_session: Session) -> None:
    person, consent = adult_with_consent(tenant)
    neighbour = tenant.subject()
    theirs = tenant.consent(neighbour["id"]).json
    issued = rights.issue_access_link(
        db_session, org_id=tenant.org_id, actor="test", subject_id=person["id"], hours=1, daily_sms_limit=500
    )
    for other in (theirs["id"], "x" * 37, "", "\x00"):
        with pytest.raises(NotFound):
            rights.withdraw_on_page(db_session, issued.link, other)
    assert db_session.get(Consent, theirs["id"]).status == "active"  # type: ignore[union-attr]
    withdrawn = rights.withdraw_on_page(db_session, issued.link, consent["id"])
    assert withdrawn.status == "revoked" and withdrawn.end_reason == "withdrawn"
    assert withdrawn.ended_by == f"person:{issued.link.id}"
    # Withdrawing again changes nothing: a withdrawal is never undone, nor repeated.
    assert rights.withdraw_on_page(db_session, issued.link, consent["id"]).ended_at == withdrawn.ended_at


def test_pipl50_rights_request_is_filed_bounded_and_closed_once_domain(tenant: Tenant, db_session: Session) -> None:
    person, _ = adult_with_consent(tenant)
    issued = rights.issue_access_link(
        db_session, org_id=tenant.org_id, actor="test", subject_id=person["id"], hours=1, daily_sms_limit=500
    )
    for kind, details in (("erase_everything", "x"), ("complaint", "   "), ("complaint", "x" * 2001)):
        with pytest.raises(rights.requests.Unprocessable):
            rights.file_rights_request(db_session, issued.link, kind=kind, details=details)
    filed = rights.file_rights_request(db_session, issued.link, kind="correction", details=" 我的工号写错了 ")
    assert (filed.kind, filed.details, filed.status) == ("correction", "我的工号写错了", "open")
    assert filed.due_at == rights.rights_due_at(filed.created_at)
    closed = rights.close_rights_request(
        db_session, org_id=tenant.org_id, actor="key:x", request_id=filed.id, outcome="已更正"
    )
    again = rights.close_rights_request(
        db_session, org_id=tenant.org_id, actor="key:y", request_id=filed.id, outcome="something else"
    )
    assert (again.status, again.outcome, again.closed_by) == ("closed", "已更正", "key:x") and closed is again
    with pytest.raises(NotFound):
        rights.close_rights_request(db_session, org_id="another-org", actor="k", request_id=filed.id, outcome="x")
    events = db_session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == filed.id)).all()
    db_session.flush()
    assert "我的工号写错了" not in json.dumps([str(e) for e in events], ensure_ascii=False)


def test_pipl50_open_requests_per_person_are_capped_domain(tenant: Tenant, db_session: Session) -> None:
    person, _ = adult_with_consent(tenant)
    issued = rights.issue_access_link(
        db_session, org_id=tenant.org_id, actor="test", subject_id=person["id"], hours=1, daily_sms_limit=500
    )
    for n in range(rights.MAX_OPEN_PER_SUBJECT):
        rights.file_rights_request(db_session, issued.link, kind="complaint", details=f"complaint {n}")
    with pytest.raises(rights.TooManyOpenRequests):
        rights.file_rights_request(db_session, issued.link, kind="complaint", details="one more")


def test_r16_expired_and_unknown_links_are_refused_domain(tenant: Tenant, db_session: Session) -> None:
    person, _ = adult_with_consent(tenant)
    issued = rights.issue_access_link(
        db_session, org_id=tenant.org_id, actor="test", subject_id=person["id"], hours=1, daily_sms_limit=500
    )
    with pytest.raises(rights.AccessLinkGone):
        rights.resolve_access_link(db_session, issued.token, now=utcnow() + timedelta(hours=1, seconds=1))
    for wrong in (issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B"), "short", "x" * 101, "é" * 43):
        with pytest.raises(NotFound):
            rights.resolve_access_link(db_session, wrong)


# --- Through HTTP -------------------------------------------------------------------------------------------


def test_pipl44_adult_gets_a_link_and_sees_their_consents(tenant: Tenant, client: Any, guardian: GuardianKit) -> None:
    tenant.client.patch(
        "/v1/organization",
        json={
            "pipo": {"name": "王敏", "contact": "pipo@sunrise.example"},
            "complaint_channel": "投诉电话 010-12345678",
        },
        headers=tenant.headers("admin"),
    )
    person, consent = adult_with_consent(tenant)
    answer = page_link(tenant, person["id"])
    assert answer["url"].startswith("http://consent-gate.test/p/") and answer["holder"] == "person"
    expires = datetime.fromisoformat(answer["expires_at"])
    assert expires - utcnow() == pytest.approx(timedelta(hours=72), abs=timedelta(seconds=30))
    page = client.get(path_of(answer["url"]))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-consent="{consent["id"]}"' in html and 'data-status="active"' in html
    for expected in (
        "校门通行",
        "刷学生卡同样可以开启校门",
        "有效",
        "个人信息处理者",
        "privacy@sunrise.example",
        "王敏",
        "010-12345678",
    ):
        assert expected in html, expected
    assert re.search(r'<a href="/p/[^"]+/copy\.json" download>', html)
    assert 'name="withdraw" value="' + consent["id"] + '"' in html
    assert 'select id="kind" name="kind"' in html and 'name="details"' in html
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    english = client.get(path_of(answer["url"]) + "?lang=en").get_data(as_text=True)
    assert "Your personal information and your rights" in english and "Door access" in english
    by_header = client.get(path_of(answer["url"]), headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Withdraw consent" in by_header.get_data(as_text=True)


@pytest.mark.committed
def test_r3_withdrawal_on_the_page_asks_to_confirm_then_verification_denies_revoked(
    tenant: Tenant, guardian: GuardianKit
) -> None:
    person, consent = adult_with_consent(tenant)
    other = tenant.subject()
    theirs = tenant.consent(other["id"]).json
    browser = guardian.browser(path_of(page_link(tenant, person["id"])["url"]))
    asked = browser.submit(withdraw=consent["id"])
    assert asked.status_code == 200 and 'name="confirm"' in asked.get_data(as_text=True)
    # Asking is not withdrawing.
    assert tenant.verify("door_access", subject_id=person["id"]).json["decision"] == "allow"
    # Another person's consent, however its id was learned: nothing happens.
    assert browser.submit(confirm=theirs["id"]).status_code == 404
    assert browser.submit(withdraw=theirs["id"]).status_code == 404
    assert tenant.verify("door_access", subject_id=other["id"]).json["decision"] == "allow"
    done = browser.submit(confirm=consent["id"])
    assert done.status_code == 200 and "已撤回" in done.get_data(as_text=True)
    denied = tenant.verify("door_access", subject_id=person["id"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "revoked")
    read = tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json
    assert read["status"] == "revoked"
    events = tenant.get("/v1/audit/events?limit=1000").json["events"]
    revoked = [e for e in events if e["action"] == "consent.revoked" and e["object_id"] == consent["id"]]
    assert len(revoked) == 1 and revoked[0]["actor"].startswith("person:")
    # A second confirmation (a reload) changes nothing and the page says it is over.
    assert browser.submit(confirm=consent["id"]).status_code == 200
    assert browser.submit(withdraw=consent["id"]).status_code == 409


def test_pipl45_copy_is_a_json_download_of_the_persons_own_data(
    tenant: Tenant, client: Any, guardian: GuardianKit
) -> None:
    person, consent = adult_with_consent(tenant)
    other = tenant.subject()
    tenant.consent(other["id"])
    url = page_link(tenant, person["id"])["url"]
    downloaded = client.get(path_of(url) + "/copy.json")
    assert downloaded.status_code == 200 and downloaded.mimetype == "application/json"
    assert downloaded.headers["Content-Disposition"].startswith("attachment; filename=")
    assert downloaded.headers["Cache-Control"] == "no-store"
    copy = json.loads(downloaded.get_data(as_text=True))
    assert copy["subject"]["id"] == person["id"]
    assert [c["id"] for c in copy["consents"]] == [consent["id"]]
    assert copy["consents"][0]["notice"]["digest"] == tenant.get("/v1/purposes/door_access").json["notice"]["digest"]
    assert other["id"] not in downloaded.get_data(as_text=True)
    assert client.get("/p/" + "x" * 43 + "/copy.json").status_code == 404


def test_pipl50_request_is_filed_on_the_page_listed_and_closed_by_the_organization(
    tenant: Tenant, other_tenant: Tenant, guardian: GuardianKit
) -> None:
    person, _ = adult_with_consent(tenant)
    browser = guardian.browser(path_of(page_link(tenant, person["id"])["url"]))
    filed = browser.submit(action="request", kind="deletion", details="请删除我的人脸信息")
    assert filed.status_code == 200 and "已提交" in filed.get_data(as_text=True)
    [item] = tenant.get("/v1/rights-requests").json["items"]
    assert set(item) >= {"id", "subject_id", "kind", "details", "status", "due_at"}
    assert (item["subject_id"], item["kind"], item["details"], item["status"]) == (
        person["id"],
        "deletion",
        "请删除我的人脸信息",
        "open",
    )
    due = datetime.fromisoformat(item["due_at"])
    assert due == rights.rights_due_at(datetime.fromisoformat(item["created_at"]))
    # Another organization sees nothing and can close nothing; other scopes may not read them.
    assert other_tenant.get("/v1/rights-requests").json == {"items": [], "next_cursor": None}
    stranger = other_tenant.post(f"/v1/rights-requests/{item['id']}/close", {"outcome": "done"})
    assert stranger.status_code == 404
    assert tenant.get("/v1/rights-requests", scope="consents").status_code == 403
    closed = tenant.post(f"/v1/rights-requests/{item['id']}/close", {"outcome": "已删除"})
    assert closed.status_code == 200 and (closed.json["status"], closed.json["outcome"]) == ("closed", "已删除")
    again = tenant.post(f"/v1/rights-requests/{item['id']}/close", {"outcome": "twice"})
    assert again.status_code == 200 and again.json["outcome"] == "已删除"
    assert tenant.post(f"/v1/rights-requests/{item['id']}/close", {}).status_code == 422
    events = tenant.get("/v1/audit/events?limit=1000").json["events"]
    actions = [e["action"] for e in events if e["object_id"] == item["id"]]
    assert actions == ["rights_request.filed", "rights_request.closed"]
    assert "请删除" not in json.dumps(events, ensure_ascii=False)
    assert tenant.get("/v1/rights-requests?status=open").json["items"] == []
    # The person sees the answer on the page.
    assert "已删除" in browser.open().get_data(as_text=True)


def test_pipl50_rights_requests_are_paginated(tenant: Tenant, guardian: GuardianKit) -> None:
    person, _ = adult_with_consent(tenant)
    browser = guardian.browser(path_of(page_link(tenant, person["id"])["url"]))
    for kind in ("correction", "deletion", "complaint"):
        assert browser.submit(action="request", kind=kind, details=f"about {kind}").status_code == 200
    first = tenant.get("/v1/rights-requests?limit=2").json
    assert [i["kind"] for i in first["items"]] == ["correction", "deletion"] and first["next_cursor"]
    rest = tenant.get(f"/v1/rights-requests?limit=2&cursor={first['next_cursor']}").json
    assert [i["kind"] for i in rest["items"]] == ["complaint"] and rest["next_cursor"] is None
    assert tenant.get("/v1/rights-requests?limit=1001").status_code == 422
    assert tenant.get("/v1/rights-requests?status=lost").status_code == 422


def test_pipl50_page_refuses_bad_requests_and_keeps_what_was_typed(tenant: Tenant, guardian: GuardianKit) -> None:
    person, _ = adult_with_consent(tenant)
    browser = guardian.browser(path_of(page_link(tenant, person["id"])["url"]))
    empty = browser.submit(action="request", kind="complaint", details="   ")
    assert empty.status_code == 400 and "未提交" in empty.get_data(as_text=True)
    huge = browser.submit(action="request", kind="complaint", details="长" * 2001)
    assert huge.status_code == 400
    unknown = browser.submit(action="request", kind="erase_the_organization", details="please")
    assert unknown.status_code == 400 and "please" in unknown.get_data(as_text=True)
    too_big = browser.submit(action="request", kind="complaint", details="x" * 70_000)
    assert too_big.status_code == 413
    assert tenant.get("/v1/rights-requests").json["items"] == []


def test_r14_page_links_cannot_be_guessed_reused_or_forged(
    tenant: Tenant, other_tenant: Tenant, client: Any, guardian: GuardianKit, app: Flask
) -> None:
    person, consent = adult_with_consent(tenant)
    url = page_link(tenant, person["id"])["url"]
    path = path_of(url)
    # Guessed or cut links are unknown; a guardian's link is not a page link.
    assert client.get("/p/" + "A" * 43).status_code == 404
    assert client.get(path[:-2]).status_code == 404
    # Another organization's key cannot open a link for this organization's subject.
    assert other_tenant.post(f"/v1/subjects/{person['id']}/access-link", scope="consents").status_code == 404
    assert tenant.post(f"/v1/subjects/{person['id']}/access-link", scope="admin").status_code == 403
    # A form without the CSRF pair does nothing.
    forged = client.post(path, data={"confirm": consent["id"]})
    assert forged.status_code == 403
    fresh = app.test_client()
    fresh.get(path)
    assert fresh.post(path, data={"confirm": consent["id"], "csrf_token": "0" * 64}).status_code == 403
    assert tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json["status"] == "active"
    # The CSRF token of one link does not serve another person's link.
    other = tenant.subject()
    other_path = path_of(page_link(tenant, other["id"])["url"])
    token = guardian.browser(path).csrf()
    assert (
        client.post(
            other_path, data={"action": "request", "kind": "complaint", "details": "x", "csrf_token": token}
        ).status_code
        == 403
    )


def test_r14_expired_link_answers_410(tenant: Tenant, client: Any, app: Flask) -> None:
    from service import db

    person, _ = adult_with_consent(tenant)
    path = path_of(page_link(tenant, person["id"])["url"])
    with app.app_context():
        session = db.session()
        for link in session.scalars(select(AccessLink)):
            link.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    gone = client.get(path)
    assert gone.status_code == 410 and "已过期" in gone.get_data(as_text=True)
    assert client.get(path + "/copy.json").status_code == 410


def test_r13_erasure_removes_page_links_and_the_words_of_requests(
    tenant: Tenant, client: Any, guardian: GuardianKit
) -> None:
    person, _ = adult_with_consent(tenant)
    path = path_of(page_link(tenant, person["id"])["url"])
    guardian.browser(path).submit(action="request", kind="deletion", details="我的名字是张三")
    assert tenant.delete(f"/v1/subjects/{person['id']}").status_code == 204
    assert client.get(path).status_code == 404
    [item] = tenant.get("/v1/rights-requests").json["items"]
    assert item["details"] is None and item["kind"] == "deletion"
    refused = tenant.post(f"/v1/subjects/{person['id']}/access-link", scope="consents")
    assert refused.status_code == 409 and refused.json["code"] == "subject_erased"


def test_pipl31_childs_link_goes_by_sms_to_the_guardian_never_in_the_answer(
    tenant: Tenant, outbox: Any, client: Any, guardian: GuardianKit
) -> None:
    child = guardian.setup_child(tenant)
    refused = tenant.post(f"/v1/subjects/{child['id']}/access-link", scope="consents")
    assert refused.status_code == 409 and refused.json["code"] == "no_guardian_phone"
    assert tenant.guardian_request(child["id"], ["door_access"], phone="+8613912345678").status_code == 202
    assert (
        tenant.guardian_request(child["id"], ["canteen_payment"], phone=PHONE, child_display_name="张*明").status_code
        == 202
    )
    sent_before = len(outbox())
    answer = tenant.post(f"/v1/subjects/{child['id']}/access-link", scope="consents")
    assert answer.status_code == 201, answer.json
    assert "url" not in answer.json and answer.json["holder"] == "guardian"
    assert answer.json["delivery_status"] == "queued" and answer.json["guardian"] == {"phone_masked": "+86 138****5678"}
    messages = outbox()[sent_before:]
    assert len(messages) == 1 and messages[0]["to"] == PHONE  # the latest guardian request's phone
    body = messages[0]["body"]
    assert "/p/" in body and "Sunrise School" in body
    assert "张*明" not in body and child["external_ref"] not in body
    url = re.search(r"https?://\S+/p/[A-Za-z0-9_-]+", body).group(0)  # type: ignore[union-attr]
    assert url not in json.dumps(answer.json)
    page = client.get(path_of(url))
    assert page.status_code == 200 and "孩子" in page.get_data(as_text=True)
    # Within the phone's allowance, like every SMS: one of a kind a minute.
    again = tenant.post(f"/v1/subjects/{child['id']}/access-link", scope="consents")
    assert again.status_code == 429 and again.json["code"] == "rate_limited" and "Retry-After" in again.headers
    assert len(outbox()) == sent_before + 1


@pytest.fixture()
def tight_page_limit(app_config: dict[str, Any]) -> None:
    app_config.update(RATE_LIMIT_PEOPLE="2/minute", RATE_LIMIT_PREFIX=f"cg-test-rights-{utcnow().timestamp()}")


def test_r14_the_page_is_rate_limited_per_client(tight_page_limit: None, client: Any) -> None:
    statuses = [client.get("/p/" + "x" * 43).status_code for _ in range(3)]
    assert statuses == [404, 404, 429]


def test_r14_no_page_token_or_phone_in_the_logs(
    tenant: Tenant, outbox: Any, client: Any, caplog: pytest.LogCaptureFixture, guardian: GuardianKit
) -> None:
    caplog.set_level(logging.DEBUG)
    person, consent = adult_with_consent(tenant)
    url = page_link(tenant, person["id"])["url"]
    browser = guardian.browser(path_of(url))
    browser.submit(withdraw=consent["id"])
    browser.submit(action="request", kind="complaint", details="秘密的投诉内容")
    client.get(path_of(url) + "/copy.json")
    child = tenant.subject(age_years=8)
    tenant.guardian_request(child["id"], ["door_access"], phone="+8613712345678")
    tenant.post(f"/v1/subjects/{child['id']}/access-link", scope="consents")
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    sms_url = re.search(r"https?://\S+/p/[A-Za-z0-9_-]+", outbox()[-1]["body"]).group(0)  # type: ignore[union-attr]
    for secret in (url.rsplit("/", 1)[1], sms_url.rsplit("/", 1)[1], "13712345678", "137****5678", "秘密的投诉内容"):
        assert secret not in logged, secret[:12]
