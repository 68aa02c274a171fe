"""``/docs`` loads nothing from another host: Swagger UI is served by the service, under a policy of self only."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask.testing import FlaskClient

BASE = "http://localhost/docs"


class References(HTMLParser):
    """Every URL a page names (``src``, ``href``, and any other attribute that holds one), and its inline scripts."""

    URL_ATTRIBUTES = frozenset({"src", "href", "srcset", "action", "data", "poster", "formaction", "background"})

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls.extend(value for name, value in attrs if name in self.URL_ATTRIBUTES and value)
        self._in_script_without_src = tag == "script" and not found.get("src")
        if tag == "style" or any(name.startswith("on") for name, _ in attrs):
            self.inline_scripts += 1

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


def _references(client: FlaskClient) -> tuple[Any, References]:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    parsed = References()
    parsed.feed(page.get_data(as_text=True))
    return page, parsed


def test_docs_load_nothing_from_another_host(client: FlaskClient) -> None:
    page, parsed = _references(client)
    assert len(parsed.urls) >= 3  # the stylesheet, Swagger UI, the script that starts it
    for url in parsed.urls:
        absolute = urljoin(BASE, url)
        assert urlsplit(absolute)[:2] == ("http", "localhost"), url
        asset = client.get(urlsplit(absolute).path)
        assert asset.status_code == 200, url
        assert asset.data, url
        asset.close()
    assert parsed.inline_scripts == 0
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["style-src"] == policy["connect-src"] == "'self'"
    assert policy["img-src"] == "'self' data:" and policy["frame-ancestors"] == "'none'"
    assert (
        "http" not in page.headers["Content-Security-Policy"]
        and "unsafe" not in page.headers["Content-Security-Policy"]
    )


def test_the_spec_the_docs_show_is_the_one_served(client: FlaskClient) -> None:
    page = client.get("/docs").get_data(as_text=True)
    assert 'data-spec-url="/openapi.json"' in page
    assert client.get("/openapi.json").json["info"]["title"] == "Consent Gate"
    # The assets do not name another host either (the public validator's badge is switched off).
    starter = client.get("/docs/static/docs.js")
    assert b"validatorUrl: null" in starter.data and b"http" not in starter.data
    starter.close()


@pytest.mark.browser
def test_docs_render_in_a_browser_from_this_origin_alone(live: str, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(live + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)  # waits for Swagger UI, no timing claim
        paths = page.locator(".opblock-summary-path").all_inner_texts()
    finally:
        context.close()
    assert any("/v1/verifications" in path for path in paths)
    origin = urlsplit(live)[:2]
    assert requested and all(urlsplit(url)[:2] == origin or url.startswith("data:") for url in requested), requested
    assert not [problem for problem in problems if "Content Security Policy" in problem or "Refused" in problem]
