"""The SMS of the guardian flow: the decision link, the one-time code, the withdrawal link.

Call these only after committing: they talk to the provider with no transaction open, then record the
attempt (the caller commits again).
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from service.domain.guardian import SmsOutcome, link_url, record_sms
from service.domain.subjects import CHINA_TIME
from service.guardian.i18n import translate
from service.models import GuardianRequest, Organization
from service.observability import SMS
from service.protection import protector
from service.sms import SmsError, provider


def local_time(moment: datetime, locale: str) -> str:
    shown = moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")
    return shown if locale == "zh-CN" else f"{shown} (China time)"


def _send(session: Session, request: GuardianRequest, *, kind: str, body: str) -> SmsOutcome:
    if request.phone_ciphertext is None:
        outcome = SmsOutcome(error_code="phone_erased")
    else:
        try:
            message_id = provider().send(protector().decrypt(request.phone_ciphertext), body)
            outcome = SmsOutcome(provider_message_id=message_id)
        except SmsError as exc:
            outcome = SmsOutcome(error_code=exc.code)
    record_sms(session, request, kind=kind, outcome=outcome)
    SMS.labels(kind, "sent" if outcome.sent else "failed").inc()
    return outcome


def _org_name(session: Session, request: GuardianRequest) -> str:
    org = session.get(Organization, request.org_id)
    return org.name if org else ""


def send_link(session: Session, request: GuardianRequest) -> SmsOutcome:
    assert request.link_ciphertext is not None
    url = link_url(current_app.config["PUBLIC_URL"], protector().decrypt(request.link_ciphertext))
    body = translate(
        request.locale,
        "sms_link",
        org=_org_name(session, request),
        url=url,
        when=local_time(request.expires_at, request.locale),
    )
    return _send(session, request, kind="link", body=body)


def send_code(session: Session, request: GuardianRequest, code: str) -> SmsOutcome:
    body = translate(request.locale, "sms_code", org=_org_name(session, request), code=code)
    return _send(session, request, kind="code", body=body)


def send_withdrawal_link(session: Session, request: GuardianRequest, token: str) -> SmsOutcome:
    url = link_url(current_app.config["PUBLIC_URL"], token)
    body = translate(request.locale, "sms_withdrawal", org=_org_name(session, request), url=url)
    return _send(session, request, kind="withdrawal", body=body)
