"""The person's own page (R16) driven in a real headless Chromium (Debian's /usr/bin/chromium, through Playwright)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

SCREENSHOTS = Path(__file__).parent / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture()
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized page without JavaScript, in Chinese, that accepts downloads."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", java_script_enabled=False, accept_downloads=True
    )
    page = context.new_page()
    yield page
    context.close()


def _adult(tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any], str]:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    link = tenant.post(f"/v1/subjects/{person['id']}/access-link", scope="consents")
    assert link.status_code == 201, link.json
    return person, consent, link.json["url"]


def test_pipl44_r3_person_sees_consents_and_withdraws_with_confirmation(live: str, tenant: Tenant, phone: Any) -> None:
    person, consent, url = _adult(tenant)
    phone.goto(url)
    card = phone.locator(f'section[data-consent="{consent["id"]}"]')
    assert card.get_attribute("data-status") == "active"
    text = phone.locator("main").inner_text()
    for expected in ("校门通行", "刷学生卡同样可以开启校门", "有效", "个人信息处理者", "privacy@sunrise.example"):
        assert expected in text, expected
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(SCREENSHOTS / "people-page-zh.png"), full_page=True)
    phone.click(f'button[name="withdraw"][value="{consent["id"]}"]')
    # The confirmation step: nothing is withdrawn yet.
    phone.locator('button[name="confirm"]').wait_for(state="visible")  # the confirmation page has loaded
    assert tenant.verify("door_access", subject_id=person["id"]).json["decision"] == "allow"
    phone.click('button[name="confirm"]')
    phone.locator(f'section[data-consent="{consent["id"]}"][data-status="revoked"]').wait_for()
    assert "已撤回" in phone.locator("#flash").inner_text()
    assert phone.locator('button[name="withdraw"]').count() == 0
    denied = tenant.verify("door_access", subject_id=person["id"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "revoked")


def test_pipl45_person_downloads_a_json_copy(live: str, tenant: Tenant, phone: Any, tmp_path: Path) -> None:
    person, consent, url = _adult(tenant)
    phone.goto(url)
    with phone.expect_download() as waiting:
        phone.click("a[download]")
    download = waiting.value
    assert download.suggested_filename.startswith("personal-data-") and download.suggested_filename.endswith(".json")
    saved = tmp_path / "copy.json"
    download.save_as(str(saved))
    copy = json.loads(saved.read_text(encoding="utf-8"))
    assert copy["subject"]["id"] == person["id"]
    [held] = copy["consents"]
    assert held["id"] == consent["id"] and held["notice"]["version"] == 1 and len(held["notice"]["digest"]) == 64


def test_pipl50_person_files_a_request_and_the_organization_closes_it(
    live: str, tenant: Tenant, other_tenant: Tenant, phone: Any
) -> None:
    person, _, url = _adult(tenant)
    phone.goto(url + "?lang=en")
    assert "Your personal information and your rights" in phone.locator("h1").inner_text()
    phone.select_option('select[name="kind"]', "correction")
    phone.fill('textarea[name="details"]', "My staff number is wrong: it should be 17.")
    phone.click('button[name="action"][value="request"]')
    assert "Submitted" in phone.locator("#flash").inner_text()
    [item] = tenant.get("/v1/rights-requests").json["items"]
    assert (item["subject_id"], item["kind"], item["status"]) == (person["id"], "correction", "open")
    assert item["details"] == "My staff number is wrong: it should be 17."
    assert other_tenant.get("/v1/rights-requests").json["items"] == []
    assert other_tenant.post(f"/v1/rights-requests/{item['id']}/close", {"outcome": "x"}).status_code == 404
    closed = tenant.post(f"/v1/rights-requests/{item['id']}/close", {"outcome": "Corrected to 17."})
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    phone.reload()
    filed = phone.locator(f'[data-request="{item["id"]}"]')
    assert filed.get_attribute("data-status") == "closed" and "Corrected to 17." in filed.inner_text()


def test_pipl31_guardian_opens_the_childs_page_from_the_sms(
    live: str, tenant: Tenant, outbox: Any, phone: Any, guardian: GuardianKit
) -> None:
    child = guardian.setup_child(tenant)
    assert tenant.guardian_request(child["id"], ["door_access"]).status_code == 202
    answer = tenant.post(f"/v1/subjects/{child['id']}/access-link", scope="consents").json
    assert "url" not in answer
    body = outbox()[-1]["body"]
    url = body[body.index("http") :].split()[0]
    assert "/p/" in url
    phone.goto(url)
    assert "孩子" in phone.locator("main").inner_text()
    assert phone.locator('section[data-status="pending_guardian"]').count() == 1
