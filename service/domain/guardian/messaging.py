"""The SMS of the guardian flow: the decision link, the one-time code, the withdrawal link.

Each send takes its place in the allowance (:meth:`Messenger.reserve`, ``messages.reserve_sms``) and is
queued in the outbox (:meth:`Messenger.queue`) in the transaction that makes it necessary; after that
commit the dispatcher (``service.outbox.dispatcher``) talks to the provider, with no request waiting, and
settles the outcome (``messages.settle_sms``). A link message shows ``delivery_status: queued`` until then.

The decision link of a ``delivery: sms`` request exists only in these messages: no API answer carries it.
A message never names the child.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service import outbox
from service.domain.guardian.common import link_url
from service.domain.guardian.messages import RateLimited, reserve_sms
from service.domain.subjects import CHINA_TIME
from service.keys.crypto import DataProtector
from service.models import GuardianRequest, Organization, SmsMessage
from service.outbox import enqueue
from service.sms import SmsProvider

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

    def queue(
        self, session: Session, request: GuardianRequest, message: SmsMessage, body: str, params: dict[str, Any]
    ) -> None:
        """Queue a reserved message in the outbox, in the same transaction; the dispatcher sends it.

        The outbox row carries the number, the text, and the template's kind and parameters (for providers
        that send templates), encrypted; the erasure of the child removes it while still queued.
        """
        if request.phone_ciphertext is None:  # reserve_sms refuses an erased phone; defensive
            raise RateLimited("there is no phone on record to send to", 3600, code="phone_erased")
        enqueue(
            session,
            self.protector,
            org_id=request.org_id,
            channel=outbox.SMS,
            kind=message.kind,
            payload={
                "to": self.protector.decrypt(request.phone_ciphertext),
                "body": body,
                "kind": message.kind,
                "locale": request.locale,
                "params": params,
            },
            subject_id=request.subject_id,
            request_id=request.id,
            sms_message_id=message.id,
        )
        if message.kind == "link":
            request.delivery_status, request.delivery_error = outbox.QUEUED, None
            session.flush()

    def queue_text(
        self, session: Session, request: GuardianRequest, message: SmsMessage, template: str, **values: Any
    ) -> None:
        """Queue the message of ``template`` (link, reconsent, code, withdrawal) with ``values`` filled in."""
        values = {"org": _org_name(session, request), **values}
        self.queue(session, request, message, message_text(request.locale, template, **values), {**values})

    def queue_link(self, session: Session, request: GuardianRequest, message: SmsMessage, token: str) -> None:
        when = local_time(request.expires_at, request.locale)
        self.queue_text(session, request, message, "link", url=link_url(self.public_url, token), when=when)

    def queue_reconsent(self, session: Session, request: GuardianRequest, message: SmsMessage, token: str) -> None:
        """The link of a request opened because a notice changed (``reconsent``): says so, presumes nothing."""
        when = local_time(request.expires_at, request.locale)
        self.queue_text(session, request, message, "reconsent", url=link_url(self.public_url, token), when=when)

    def queue_code(self, session: Session, request: GuardianRequest, message: SmsMessage, code: str) -> None:
        self.queue_text(session, request, message, "code", code=code)

    def queue_withdrawal_link(self, session: Session, request: GuardianRequest, token: str) -> bool:
        """Queue the withdrawal link in the decision's own transaction; True if it was queued.

        Within the phone's allowance like every SMS: when it is used up (or the phone was erased) nothing
        is written and the decision stands all the same; the caller decides what to do with the link then
        (the guardian's receipt page shows it). Does not commit: the decision's commit writes the
        reservation and the outbox row with it, and a rollback undoes all three. The caller took the
        organization's row lock before the request's (``messages.lock_organization``, the lock order).
        """
        try:
            reservation = self.reserve(session, request, "withdrawal")
        except RateLimited:  # raised before anything was written: the transaction goes on
            return False
        self.queue_text(session, request, reservation, "withdrawal", url=link_url(self.public_url, token))
        return True


def _org_name(session: Session, request: GuardianRequest) -> str:
    org = session.get(Organization, request.org_id)
    return org.name if org else ""
