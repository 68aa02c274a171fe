"""The compliance officers' HTML report, rendered in headless Chromium, with its charts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.support import Tenant


pytestmark = pytest.mark.browser


def test_report_page_renders_with_charts(live: str, tenant: Tenant, browser: Any) -> None:
    tenant.purpose("door_access")
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    tenant.verify("door_access", subject_id=person["id"])
    tenant.verify("door_access", token="nonsense")
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    tenant.post("/v1/devices", {"name": "Gate", "location_type": "school"})

    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {tenant.keys['admin']}"})
    page = context.new_page()
    response = page.goto(f"{live}/v1/reports/compliance.html")
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Compliance report: Sunrise School"
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    assert page.locator('svg.chart rect.bar[data-series="granted"]').count() >= 1
    assert page.locator('svg.chart rect.bar[data-series="revoked"]').count() >= 1
    assert page.locator('svg.chart rect.bar[data-series="allow"]').count() == 1
    assert page.locator('svg.chart rect.bar[data-series="deny"]').count() == 1
    assert charts.first.bounding_box()["width"] > 300  # type: ignore[index]
    assert page.locator("#people").inner_text() == "0"
    assert "school" in page.locator("main").inner_text()
    unauthorized = context.request.get(f"{live}/v1/reports/compliance.html", headers={"Authorization": "Bearer no"})
    assert unauthorized.status == 401
    context.close()
