"""The official twilio client against a local server that speaks Twilio's Messages API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from service.sms import SmsError, TwilioSms

if TYPE_CHECKING:
    from tests.support import FakeTwilio, GuardianKit, Tenant


def provider(fake: FakeTwilio, attempts: int = 3) -> TwilioSms:
    return TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_number="+15005550006",
        base_url=fake.base_url,
        attempts=attempts,
        backoff=0.0,
    )


def test_sends_the_form_fields_with_basic_auth(twilio: FakeTwilio) -> None:
    message_id = provider(twilio).send("+8613812345678", "链接 http://x/g/abc")
    assert message_id.startswith("SM")
    [received] = twilio.received
    assert received.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert (received.username, received.password) == (twilio.account_sid, twilio.auth_token)
    assert received.form == {"To": "+8613812345678", "From": "+15005550006", "Body": "链接 http://x/g/abc"}


def test_400_invalid_number_is_reported_and_not_retried(twilio: FakeTwilio) -> None:
    twilio.script = [(400, 21211)]
    with pytest.raises(SmsError) as raised:
        provider(twilio).send("+8613812345678", "x")
    assert raised.value.code == "sms_invalid_number" and not raised.value.retryable
    assert len(twilio.received) == 1


def test_other_4xx_is_rejected(twilio: FakeTwilio) -> None:
    twilio.script = [(403, 21610)]
    with pytest.raises(SmsError) as raised:
        provider(twilio).send("+8613812345678", "x")
    assert raised.value.code == "sms_rejected"


def test_429_and_500_are_retried_then_succeed(twilio: FakeTwilio) -> None:
    twilio.script = [(429, 20429), (500, None)]
    assert provider(twilio).send("+8613812345678", "x").startswith("SM")
    assert len(twilio.received) == 3


def test_persistent_5xx_gives_up_as_unavailable(twilio: FakeTwilio) -> None:
    twilio.script = [(503, None)] * 3
    with pytest.raises(SmsError) as raised:
        provider(twilio).send("+8613812345678", "x")
    assert raised.value.code == "sms_provider_unavailable" and raised.value.retryable
    assert len(twilio.received) == 3


def test_unreachable_provider_is_unavailable() -> None:
    sms = TwilioSms(
        account_sid="AC" + "0" * 32,
        auth_token="t",
        from_number="+15005550006",
        base_url="http://127.0.0.1:9",
        attempts=2,
        backoff=0.0,
    )
    with pytest.raises(SmsError) as raised:
        sms.send("+8613812345678", "x")
    assert raised.value.code == "sms_provider_unavailable"


@pytest.fixture()
def twilio_app_config(app_config: dict[str, Any], twilio: FakeTwilio) -> dict[str, Any]:
    app_config.update(
        SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=twilio.account_sid,
        TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_FROM="+15005550006",
        TWILIO_BASE_URL=twilio.base_url,
    )
    return app_config


def test_guardian_request_through_twilio(
    twilio_app_config: dict[str, Any], twilio: FakeTwilio, tenant: Tenant, guardian: GuardianKit, drain: Any
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    assert created["delivery_status"] == "queued" and twilio.received == []  # the request did not wait
    drain()
    [received] = twilio.received
    assert received.form["To"] == "+8613812345678"
    assert "approve_url" not in created and "http://consent-gate.test/g/" in received.form["Body"]


def test_invalid_number_at_twilio_is_visible_and_nothing_is_lost(
    twilio_app_config: dict[str, Any], twilio: FakeTwilio, tenant: Tenant, guardian: GuardianKit, drain: Any
) -> None:
    twilio.script = [(400, 21211)]
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    assert created["status"] == "pending"
    drain()
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert (polled["delivery_status"], polled["delivery_error"]) == ("failed", "sms_invalid_number")
    assert len(twilio.received) == 1  # a permanent refusal is not retried
