"""Issue 15: the guardian pages reach people on a phone (receipt, Back, used links, rem sizes, controls within
reach, errors beside their fields, withdrawal confirmed, axe-core clean), in a real headless Chromium."""

from __future__ import annotations

import os
import re
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
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 375, "height": 667}
LONG_NOTICE = {
    "zh-CN": "我们在学校使用人脸识别。" * 40 + "\n\n" + "人脸信息属于敏感个人信息，我们只在必要范围内处理。" * 20,
    "en": "We use face recognition at school. " * 40
    + "\n\n"
    + "Face data is sensitive; we process it only as needed. " * 20,
}

pytestmark = pytest.mark.browser


@pytest.fixture()
def phone(browser: Any) -> Iterator[Any]:
    """A small phone (375 by 667 px), in Chinese, with JavaScript off: the pages must work without it."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture()
def axe(browser: Any) -> Iterator[Any]:
    """Runs axe-core on a page's HTML as it was shown, in a context of its own (the pages allow no script)."""
    context = browser.new_context(viewport=PHONE)
    checker = context.new_page()
    source = AXE.read_text()

    def violations(html: str) -> list[dict[str, Any]]:
        checker.set_content(html)
        checker.add_script_tag(content=source)
        found: list[dict[str, Any]] = checker.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"
        )
        return found

    yield violations
    context.close()


def _request(
    tenant: Tenant, guardian: GuardianKit, *, delivery: str = "sms", long_notices: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    child = guardian.setup_child(tenant)
    if long_notices:
        for code in ("door_access", "canteen_payment"):
            published = tenant.post(f"/v1/purposes/{code}/notices", {"texts": LONG_NOTICE, "material": False})
            assert published.status_code == 201, published.json
    created = tenant.guardian_request(
        child["id"], ["door_access", "canteen_payment"], delivery=delivery, child_display_name="张*明"
    )
    assert created.status_code == 202, created.json
    return child, created.json


def _approve_door(phone: Any) -> None:
    phone.check('input[name="purpose"][value="door_access"]')
    phone.check('input[name="attest_guardian"]')
    phone.click('button[name="action"][value="approve"]')


def test_a_decision_redirects_to_a_receipt_that_stays_and_switches_language(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    _, created = _request(tenant, guardian)
    link = guardian.url_from(outbox()[0])
    phone.goto(link)
    with phone.expect_response(lambda r: r.request.method == "POST") as posted:
        _approve_door(phone)
    assert posted.value.status == 303
    receipt_url = phone.url
    assert re.fullmatch(rf"{re.escape(live)}/g/r/[A-Za-z0-9_-]{{43}}\?lang=zh-CN", receipt_url), receipt_url
    assert guardian.link_path(link) not in receipt_url  # not the spent link
    text = phone.locator("main").inner_text()
    assert "您的决定已记录" in text and "张*明" in text
    assert phone.locator('[data-purpose="door_access"]').get_attribute("data-decision") == "approved"
    assert phone.locator('[data-purpose="canteen_payment"]').get_attribute("data-decision") == "declined"
    assert phone.locator("#reference").inner_text() == created["id"]
    assert "短信中的撤回链接" in phone.locator("#withdrawal").inner_text()
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        phone.screenshot(path=str(SCREENSHOTS / "guardian-receipt-zh.png"), full_page=True)

    # It stays reachable, never cached, never leaking its address.
    again = phone.goto(receipt_url)
    assert again is not None and again.status == 200
    assert again.headers["cache-control"] == "no-store"
    assert again.headers["referrer-policy"] == "no-referrer"

    # The language switch keeps the page.
    phone.click("a.lang-switch, .lang-switch a")
    assert phone.url.split("?")[0] == receipt_url.split("?")[0]
    assert phone.locator("html").get_attribute("lang") == "en"
    assert "Your decision is recorded" in phone.locator("main").inner_text()
    assert phone.locator("#reference").inner_text() == created["id"]

    # Back, all the way to the decision link: pages, never a browser error (the 303 made history GETs).
    for _ in range(3):
        back = phone.go_back()
        assert back is not None and back.status in {200, 410}, phone.url
        body = phone.locator("body").inner_text()
        assert "ERR_" not in body and phone.locator("main").count() == 1
        if "/g/r/" not in phone.url:
            break
    assert phone.url == link
    assert phone.locator("#used").is_visible()  # the decision link, spent: it says what was decided


def test_a_used_link_shows_what_was_decided_an_expired_one_says_expired(
    live: str, tenant: Tenant, outbox: Any, phone: Any, app: Flask, guardian: GuardianKit
) -> None:
    _request(tenant, guardian)
    link = guardian.url_from(outbox()[0])
    phone.goto(link)
    _approve_door(phone)
    used = phone.goto(link)
    assert used is not None and used.status == 410
    text = phone.locator("main").inner_text()
    assert "此链接已用于作出决定" in text and "此链接已失效" not in text
    assert phone.locator('[data-purpose="door_access"]').get_attribute("data-decision") == "approved"
    assert "短信中的撤回链接" in phone.locator("#withdrawal").inner_text()
    assert phone.locator('input[name="purpose"]').count() == 0

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


def test_sizes_follow_the_browsers_font_size_setting(
    live: str, tenant: Tenant, outbox: Any, browser: Any, guardian: GuardianKit
) -> None:
    _request(tenant, guardian)
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(guardian.url_from(outbox()[0]))

    def body_px() -> float:
        return float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))

    def button_px() -> float:
        selector = 'button[name="action"][value="approve"]'
        return float(page.locator(selector).evaluate("e => e.getBoundingClientRect().height"))

    assert body_px() == 18.0  # 112.5% of the browser's 16 px
    small_button = button_px()
    cdp = context.new_cdp_session(page)
    cdp.send("Page.setFontSizes", {"fontSizes": {"standard": 24, "fixed": 20}})
    page.reload()
    assert body_px() == 27.0  # the guardian's larger setting scales the page
    assert button_px() > small_button * 1.3
    context.close()


def test_the_decision_controls_are_within_reach_on_a_small_phone(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    _request(tenant, guardian, long_notices=True)
    phone.goto(guardian.url_from(outbox()[0]))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(SCREENSHOTS / "guardian-page-zh.png"), full_page=True)
    approve = phone.locator('button[name="action"][value="approve"]').bounding_box()
    assert approve is not None
    assert approve["y"] + approve["height"] <= 2 * PHONE["height"], approve
    for code in ("door_access", "canteen_payment"):
        assert phone.locator(f'input[name="purpose"][value="{code}"]').bounding_box()["y"] < approve["y"]
    # Each notice is one tap (or key) away, closed by default.
    notices = phone.locator("details[data-notice]")
    assert notices.count() == 2
    door = phone.locator('details[data-notice="door_access"]')
    assert door.get_attribute("open") is None
    assert not door.locator("dd.notice").is_visible()
    door.locator("summary").focus()
    phone.keyboard.press("Enter")
    assert door.get_attribute("open") is not None
    assert "我们在学校使用人脸识别。" in door.locator("dd.notice").inner_text()


def test_each_error_stands_beside_its_field_with_the_focus(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    _, created = _request(tenant, guardian, delivery="qr")
    phone.goto(created["approve_url"])
    # No one-time code: the error is beside the code's input, which has the focus.
    _approve_door(phone)
    otp = phone.locator('input[name="otp"]')
    error = phone.locator('[data-error="otp"]')
    assert "请先发送并输入短信验证码" in error.inner_text()
    assert otp.get_attribute("aria-describedby") == error.get_attribute("id")
    assert otp.get_attribute("aria-invalid") == "true"
    assert otp.evaluate("e => e === document.activeElement")
    assert phone.locator("#flash").count() == 0  # not at the top
    box, field = error.bounding_box(), otp.bounding_box()
    assert abs(box["y"] - (field["y"] + field["height"])) < 100, (box, field)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        phone.screenshot(path=str(SCREENSHOTS / "guardian-otp-error-zh.png"))

    # Nothing ticked: beside the checkboxes, the first one focused.
    phone.uncheck('input[name="purpose"][value="door_access"]')
    phone.click('button[name="action"][value="send_code"]')
    assert "验证码正在发送" in phone.locator("#note-otp").inner_text()
    phone.fill('input[name="otp"]', guardian.code_from(outbox()[-1]))
    phone.click('button[name="action"][value="approve"]')
    purposes_error = phone.locator('[data-error="purposes"]')
    assert "没有勾选任何用途" in purposes_error.inner_text()
    first = phone.locator('input[name="purpose"][value="door_access"]')
    assert first.get_attribute("aria-describedby") == "error-purposes"
    assert first.evaluate("e => e === document.activeElement")


def test_withdrawal_asks_to_confirm_and_one_tap_never_withdraws(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian)
    phone.goto(guardian.url_from(outbox()[0]))
    _approve_door(phone)
    withdrawal = guardian.url_from(outbox()[-1])
    phone.goto(withdrawal)
    door = next(c["id"] for c in created["consents"] if c["purpose"] == "door_access")
    phone.click(f'button[name="withdraw"][value="{door}"]')
    text = phone.locator("main").inner_text()
    assert "确认撤回同意" in text and "刷学生卡" in text and "立即生效" in text
    assert phone.locator(f'button[name="confirm"][value="{door}"]').is_visible()
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"
    # Cancel goes back, withdrawing nothing.
    phone.click("#cancel")
    assert phone.locator(f'button[name="withdraw"][value="{door}"]').is_visible()
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"
    # A POST that skips the confirmation (a form of its own, same cookie and CSRF token) asks again.
    token = phone.locator('input[name="csrf_token"]').first.get_attribute("value")
    skipped = phone.request.post(withdrawal, form={"csrf_token": token, "withdraw": door})
    assert skipped.status == 200 and 'name="confirm"' in skipped.text()
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"
    # Confirmed: withdrawn, and the page says so after a 303 (reload and Back post nothing).
    phone.click(f'button[name="withdraw"][value="{door}"]')
    phone.click(f'button[name="confirm"][value="{door}"]')
    assert "/g/" in phone.url and "withdrawn=" in phone.url
    assert "已撤回" in phone.locator("#flash").inner_text()
    denied = tenant.verify("door_access", subject_id=child["id"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "revoked")


def test_what_a_grandparent_needs_is_visible_and_large_enough(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    """No tap needed for the deadline or the way without face recognition; help text at the body's size;
    targets at least 2.75rem (summaries) and 3rem (the cancel link) high; the reference in large type."""
    _, created = _request(tenant, guardian)
    phone.goto(guardian.url_from(outbox()[0]))
    rem = float(phone.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)"))
    body = float(phone.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))
    assert phone.locator("#deadline").is_visible() and "前作出决定" in phone.locator("#deadline").inner_text()
    for code in ("door_access", "canteen_payment"):
        assert phone.locator(f'details[data-notice="{code}"]').get_attribute("open") is None
        alternative = phone.locator(f'p[data-alternative="{code}"]')
        assert alternative.is_visible() and alternative.inner_text().startswith("不同意也可以：")
    for summary in phone.locator("summary").all():
        assert summary.bounding_box()["height"] >= 2.75 * rem - 0.5
    for muted in phone.locator(".muted").all():
        assert float(muted.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= body
    assert phone.locator("#attest-help").is_visible()

    _approve_door(phone)
    short = phone.locator("#short-reference")
    assert short.inner_text() == f"{created['id'][:4].upper()} {created['id'][4:8].upper()}"
    assert float(short.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 1.5 * body
    full = phone.locator("#reference")
    assert full.inner_text() == created["id"]  # still there, smaller, for the organization
    assert float(full.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) < 0.7 * float(
        short.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    )

    phone.goto(guardian.url_from(outbox()[-1]))
    phone.locator('button[name="withdraw"]').first.click()
    cancel = phone.locator("#cancel").bounding_box()
    assert cancel["height"] >= 3 * rem - 0.5 and cancel["width"] > 0.8 * PHONE["width"] - 2 * rem, cancel


def test_a_form_left_open_too_long_is_offered_again_not_reloaded(
    live: str, tenant: Tenant, outbox: Any, browser: Any, guardian: GuardianKit
) -> None:
    """The form's CSRF cookie gone (the browser closed, hours later): the page says the choices were not
    submitted and its large link opens the page afresh (a GET), where deciding works."""
    _, created = _request(tenant, guardian)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", java_script_enabled=False)
    phone = context.new_page()
    link = guardian.url_from(outbox()[0])
    phone.goto(link)
    context.clear_cookies()
    phone.check('input[name="purpose"][value="door_access"]')
    phone.check('input[name="attest_guardian"]')
    with phone.expect_response(lambda r: r.request.method == "POST") as posted:
        phone.click('button[name="action"][value="approve"]')
    assert posted.value.status == 403
    assert "页面停留太久，您的选择没有提交" in phone.locator("#message").inner_text()
    reopen = phone.locator("#reopen")
    assert reopen.bounding_box()["height"] >= 54 - 0.5  # 3rem
    with phone.expect_response(lambda r: r.request.method == "GET") as reopened:
        reopen.click()
    assert reopened.value.status == 200 and phone.url == link + "?lang=zh-CN"
    _approve_door(phone)
    assert phone.locator('[data-purpose="door_access"]').get_attribute("data-decision") == "approved"
    assert tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json["status"] != "pending"
    context.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_axe_finds_no_violation_on_any_guardian_page(
    live: str, tenant: Tenant, outbox: Any, phone: Any, app: Flask, guardian: GuardianKit, axe: Any, lang: str
) -> None:
    shown: dict[str, str] = {}
    q = f"?lang={lang}"
    _, qr = _request(tenant, guardian, delivery="qr")
    phone.goto(qr["approve_url"] + q)
    shown["decide"] = phone.content()
    phone.check('input[name="purpose"][value="door_access"]')
    phone.click('button[name="action"][value="approve"]')
    shown["otp error"] = phone.content()

    child2 = tenant.subject(age_years=8)
    sms = tenant.guardian_request(child2["id"], ["door_access"], delivery="sms", locale=lang).json
    assert sms["status"] == "pending"
    link = guardian.url_from(outbox()[-1])
    phone.goto(link + q)
    phone.context.clear_cookies()
    _approve_door(phone)
    shown["form left open too long"] = phone.content()
    phone.click("#reopen")
    _approve_door(phone)
    shown["receipt"] = phone.content()
    phone.goto(link + q)
    shown["used link"] = phone.content()
    phone.goto(guardian.url_from(outbox()[-1]) + q)
    shown["withdraw"] = phone.content()
    phone.locator('button[name="withdraw"]').first.click()
    shown["withdraw confirm"] = phone.content()

    with app.app_context():
        session = db.session()
        row = session.get(GuardianRequest, qr["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.commit()
    phone.goto(qr["approve_url"] + q)
    shown["expired link"] = phone.content()

    child3 = tenant.subject(age_years=6)
    tenant.guardian_request(child3["id"], ["door_access"], delivery="sms", locale=lang, phone="+8613912345678")
    phone.goto(guardian.url_from(outbox()[-1]) + q)
    phone.click('button[name="action"][value="decline"]')
    shown["declined receipt"] = phone.content()

    for name, html in shown.items():
        assert f'lang="{lang}"' in html, name
        found = axe(html)
        assert found == [], (name, found)
