"""The guardian pages driven in a real headless Chromium (Debian's /usr/bin/chromium, through Playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from service import db
from service.models import GuardianRequest, utcnow

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

SCREENSHOTS = Path(__file__).parent / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture()
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized page, in Chinese unless a test asks otherwise."""
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()


def _request(
    tenant: Tenant, guardian: GuardianKit, delivery: str = "sms", locale: str = "zh-CN"
) -> tuple[dict[str, Any], dict[str, Any]]:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"], delivery=delivery, locale=locale)
    assert created.status_code == 202, created.json
    return child, created.json


def _statuses(tenant: Tenant, request_id: str) -> tuple[str, dict[str, str]]:
    polled = tenant.get(f"/v1/guardian-requests/{request_id}", scope="consents").json
    return polled["status"], {c["purpose"]: c["status"] for c in polled["consents"]}


def test_sms_link_tick_one_of_two_and_approve(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian)
    phone.goto(guardian.url_from(outbox()[0]))
    boxes = phone.locator('input[name="purpose"]')
    assert boxes.count() == 2
    assert not phone.locator('input[name="purpose"][value="door_access"]').is_checked()
    assert not phone.locator('input[name="purpose"][value="canteen_payment"]').is_checked()
    for notice in phone.locator("details").all():  # the notices are one tap away, closed at first
        notice.locator("summary").click()
    text = phone.locator("main").inner_text()
    for expected in (
        "Sunrise School",
        "privacy@sunrise.example",
        "我们使用人脸识别开门。",
        "90 天",
        "刷学生卡同样可以开启校门",
        "闸机摄像头拍摄人脸",
        "人脸信息属于敏感个人信息",
        "个人信息处理者",
        "不满十四周岁",
        "监护人同意",
        "撤回",
    ):
        assert expected in text, expected
    # R1: a Chinese page tells everything in Chinese; nothing the organization wrote shows in English.
    for english in ("Door access", "A student card", "Staff cannot check", "The gate camera"):
        assert english not in text, english
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":  # the notices open, as a guardian reading them sees it
        SCREENSHOTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(SCREENSHOTS / "guardian-page-notices-zh.png"), full_page=True)
    phone.check('input[name="purpose"][value="door_access"]')
    phone.check('input[name="attest_guardian"]')
    phone.click('button[name="action"][value="approve"]')
    assert phone.locator("#receipt").is_visible()
    assert _statuses(tenant, created["id"]) == (
        "partially_approved",
        {"door_access": "active", "canteen_payment": "declined"},
    )
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"


def test_qr_then_sms_code_then_approve(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian, delivery="qr")
    phone.goto(created["approve_url"])
    phone.check('input[name="purpose"][value="door_access"]')
    phone.check('input[name="purpose"][value="canteen_payment"]')
    phone.check('input[name="transmit"][value="canteen_payment"]')
    phone.click('button[name="action"][value="send_code"]')
    assert "验证码正在发送" in phone.locator("#note-otp").inner_text()
    # Ticks survive the round trip of sending the code.
    assert phone.locator('input[name="purpose"][value="door_access"]').is_checked()
    assert phone.locator('input[name="transmit"][value="canteen_payment"]').is_checked()
    phone.fill('input[name="otp"]', guardian.code_from(outbox()[-1]))
    phone.check('input[name="attest_guardian"]')
    phone.click('button[name="action"][value="approve"]')
    assert phone.locator("#receipt").is_visible()
    assert _statuses(tenant, created["id"]) == ("approved", {"door_access": "active", "canteen_payment": "active"})
    assert tenant.verify("canteen_payment", subject_id=child["id"]).json["decision"] == "allow"


def test_five_wrong_codes_lock(live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit) -> None:
    _, created = _request(tenant, guardian, delivery="qr")
    phone.goto(created["approve_url"])
    phone.click('button[name="action"][value="send_code"]')
    wrong = f"{(int(guardian.code_from(outbox()[-1])) + 1) % 1_000_000:06d}"
    for _ in range(4):
        phone.check('input[name="purpose"][value="door_access"]')
        phone.fill('input[name="otp"]', wrong)
        phone.check('input[name="attest_guardian"]')
        phone.click('button[name="action"][value="approve"]')
        assert "验证码不正确" in phone.locator('[data-error="otp"]').inner_text()
    phone.check('input[name="purpose"][value="door_access"]')
    phone.fill('input[name="otp"]', wrong)
    phone.check('input[name="attest_guardian"]')
    phone.click('button[name="action"][value="approve"]')
    assert "锁定" in phone.locator("#message").inner_text()
    assert _statuses(tenant, created["id"])[0] == "locked"


def test_decline(live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit) -> None:
    child, created = _request(tenant, guardian)
    phone.goto(guardian.url_from(outbox()[0]))
    phone.click('button[name="action"][value="decline"]')
    assert phone.locator("#receipt").is_visible()
    assert _statuses(tenant, created["id"]) == ("declined", {"door_access": "declined", "canteen_payment": "declined"})
    assert tenant.verify("door_access", subject_id=child["id"]).json["reason"] == "declined"


def test_reused_and_expired_links(
    live: str, tenant: Tenant, outbox: Any, phone: Any, app: Flask, guardian: GuardianKit
) -> None:
    _request(tenant, guardian)
    link = guardian.url_from(outbox()[0])
    phone.goto(link)
    phone.check('input[name="purpose"][value="door_access"]')
    phone.check('input[name="attest_guardian"]')
    phone.click('button[name="action"][value="approve"]')
    reused = phone.goto(link)
    assert reused is not None and reused.status == 410
    assert "已用于作出决定" in phone.locator("#used").inner_text()

    child2 = tenant.subject(age_years=7)
    second = tenant.guardian_request(child2["id"], ["door_access"], delivery="qr").json
    with app.app_context():
        session = db.session()
        row = session.get(GuardianRequest, second["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.commit()
    expired = phone.goto(second["approve_url"])
    assert expired is not None and expired.status == 410
    assert "已过期" in phone.locator("#message").inner_text()
    unknown = phone.goto(f"{live}/g/{'x' * 43}")
    assert unknown is not None and unknown.status == 404


def test_withdrawal_page(live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit) -> None:
    child, created = _request(tenant, guardian)
    phone.goto(guardian.url_from(outbox()[0]))
    phone.check('input[name="purpose"][value="door_access"]')
    phone.check('input[name="purpose"][value="canteen_payment"]')
    phone.check('input[name="transmit"][value="canteen_payment"]')
    phone.check('input[name="attest_guardian"]')
    phone.click('button[name="action"][value="approve"]')
    phone.goto(guardian.url_from(outbox()[-1]))
    door = next(c["id"] for c in created["consents"] if c["purpose"] == "door_access")
    phone.click(f'button[name="withdraw"][value="{door}"]')
    phone.click(f'button[name="confirm"][value="{door}"]')
    assert "已撤回" in phone.locator("#flash").inner_text()
    assert phone.locator(f'button[name="withdraw"][value="{door}"]').count() == 0
    denied = tenant.verify("door_access", subject_id=child["id"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "revoked")
    assert tenant.verify("canteen_payment", subject_id=child["id"]).json["decision"] == "allow"


def test_english_rendering_by_accept_language_and_by_lang(
    live: str, tenant: Tenant, browser: Any, guardian: GuardianKit
) -> None:
    _, created = _request(tenant, guardian, delivery="qr")
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="en-US")
    page = context.new_page()
    page.goto(created["approve_url"])
    assert page.locator("html").get_attribute("lang") == "en"
    for notice in page.locator("details").all():
        notice.locator("summary").click()
    text = page.locator("main").inner_text()
    assert "Consent for processing your child's face" in text
    assert "We open the gate by face." in text and "90 days" in text
    for expected in ("Door access", "A student card opens the same gate", "The gate camera takes a picture"):
        assert expected in text, expected
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(SCREENSHOTS / "guardian-page-en.png"), full_page=True)
    page.goto(created["approve_url"] + "?lang=zh-CN")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "处理孩子人脸信息的监护人同意" in page.locator("main").inner_text()
    context.close()


def test_r9_transmission_is_its_own_box_in_chromium(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    """A purpose that sends face data off the device has a second, unticked box; one box alone approves nothing."""
    child, created = _request(tenant, guardian)
    phone.goto(guardian.url_from(outbox()[0]))
    transmit = phone.locator('input[name="transmit"]')
    assert transmit.count() == 1, "only the purpose that transmits has the second box"
    canteen = phone.locator('input[name="transmit"][value="canteen_payment"]')
    assert not canteen.is_checked()
    assert "从采集设备传送出去" in phone.locator('label[for="transmit-canteen_payment"]').inner_text()
    assert phone.locator('input[name="transmit"][value="door_access"]').count() == 0

    # The purpose ticked, its transmission not: refused, nothing recorded, the error next to the box.
    phone.check('input[name="purpose"][value="door_access"]')
    phone.check('input[name="purpose"][value="canteen_payment"]')
    phone.check('input[name="attest_guardian"]')
    phone.click('button[name="action"][value="approve"]')
    assert "您的选择未提交" in phone.locator('[data-error="purposes"]').inner_text()
    assert phone.locator('[data-transmit-error="canteen_payment"]').is_visible()
    assert phone.locator('input[name="purpose"][value="canteen_payment"]').is_checked()
    assert _statuses(tenant, created["id"]) == (
        "pending",
        {"door_access": "pending_guardian", "canteen_payment": "pending_guardian"},
    )

    # The transmission box alone: refused as well.
    phone.uncheck('input[name="purpose"][value="canteen_payment"]')
    phone.check('input[name="transmit"][value="canteen_payment"]')
    phone.click('button[name="action"][value="approve"]')
    assert phone.locator('[data-transmit-error="canteen_payment"]').is_visible()
    assert _statuses(tenant, created["id"])[0] == "pending"

    # Both boxes: approved, and the evidence says the transmission was consented to on its own.
    phone.check('input[name="purpose"][value="canteen_payment"]')
    assert phone.locator('input[name="transmit"][value="canteen_payment"]').is_checked()
    phone.click('button[name="action"][value="approve"]')
    assert phone.locator("#receipt").is_visible()
    assert _statuses(tenant, created["id"]) == ("approved", {"door_access": "active", "canteen_payment": "active"})
    allowed = tenant.verify("canteen_payment", subject_id=child["id"]).json
    consent = tenant.get(f"/v1/consents/{allowed['consent_id']}", scope="consents").json
    assert consent["evidence"]["transmission_consent"] is True


def test_r9_transmission_box_in_english(live: str, tenant: Tenant, browser: Any, guardian: GuardianKit) -> None:
    _, created = _request(tenant, guardian, delivery="qr")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    page.goto(created["approve_url"])
    label = page.locator('label[for="transmit-canteen_payment"]').inner_text()
    assert "I separately agree that my child's face data may be transmitted off the device" in label
    assert "you consent to that separately here" not in page.locator("main").inner_text()
    context.close()
