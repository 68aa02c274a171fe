"""The SMS templates as mainland providers take them (Alibaba Cloud, Tencent Cloud): each variable once, no
link inside a variable, the code alone in the code's template, Chinese parameters whatever the request's
language, and texts short enough to be billed as few parts as possible. The full text ``console`` and
``twilio`` send is what a provider renders from the registered template and the parameters."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.domain.guardian.messaging import LINK_PATHS, TEMPLATES, compose, registered_template
from service.sms import TEMPLATE_PARAMETERS, TextMessage

README = Path(__file__).resolve().parent.parent / "README.md"
EXPIRES = datetime(2026, 11, 30, 20, 59, tzinfo=UTC)  # 2026-12-01 04:59 in Beijing
#: The README's example PUBLIC_URL.
PUBLIC_URL = "https://cg.example.cn"
LINK_KINDS = ("link", "reconsent", "withdrawal", "access")
#: A long-message part is 67 characters (a single message 70), the signature counted in.
PART, SINGLE = 67, 70


def message(kind: str, locale: str = "zh-CN", *, org: str = "阳光小学", public_url: str = PUBLIC_URL) -> TextMessage:
    return compose(
        kind,
        locale,
        org=org,
        public_url=public_url,
        token=secrets.token_urlsafe(16),
        expires_at=EXPIRES,
        code="042917",
    )


def variables(text: str) -> list[str]:
    return re.findall(r"\$\{(\w+)\}", text)


def test_each_kinds_template_takes_each_variable_once_the_code_alone_and_never_a_link() -> None:
    assert set(TEMPLATE_PARAMETERS) == set(TEMPLATES)
    assert TEMPLATE_PARAMETERS["code"] == ("code",)  # the signature names the sender
    for kind, names in TEMPLATE_PARAMETERS.items():
        assert len(set(names)) == len(names), kind
        # As registered: each variable exactly once, in the order Tencent Cloud numbers them ({1}, {2}...).
        aliyun = registered_template(kind, PUBLIC_URL, "aliyun")
        assert variables(aliyun) == list(names), (kind, aliyun)
        tencent = registered_template(kind, PUBLIC_URL, "tencent")
        assert re.findall(r"\{(\d)\}", tencent) == [str(n) for n in range(1, len(names) + 1)], (kind, tencent)
        assert "url" not in names, kind
    for kind in LINK_KINDS:
        assert TEMPLATE_PARAMETERS[kind][-1] == "token", kind
        # The link's fixed part is registered text (Tencent Cloud refuses links in variables).
        assert f"{PUBLIC_URL}{LINK_PATHS[kind]}${{token}}" in registered_template(kind, PUBLIC_URL, "aliyun")
        token = message(kind).params["token"]
        # Alibaba Cloud caps a variable at 35 characters; a token is 22, nothing of a URL in it.
        assert len(token) <= 35 and "/" not in token and ":" not in token, token


@pytest.mark.parametrize("kind", list(TEMPLATE_PARAMETERS))
def test_the_full_text_is_what_the_provider_renders_from_the_template(kind: str) -> None:
    sent = message(kind)
    rendered = registered_template(kind, PUBLIC_URL, "aliyun")
    for name, value in sent.params.items():
        rendered = rendered.replace(f"${{{name}}}", value)
    assert sent.body == "【阳光小学】" + rendered
    assert "确认" not in sent.body  # does not presume the answer


@pytest.mark.parametrize("kind", ["link", "reconsent", "access"])
def test_times_are_china_time_in_chinese_whatever_the_requests_language(kind: str) -> None:
    chinese = message(kind)
    assert chinese.params["when"] == "2026年12月1日 04:59"
    assert "请在2026年12月1日 04:59（北京时间）前打开" in chinese.body
    english = message(kind, "en")
    # A mainland template is Chinese: no English inside it, even for an English-speaking guardian.
    assert english.params == {**chinese.params, "token": english.params["token"]}
    assert "before 2026-12-01 04:59 (China time)" in english.body
    assert not re.search(r"[\u4e00-\u9fff]", english.body.replace("阳光小学", ""))


def test_texts_are_billed_as_few_parts_as_they_can() -> None:
    """The bound: three parts (201 characters, signature included) for every link message with a long name
    (16 characters) and a long PUBLIC_URL (40 characters); one part (70) for the code with a 10-character name.

    Not 140: no bill changes there (two parts end at 134, three at 201), and the link text alone is 138
    with a 4-character name. The former link text took four parts even with a short name.
    """
    long_org, long_url = "北京市朝阳区第一实验小学附属幼儿", "https://consent-gate.school-districts.cn"
    assert (len(long_org), len(long_url)) == (16, 40)
    for kind in LINK_KINDS:
        body = message(kind, org=long_org, public_url=long_url).body
        assert len(body) <= 3 * PART, (kind, len(body))
    assert len(message("code", org="北京市朝阳区实验小学").body) <= SINGLE
    assert len(message("link").body) <= 2 * PART + 10  # a short name: 144


def test_the_readme_shows_the_registered_templates() -> None:
    readme = README.read_text(encoding="utf-8")
    for kind in TEMPLATE_PARAMETERS:
        assert registered_template(kind, PUBLIC_URL, "aliyun") in readme, kind
        assert registered_template(kind, PUBLIC_URL, "tencent") in readme, kind
