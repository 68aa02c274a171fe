"""Alibaba Cloud and Tencent Cloud SMS: their official SDKs against local servers that speak their APIs.

Mainland providers send registered templates, not free text: each test checks the template of the
message's kind and its parameters as the provider receives them, and how its answers map to the service's
error codes (``sms_invalid_number``, ``sms_rejected``, ``sms_provider_unavailable``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from service.config import ConfigError, finalize, production_problems, sms_template_setting
from service.sms import TEMPLATE_PARAMETERS, AliyunSms, SmsError, TencentSms, TextMessage, build_provider

if TYPE_CHECKING:
    from tests.support import FakeAliyun, FakeTencent, GuardianKit, Tenant

PHONE = "+8613812345678"
TOKEN = "Vq3xk9Zb2LmPw0aYt7Rc1Q"  # 22 characters: 128 bits, as new links carry
LINK = TextMessage(
    body=f"【某小学】某小学请您作为孩子的监护人…请在2030年1月2日 10:00（北京时间）前打开：https://cg.example.cn/g/{TOKEN}",
    kind="link",
    params={"org": "某小学", "when": "2030年1月2日 10:00", "token": TOKEN},
)
ALIYUN_TEMPLATES = {kind: f"SMS_{100 + n}" for n, kind in enumerate(TEMPLATE_PARAMETERS)}
TENCENT_TEMPLATES = {kind: str(2000000 + n) for n, kind in enumerate(TEMPLATE_PARAMETERS)}


def is_aliyun(fake: FakeAliyun | FakeTencent) -> bool:
    """Alibaba's fake (the ``aliyun`` fixture) signs with an access key; Tencent's with a secret id."""
    return hasattr(fake, "access_key_id")


def aliyun_sms(fake: FakeAliyun, attempts: int = 3) -> AliyunSms:
    return AliyunSms(
        access_key_id=fake.access_key_id,
        access_key_secret=fake.access_key_secret,
        sign_name="同意网关",
        templates=ALIYUN_TEMPLATES,
        base_url=fake.base_url,
        attempts=attempts,
        backoff=0.0,
    )


def tencent_sms(fake: FakeTencent, attempts: int = 3) -> TencentSms:
    return TencentSms(
        secret_id=fake.secret_id,
        secret_key=fake.secret_key,
        sdk_app_id="1400000001",
        sign_name="同意网关",
        templates=TENCENT_TEMPLATES,
        base_url=fake.base_url,
        attempts=attempts,
        backoff=0.0,
    )


# --- Alibaba Cloud --------------------------------------------------------------------------------------


def test_aliyun_sends_the_kinds_template_with_its_named_parameters(aliyun: FakeAliyun) -> None:
    assert aliyun_sms(aliyun).send(PHONE, LINK).endswith("^0")  # the BizId
    [received] = aliyun.received
    assert (received.params["Action"], received.params["Version"]) == ("SendSms", "2017-05-25")
    assert received.headers["authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={aliyun.access_key_id},")
    assert received.params["PhoneNumbers"] == "13812345678"  # a mainland number: its 11 digits
    assert received.params["SignName"] == "同意网关"
    assert received.params["TemplateCode"] == ALIYUN_TEMPLATES["link"]
    assert json.loads(received.params["TemplateParam"]) == dict(LINK.params)


def test_aliyun_code_template_takes_the_code_alone(aliyun: FakeAliyun) -> None:
    code = TextMessage(body="【某小学】验证码123456，…", kind="code", params={"code": "123456"})
    aliyun_sms(aliyun).send(PHONE, code)
    [received] = aliyun.received
    assert received.params["TemplateCode"] == ALIYUN_TEMPLATES["code"]
    assert json.loads(received.params["TemplateParam"]) == {"code": "123456"}


def test_a_message_queued_before_the_upgrade_sends_its_links_token(aliyun: FakeAliyun, tencent: FakeTencent) -> None:
    """An outbox row written by the former version carries ``url``: its template now takes the token."""
    queued = TextMessage.from_dict(
        {
            "body": "…",
            "kind": "withdrawal",
            "params": {"org": "某小学", "url": f"https://cg.example.cn/g/{TOKEN}"},
        }
    )
    aliyun_sms(aliyun).send(PHONE, queued)
    assert json.loads(aliyun.received[-1].params["TemplateParam"]) == {"org": "某小学", "token": TOKEN}
    tencent_sms(tencent).send(PHONE, queued)
    assert tencent.received[-1].params["TemplateParamSet"] == ["某小学", TOKEN]


def test_aliyun_invalid_number_is_reported_and_not_retried(aliyun: FakeAliyun) -> None:
    aliyun.script = [(200, "isv.MOBILE_NUMBER_ILLEGAL")]
    with pytest.raises(SmsError) as raised:
        aliyun_sms(aliyun).send(PHONE, LINK)
    assert raised.value.code == "sms_invalid_number" and not raised.value.retryable
    assert len(aliyun.received) == 1


@pytest.mark.parametrize("code", ["isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.AMOUNT_NOT_ENOUGH"])
def test_aliyun_template_sign_and_account_errors_are_rejected(aliyun: FakeAliyun, code: str) -> None:
    aliyun.script = [(200, code)]
    with pytest.raises(SmsError) as raised:
        aliyun_sms(aliyun).send(PHONE, LINK)
    assert raised.value.code == "sms_rejected" and not raised.value.retryable
    assert len(aliyun.received) == 1


def test_aliyun_throttling_then_success(aliyun: FakeAliyun) -> None:
    aliyun.script = [(400, "Throttling.User"), (200, "isv.BUSINESS_LIMIT_CONTROL")]
    assert aliyun_sms(aliyun).send(PHONE, LINK)
    assert len(aliyun.received) == 3


def test_aliyun_persistent_500_gives_up_as_unavailable(aliyun: FakeAliyun) -> None:
    aliyun.script = [(500, "InternalError")] * 3
    with pytest.raises(SmsError) as raised:
        aliyun_sms(aliyun).send(PHONE, LINK)
    assert raised.value.code == "sms_provider_unavailable" and raised.value.retryable
    assert len(aliyun.received) == 3


def test_aliyun_unreachable_is_unavailable() -> None:
    sms = AliyunSms(
        access_key_id="k",
        access_key_secret="s",
        sign_name="同意网关",
        templates=ALIYUN_TEMPLATES,
        base_url="http://127.0.0.1:9",
        attempts=2,
        backoff=0.0,
    )
    with pytest.raises(SmsError) as raised:
        sms.send(PHONE, LINK)
    assert raised.value.code == "sms_provider_unavailable"


def test_a_message_without_template_parameters_is_rejected_before_sending(aliyun: FakeAliyun) -> None:
    with pytest.raises(SmsError) as raised:
        aliyun_sms(aliyun).send(PHONE, TextMessage(body="free text only"))
    assert raised.value.code == "sms_rejected"
    assert aliyun.received == []


# --- Tencent Cloud --------------------------------------------------------------------------------------


def test_tencent_sends_the_kinds_template_with_its_parameters_in_order(tencent: FakeTencent) -> None:
    assert tencent_sms(tencent).send(PHONE, LINK).startswith("5000:")  # the SerialNo
    [received] = tencent.received
    assert (received.headers["x-tc-action"], received.headers["x-tc-version"]) == ("SendSms", "2021-01-11")
    assert received.headers["x-tc-region"] == "ap-guangzhou"
    assert received.headers["authorization"].startswith(f"TC3-HMAC-SHA256 Credential={tencent.secret_id}/")
    assert received.params == {
        "PhoneNumberSet": [PHONE],  # E.164
        "SmsSdkAppId": "1400000001",
        "SignName": "同意网关",
        "TemplateId": TENCENT_TEMPLATES["link"],
        "TemplateParamSet": ["某小学", "2030年1月2日 10:00", TOKEN],
    }


def test_tencent_invalid_number_is_reported_and_not_retried(tencent: FakeTencent) -> None:
    tencent.script = [(200, "InvalidParameterValue.IncorrectPhoneNumber")]
    with pytest.raises(SmsError) as raised:
        tencent_sms(tencent).send(PHONE, LINK)
    assert raised.value.code == "sms_invalid_number" and not raised.value.retryable
    assert len(tencent.received) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, "FailedOperation.TemplateIncorrectOrUnapproved"),
        (200, "FailedOperation.SignatureIncorrectOrUnapproved"),
        (400, "FailedOperation.InsufficientBalanceInSmsPackage"),
        (400, "AuthFailure.SignatureFailure"),
    ],
)
def test_tencent_template_sign_and_account_errors_are_rejected(tencent: FakeTencent, status: int, code: str) -> None:
    tencent.script = [(status, code)]
    with pytest.raises(SmsError) as raised:
        tencent_sms(tencent).send(PHONE, LINK)
    assert raised.value.code == "sms_rejected" and not raised.value.retryable
    assert len(tencent.received) == 1


def test_tencent_throttling_then_success(tencent: FakeTencent) -> None:
    tencent.script = [(400, "LimitExceeded.PhoneNumberThirtySecondLimit"), (400, "RequestLimitExceeded")]
    assert tencent_sms(tencent).send(PHONE, LINK).startswith("5000:")
    assert len(tencent.received) == 3


def test_tencent_persistent_500_gives_up_as_unavailable(tencent: FakeTencent) -> None:
    tencent.script = [(500, "")] * 3
    with pytest.raises(SmsError) as raised:
        tencent_sms(tencent).send(PHONE, LINK)
    assert raised.value.code == "sms_provider_unavailable" and raised.value.retryable
    assert len(tencent.received) == 3


def test_tencent_unreachable_is_unavailable() -> None:
    sms = TencentSms(
        secret_id="i",
        secret_key="k",
        sdk_app_id="1",
        sign_name="同意网关",
        templates=TENCENT_TEMPLATES,
        base_url="http://127.0.0.1:9",
        attempts=2,
        backoff=0.0,
    )
    with pytest.raises(SmsError) as raised:
        sms.send(PHONE, LINK)
    assert raised.value.code == "sms_provider_unavailable"


# --- Neither logs a number, a link or a code ------------------------------------------------------------


def test_no_number_link_or_code_is_logged(
    aliyun: FakeAliyun, tencent: FakeTencent, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEBUG", "sdk")  # what makes darabonba log every request's query
    caplog.set_level(logging.DEBUG)
    code = TextMessage(body="【某小学】验证码654321，…", kind="code", params={"code": "654321"})
    aliyun.script = [(400, "Throttling.User")]
    tencent.script = [(400, "LimitExceeded.PhoneNumberThirtySecondLimit")]
    aliyun_sms(aliyun).send(PHONE, LINK)
    aliyun.script = [(200, "isv.MOBILE_NUMBER_ILLEGAL")]
    with pytest.raises(SmsError):
        aliyun_sms(aliyun).send(PHONE, code)
    tencent_sms(tencent).send(PHONE, LINK)
    tencent_sms(tencent).send(PHONE, code)
    logged = caplog.text
    assert "+86 ***********" in logged
    for secret in ("13812345678", "654321", TOKEN):
        assert secret not in logged


# --- Configuration --------------------------------------------------------------------------------------


def test_production_names_each_missing_setting_of_the_provider() -> None:
    for provider, needed in (
        ("aliyun", ["ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET", "ALIYUN_SMS_SIGN_NAME"]),
        ("tencent", ["TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID", "TENCENT_SMS_SIGN_NAME"]),
    ):
        problems = "\n".join(production_problems({"SMS_PROVIDER": provider}))
        for name in [*needed, *(sms_template_setting(provider, kind) for kind in TEMPLATE_PARAMETERS)]:
            assert f"CONSENT_GATE_{name} is not set (SMS_PROVIDER is {provider})" in problems
        assert "console" not in problems


def test_production_accepts_a_complete_provider_and_refuses_a_plain_http_base_url() -> None:
    settings: dict[str, Any] = {
        "SMS_PROVIDER": "tencent",
        "TENCENT_SECRET_ID": "i",
        "TENCENT_SECRET_KEY": "k",
        "TENCENT_SMS_SDK_APP_ID": "1400000001",
        "TENCENT_SMS_SIGN_NAME": "同意网关",
        **{sms_template_setting("tencent", kind): "1" for kind in TEMPLATE_PARAMETERS},
    }
    assert not [p for p in production_problems(settings) if "TENCENT" in p or "SMS_PROVIDER" in p]
    settings["TENCENT_SMS_BASE_URL"] = "http://proxy.internal"
    assert any("TENCENT_SMS_BASE_URL must be an https address" in p for p in production_problems(settings))


def test_production_refuses_a_plain_http_twilio_base_url_too() -> None:
    """Twilio's API calls carry the account's token: like the mainland providers', https only in production."""
    settings: dict[str, Any] = {"SMS_PROVIDER": "twilio", "TWILIO_BASE_URL": "https://twilio-proxy.example"}
    assert not [p for p in production_problems(settings) if "TWILIO_BASE_URL" in p]
    for url in ("http://twilio-proxy.internal", "ftp://twilio-proxy.example", "twilio-proxy.example"):
        settings["TWILIO_BASE_URL"] = url
        problems = production_problems(settings)
        assert any("TWILIO_BASE_URL must be an https address in production" in p for p in problems), url


def test_an_unknown_provider_or_a_bad_base_url_is_refused(app_config: dict[str, Any], tmp_path: Any) -> None:
    from service.config import DEFAULTS

    with pytest.raises(ConfigError, match="console, twilio, aliyun, tencent"):
        finalize({**DEFAULTS, **app_config, "SMS_PROVIDER": "sms.example"}, str(tmp_path))
    with pytest.raises(ConfigError, match="ALIYUN_SMS_BASE_URL must be an http"):
        finalize({**DEFAULTS, **app_config, "ALIYUN_SMS_BASE_URL": "dysmsapi.aliyuncs.com"}, str(tmp_path))
    with pytest.raises(ConfigError, match="TWILIO_BASE_URL must be an http"):
        finalize({**DEFAULTS, **app_config, "TWILIO_BASE_URL": "api.twilio.com"}, str(tmp_path))


def test_building_a_provider_without_its_settings_names_them() -> None:
    with pytest.raises(RuntimeError, match="CONSENT_GATE_ALIYUN_SMS_TEMPLATE_ACCESS"):
        build_provider({"SMS_PROVIDER": "aliyun", "ALIYUN_ACCESS_KEY_ID": "k"})


# --- The guardian flow through each provider ------------------------------------------------------------


def configure(app_config: dict[str, Any], provider: str, fake: FakeAliyun | FakeTencent) -> None:
    app_config["SMS_PROVIDER"] = provider
    if is_aliyun(fake):
        app_config.update(
            ALIYUN_ACCESS_KEY_ID=fake.access_key_id,
            ALIYUN_ACCESS_KEY_SECRET=fake.access_key_secret,
            ALIYUN_SMS_SIGN_NAME="同意网关",
            ALIYUN_SMS_BASE_URL=fake.base_url,
            **{sms_template_setting("aliyun", kind): code for kind, code in ALIYUN_TEMPLATES.items()},
        )
    else:
        app_config.update(
            TENCENT_SECRET_ID=fake.secret_id,
            TENCENT_SECRET_KEY=fake.secret_key,
            TENCENT_SMS_SDK_APP_ID="1400000001",
            TENCENT_SMS_SIGN_NAME="同意网关",
            TENCENT_SMS_BASE_URL=fake.base_url,
            **{sms_template_setting("tencent", kind): code for kind, code in TENCENT_TEMPLATES.items()},
        )


def last_template(fake: FakeAliyun | FakeTencent) -> tuple[str, dict[str, str]]:
    """The kind whose template the fake last received, and the template's parameters by name."""
    params = fake.received[-1].params
    if is_aliyun(fake):
        kind = next(kind for kind, code in ALIYUN_TEMPLATES.items() if code == params["TemplateCode"])
        return kind, json.loads(params["TemplateParam"])
    kind = next(kind for kind, template in TENCENT_TEMPLATES.items() if template == params["TemplateId"])
    return kind, dict(zip(TEMPLATE_PARAMETERS[kind], params["TemplateParamSet"], strict=True))


@pytest.fixture(params=["aliyun", "tencent"])
def domestic(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> FakeAliyun | FakeTencent:
    """The app configured for one mainland provider, talking to its fake (the conftest fixture of that name)."""
    served: FakeAliyun | FakeTencent = request.getfixturevalue(request.param)
    configure(app_config, request.param, served)
    return served


def test_guardian_link_goes_as_the_link_template_and_opens(
    domestic: FakeAliyun | FakeTencent, tenant: Tenant, guardian: GuardianKit, drain: Callable[[], int]
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    assert created["delivery_status"] == "queued" and "approve_url" not in created
    assert domestic.received == []  # the request never waits on the provider: the dispatcher sends
    drain()
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["delivery_status"] == "sent"
    kind, values = last_template(domestic)
    assert kind == "link" and set(values) == {"org", "when", "token"}
    assert values["org"] == "Sunrise School"
    # The token alone: the registered text carries http://consent-gate.test/g/ before it.
    assert len(values["token"]) == 22 and "/" not in values["token"]
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", values["when"]), values["when"]
    page = guardian.browser(f"http://consent-gate.test/g/{values['token']}").open()
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)


@pytest.mark.committed
def test_code_and_withdrawal_link_go_as_their_templates(
    domestic: FakeAliyun | FakeTencent, tenant: Tenant, guardian: GuardianKit, drain: Callable[[], int]
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"], delivery="qr").json
    parent = guardian.browser(created["approve_url"])
    assert parent.submit(action="send_code", purpose="door_access").status_code == 200
    drain()
    kind, values = last_template(domestic)
    assert kind == "code" and set(values) == {"code"}
    assert values["code"].isdigit() and len(values["code"]) == 6
    parent.submit(action="approve", attest_guardian="yes", purpose="door_access", otp=values["code"])
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "approved"
    drain()
    kind, values = last_template(domestic)
    assert kind == "withdrawal" and set(values) == {"org", "token"}
    assert guardian.browser(f"/g/{values['token']}").open().status_code == 200


def test_invalid_number_at_the_provider_is_visible_and_nothing_is_lost(
    domestic: FakeAliyun | FakeTencent, tenant: Tenant, guardian: GuardianKit, drain: Callable[[], int]
) -> None:
    aliyun = is_aliyun(domestic)
    domestic.script = [(200, "isv.MOBILE_NUMBER_ILLEGAL" if aliyun else "InvalidParameterValue.IncorrectPhoneNumber")]
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    drain()
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "pending"
    assert (polled["delivery_status"], polled["delivery_error"]) == ("failed", "sms_invalid_number")
    assert len(domestic.received) == 1  # a wrong number is not retried


def test_a_childs_access_link_goes_as_the_access_template_and_opens(
    domestic: FakeAliyun | FakeTencent, tenant: Tenant, guardian: GuardianKit, drain: Callable[[], int]
) -> None:
    child = guardian.setup_child(tenant)
    tenant.guardian_request(child["id"], ["door_access"])
    answer = tenant.post(f"/v1/subjects/{child['id']}/access-link", scope="consents")
    assert answer.status_code in (200, 201) and answer.json["delivery_status"] == "queued", answer.json
    drain()
    kind, values = last_template(domestic)
    assert kind == "access" and set(values) == {"org", "when", "token"}
    assert len(values["token"]) == 22
    assert guardian.browser(f"/p/{values['token']}").open().status_code == 200
