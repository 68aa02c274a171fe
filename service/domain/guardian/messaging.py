"""The SMS of the guardian flow: the decision link, the one-time code, the withdrawal link.

Each send is two steps around a commit: :meth:`Messenger.reserve` takes its place in the allowance inside
the transaction that makes it necessary (``messages.reserve_sms``); after that commit, :meth:`Messenger.deliver`
talks to the provider with no transaction open and records the outcome (the caller commits again). So no
lock is held while a provider is slow, and a failed send never loses the request.

The decision link of a ``delivery: sms`` request exists only in these messages: no API answer carries it.
A message never names the child.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.db import begin_read
from service.domain.guardian.common import link_url
from service.domain.guardian.messages import RateLimited, SmsOutcome, reserve_sms, settle_sms
from service.domain.subjects import CHINA_TIME
from service.keys.crypto import DataProtector
from service.models import GuardianRequest, Organization, SmsMessage
from service.sms import SmsError, SmsProvider, TextMessage, as_text_message

#: The messages' texts. They name the organization and what the link is for, never the child, and do not
#: presume the answer.
TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "link": "【{org}】{org}请您作为监护人，逐项决定是否同意处理孩子的人脸信息。可全部不同意，"
        "不同意不影响孩子使用其他方式。该页面不会要求付款或提供银行卡、密码；如有疑问，"
        "请通过您熟悉的渠道联系{org}核实。有效期至{when}，链接：{url}",
        "reconsent": "【{org}】{org}变更了处理孩子人脸信息的告知内容，相关用途已暂停。是否重新同意由您决定，"
        "可全部不同意。该页面不会要求付款或提供银行卡、密码。有效期至{when}，链接：{url}",
        "code": "【{org}】验证码 {code} ，用于您作为监护人决定是否同意处理孩子的人脸信息，10分钟内有效。"
        "请勿告诉任何人，{org}工作人员不会向您索要。如非本人操作，请忽略本短信。",
        "withdrawal": "【{org}】您对处理孩子人脸信息的决定已记录。请保存本短信，可随时打开链接查看或撤回同意；"
        "如非本人操作，请立即撤回并联系{org}。{url}",
    },
    "en": {
        "link": "{org} asks you, as guardian, to decide purpose by purpose whether your child's face data may be "
        "processed. You may decline all; your child can still use other means. The page never asks for payment "
        "or passwords; if in doubt, contact {org} through a channel you know. Valid until {when}: {url}",
        "reconsent": "{org} changed what it tells you about processing your child's face data; those purposes are "
        "paused. Whether to agree again is your choice; you may decline all. The page never asks for payment or "
        "passwords. Valid until {when}: {url}",
        "code": "{org}: {code} is your code for deciding, as guardian, whether your child's face data may be "
        "processed. Valid for 10 minutes. Do not share it: {org} staff will never ask for it. If you did not ask "
        "for it, ignore this message.",
        "withdrawal": "{org}: your decision about processing your child's face data is recorded. Keep this message: "
        "the link lets you see or withdraw your consent at any time. If you did not make this decision, withdraw "
        "and contact {org}. {url}",
    },
}


def local_time(moment: datetime, locale: str) -> str:
    shown = moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")
    return shown if locale == "zh-CN" else f"{shown} (China time)"


def message_text(locale: str, kind: str, **values: Any) -> str:
    return TEXTS.get(locale, TEXTS["zh-CN"])[kind].format(**values)


def compose(locale: str, kind: str, **values: Any) -> TextMessage:
    """The message of ``kind``: its full text, and its parameters for providers that send templates."""
    return TextMessage(
        body=message_text(locale, kind, **values), kind=kind, params={k: str(v) for k, v in values.items()}
    )


@dataclass(frozen=True)
class Messenger:
    """What sending needs: the provider, the data key (numbers are stored encrypted), the links' base URL."""

    provider: SmsProvider
    protector: DataProtector
    public_url: str
    daily_limit: int

    @classmethod
    def of(cls, app: Any) -> Messenger:
        """The messenger of a Flask app (read from its config and extensions; the domain imports no Flask)."""
        return cls(
            provider=app.extensions["consent_gate.sms"],
            protector=app.extensions["consent_gate.protector"],
            public_url=app.config["PUBLIC_URL"],
            daily_limit=app.config["SMS_DAILY_LIMIT"],
        )

    def reserve(self, session: Session, request: GuardianRequest, kind: str) -> SmsMessage:
        """Take the allowance for one message (or raise ``RateLimited``); deliver it after the commit."""
        return reserve_sms(session, request, kind=kind, daily_limit=self.daily_limit)

    def deliver(
        self, session: Session, request: GuardianRequest, message: SmsMessage, body: TextMessage | str
    ) -> SmsOutcome:
        """Send a reserved message now, with no transaction open, and record the outcome.

        Call it after the commit that reserved the message. The number is read as stored now (an erasure
        since the reservation removed it) in a read transaction that ends before the provider is called:
        no lock, and on SQLite no write lock, is held while a provider is slow.
        """
        session.commit()  # nothing is pending here; end whatever transaction building the body opened
        begin_read(session)
        session.refresh(request)
        ciphertext = request.phone_ciphertext
        session.commit()
        if ciphertext is None:
            outcome = SmsOutcome(error_code="phone_erased")
        else:
            try:
                sent_id = self.provider.send(self.protector.decrypt(ciphertext), as_text_message(body))
                outcome = SmsOutcome(provider_message_id=sent_id)
            except SmsError as exc:
                outcome = SmsOutcome(error_code=exc.code)
        settle_sms(session, request, message, outcome)
        from service.observability import SMS  # the metrics registry, imported late: it pulls prometheus

        SMS.labels(message.kind, "sent" if outcome.sent else "failed").inc()
        return outcome

    def send_withdrawal_link(self, session: Session, request: GuardianRequest, token: str) -> bool:
        """Text the withdrawal link after a decision committed; True if it went.

        Within the phone's allowance like every SMS: when it is used up (or the provider fails) nothing is
        sent and the decision stands all the same. The caller decides what to do with the link then (the
        guardian's receipt page shows it). Commits, like :meth:`deliver`.
        """
        try:
            reservation = self.reserve(session, request, "withdrawal")
        except RateLimited:
            session.rollback()
            return False
        session.commit()
        sent = self.deliver(session, request, reservation, self.withdrawal_text(session, request, token)).sent
        session.commit()
        return sent

    def link_text(self, session: Session, request: GuardianRequest, token: str) -> TextMessage:
        url = link_url(self.public_url, token)
        when = local_time(request.expires_at, request.locale)
        return compose(request.locale, "link", org=_org_name(session, request), url=url, when=when)

    def reconsent_text(self, session: Session, request: GuardianRequest, token: str) -> TextMessage:
        """The link of a request opened because a notice changed (``reconsent``): says so, presumes nothing."""
        url = link_url(self.public_url, token)
        when = local_time(request.expires_at, request.locale)
        return compose(request.locale, "reconsent", org=_org_name(session, request), url=url, when=when)

    def code_text(self, session: Session, request: GuardianRequest, code: str) -> TextMessage:
        return compose(request.locale, "code", org=_org_name(session, request), code=code)

    def withdrawal_text(self, session: Session, request: GuardianRequest, token: str) -> TextMessage:
        url = link_url(self.public_url, token)
        return compose(request.locale, "withdrawal", org=_org_name(session, request), url=url)


def _org_name(session: Session, request: GuardianRequest) -> str:
    org = session.get(Organization, request.org_id)
    return org.name if org else ""
