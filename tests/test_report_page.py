"""The compliance officers' HTML report, rendered in headless Chromium: its charts and their tables, both
languages, a phone's width, and the signed link from ``consent-gate report --link`` opened without a key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.support import Tenant

SCREENSHOTS = Path(__file__).parent / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture()
def phone(browser: Any) -> Iterator[Any]:
    """A 375-pixel-wide phone, sending no header of its own."""
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    yield context.new_page()
    context.close()


def _activity(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    tenant.verify("door_access", subject_id=person["id"])
    tenant.verify("door_access", token="nonsense")
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    tenant.post("/v1/devices", {"name": "Gate", "location_type": "school"})
    tenant.incident(
        ["door_access"],
        severity="minor",
        description="A terminal's template store was copied by an intruder; "
        "every_template_on_the_terminal_was_wiped_and_the_terminal_replaced_the_same_afternoon.",
    )


def _platform_fonts(page: Any, selector: str) -> dict[str, int]:
    """The fonts Chromium actually drew the element's text with (family → glyphs), through DevTools."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {font["familyName"]: font["glyphCount"] for font in fonts}


def _fits_the_phone(page: Any) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], width
    assert width[1] == 375
    base = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert base >= 18
    # A table wider than the phone scrolls inside its own box, not the page.
    for box in page.locator("div.scroll").all():
        assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"


def _charts_have_tables(page: Any) -> None:
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    for index in range(charts.count()):
        chart = charts.nth(index)
        assert chart.get_attribute("role") == "img"
        title, desc = (chart.get_attribute("aria-labelledby") or "").split()
        assert page.locator(f"#{title}").text_content() and page.locator(f"#{desc}").text_content()
        # Series differ by pattern as well as colour: every bar is filled with a pattern.
        for fill in chart.locator("rect.bar").evaluate_all("bars => bars.map(b => b.getAttribute('fill'))"):
            assert fill.startswith("url(#")
        # The same numbers follow as a table with a caption, and a text legend names every series.
        figure = chart.locator("xpath=ancestor::figure")
        assert figure.locator(".legend li").count() >= 1
        table = figure.locator("xpath=following-sibling::div[1]//table")
        assert table.locator("caption").inner_text()


def test_report_page_renders_with_charts_and_their_tables(live: str, tenant: Tenant, browser: Any) -> None:
    _activity(tenant)
    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {tenant.keys['admin']}"})
    page = context.new_page()
    response = page.goto(f"{live}/v1/reports/compliance.html?lang=en")
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Compliance report: Sunrise School"
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator('svg.chart rect.bar[data-series="granted"]').count() >= 1
    assert page.locator('svg.chart rect.bar[data-series="revoked"]').count() >= 1
    assert page.locator('svg.chart rect.bar[data-series="allow"]').count() == 1
    assert page.locator('svg.chart rect.bar[data-series="deny"]').count() == 1
    assert page.locator("svg.chart").first.bounding_box()["width"] > 300  # type: ignore[index]
    _charts_have_tables(page)
    # The tables give the chart's numbers: today's row counts the grant and the withdrawal.
    totals = page.locator("#consents-per-day tfoot td").all_inner_texts()
    assert totals == ["1", "1", "0", "0", "0", "2"]
    verifications = page.locator("#verifications tbody tr")
    assert verifications.count() == 2
    denied = page.locator('#verifications tr[data-decision="deny"] td').nth(1)
    assert denied.inner_text() == "invalid token\ninvalid_token"
    assert page.locator("#people").inner_text() == "0"
    assert page.locator('#devices tr[data-location-type="school"]').inner_text() == "school\t1"
    unauthorized = context.request.get(f"{live}/v1/reports/compliance.html", headers={"Authorization": "Bearer no"})
    assert unauthorized.status == 401
    context.close()


def test_report_link_opens_on_a_phone_in_both_languages(live: str, tenant: Tenant, runner: Any, phone: Any) -> None:
    _activity(tenant)
    issued = runner.invoke(args=["report", "--link", "--hours", "1", "--org", tenant.org_id])
    assert issued.exit_code == 0, issued.output
    url = issued.stdout.strip()
    assert url.startswith(f"{live}/report/")

    response = phone.goto(url)
    assert response is not None and response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    assert phone.locator("h1").inner_text() == "合规报告：Sunrise School"
    assert phone.locator("#filing-status").inner_text() == "无需备案"
    assert phone.locator('#devices tr[data-location-type="school"] td').first.inner_text() == "学校"
    assert "同意" in phone.locator("#consents-chart + figcaption, figcaption").first.inner_text()
    _charts_have_tables(phone)
    _fits_the_phone(phone)
    # The Chinese text is drawn with a Chinese font, not as empty boxes.
    fonts = _platform_fonts(phone, "h1")
    assert any("WenQuanYi" in family or "CJK" in family for family in fonts), fonts
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(SCREENSHOTS / "report-page-zh.png"), full_page=True)

    phone.click("a[hreflang=en]")  # the switch keeps the link
    assert phone.locator("html").get_attribute("lang") == "en"
    assert phone.locator("h1").inner_text() == "Compliance report: Sunrise School"
    assert phone.locator("#filing-status").inner_text() == "not required"
    assert "Consent events per day" in phone.locator("figcaption").first.inner_text()
    _charts_have_tables(phone)
    _fits_the_phone(phone)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        phone.screenshot(path=str(SCREENSHOTS / "report-page-en.png"), full_page=True)

    # Without the link's token the page is not there; with a broken one, nothing is said about why.
    broken = phone.goto(url[:-3] + ("abc" if not url.endswith("abc") else "xyz"))
    assert broken is not None and broken.status == 404
    assert "Sunrise" not in phone.locator("body").inner_text()
