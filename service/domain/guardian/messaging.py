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
from service.domain.guardian.messages import RateLimited, reserve_sms
from service.domain.subjects import CHINA_TIME
from service.keys.crypto import DataProtector
from service.models import GuardianRequest, Organization, SmsMessage
from service.outbox import enqueue
from service.sms import TEMPLATE_PARAMETERS, SmsProvider, TextMessage

#: The texts of the messages in Chinese: exactly what operators register at Alibaba Cloud and Tencent Cloud
#: (:func:`registered_template`), the signature standing for the ``【{org}】`` that ``console`` and ``twilio``
#: put before them. Each names the organization and what the link is for, never the child, does not presume
#: the answer, and uses each variable once. ``{url}`` is the link: registered as its fixed part and
#: ``${token}``. ``{when}`` is a China time (``2026年12月1日 04:59``); the text says so.
TEMPLATES: dict[str, str] = {
    "link": "{org}请您作为孩子的监护人，逐项选择是否同意使用人脸识别。可以全部不同意，孩子仍可用其他方式。"
    "页面不会要求付款或银行卡、密码。请在{when}（北京时间）前打开：{url}",
    "reconsent": "{org}变更了处理孩子人脸信息的告知内容，相关用途已暂停。是否重新同意由您决定，可全部不同意，"
    "孩子仍可用其他方式。页面不会要求付款或银行卡、密码。请在{when}（北京时间）前打开：{url}",
    "code": "验证码{code}，用于您决定是否同意对孩子使用人脸识别，10分钟内有效。请勿告诉他人，工作人员不会向您索要。",
    "withdrawal": "您对孩子人脸识别的决定已记录。请保存本短信，可随时打开链接查看或撤回同意；"
    "如果不是您本人作的决定，请立即撤回并联系{org}。链接：{url}",
    "access": "您可通过此链接查看{org}处理孩子个人信息（含人脸信息）的同意记录，撤回同意、下载副本，"
    "或申请更正、删除、提出投诉。页面不会要求付款或银行卡、密码。请在{when}（北京时间）前打开：{url}",
}

#: The same messages in English, after ``{org}: `` (``console`` and ``twilio`` only: mainland templates are
#: Chinese).
ENGLISH: dict[str, str] = {
    "link": "as your child's guardian, please decide purpose by purpose whether face recognition may be used. "
    "You may decline all; your child can still use other means. The page never asks for payment, bank cards or "
    "passwords. Open it before {when} (China time): {url}",
    "reconsent": "we changed what we tell you about processing your child's face data; those purposes are "
    "paused. Whether to agree again is your choice; you may decline all, and your child can still use other "
    "means. The page never asks for payment, bank cards or passwords. Open it before {when} (China time): {url}",
    "code": "{code} is your code for deciding whether face recognition may be used for your child. Valid for 10 "
    "minutes. Do not share it: no staff will ever ask you for it.",
    "withdrawal": "your decision about face recognition for your child is recorded. Keep this message: the link "
    "lets you see or withdraw your consent at any time. If you did not make this decision, withdraw at once and "
    "contact {org}. Link: {url}",
    "access": "this link shows the consents {org} holds for your child's personal information (face data "
    "included); there you can withdraw, download a copy, ask for correction or deletion, or complain. The page "
    "never asks for payment, bank cards or passwords. Open it before {when} (China time): {url}",
}

#: The path before the token of each link-bearing kind's link.
LINK_PATHS = {"link": "/g/", "reconsent": "/g/", "withdrawal": "/g/", "access": "/p/"}


def local_time(moment: datetime, locale: str, *, zone: bool = True) -> str:
    """A moment in China time: ``2026年12月1日 04:59`` and 北京时间 in brackets; ``2026-12-01 04:59 (China time)``.

    ``zone=False`` leaves out the zone (for a text that says it itself).
    """
    local = moment.astimezone(CHINA_TIME)
    if locale == "zh-CN":
        shown = f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
        return f"{shown}（北京时间）" if zone else shown
    shown = local.strftime("%Y-%m-%d %H:%M")
    return f"{shown} (China time)" if zone else shown


def compose(
    kind: str,
    locale: str,
    *,
    org: str,
    public_url: str = "",
    token: str = "",
    expires_at: datetime | None = None,
    code: str = "",
) -> TextMessage:
    """One message: its full text in ``locale`` and its Chinese template's parameters.

    The body is ``【org】`` and the Chinese template filled in (or the English text), so ``console`` and
    ``twilio`` send what a mainland provider renders from the registered template and ``params``.
    """
    url = f"{public_url.rstrip('/')}{LINK_PATHS[kind]}{token}" if kind in LINK_PATHS else ""

    def values(in_locale: str) -> dict[str, str]:
        when = local_time(expires_at, in_locale, zone=False) if expires_at is not None else ""
        return {"org": org, "when": when, "url": url, "code": code, "token": token}

    if locale == "en":
        body = f"{org}: " + ENGLISH[kind].format(**values("en"))
    else:
        body = f"【{org}】" + TEMPLATES[kind].format(**values("zh-CN"))
    template = values("zh-CN")  # a mainland template is Chinese whatever the request's language
    return TextMessage(body=body, kind=kind, params={name: template[name] for name in TEMPLATE_PARAMETERS[kind]})


def registered_template(kind: str, public_url: str, provider: str) -> str:
    """The text to register for ``kind`` at ``provider`` (``aliyun``: ``${org}``; ``tencent``: ``{1}``)."""
    names = TEMPLATE_PARAMETERS[kind]

    def variable(name: str) -> str:
        return f"${{{name}}}" if provider == "aliyun" else f"{{{names.index(name) + 1}}}"

    fields = {name: variable(name) for name in names}
    if kind in LINK_PATHS:
        fields["url"] = f"{public_url.rstrip('/')}{LINK_PATHS[kind]}{variable('token')}"
    return TEMPLATES[kind].format(**fields)


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

    def queue_message(self, session: Session, request: GuardianRequest, message: SmsMessage, text: TextMessage) -> None:
        """Queue a composed message (:func:`compose`): its full text and its template's parameters."""
        self.queue(session, request, message, text.body, dict(text.params))

    def compose(
        self, session: Session, request: GuardianRequest, kind: str, *, token: str = "", code: str = ""
    ) -> TextMessage:
        """The message of ``kind`` for ``request``, in its language, its link ``token`` or ``code`` filled in."""
        expires_at = request.expires_at if kind in ("link", "reconsent") else None
        return compose(
            kind,
            request.locale,
            org=_org_name(session, request),
            public_url=self.public_url,
            token=token,
            expires_at=expires_at,
            code=code,
        )

    def queue_link(self, session: Session, request: GuardianRequest, message: SmsMessage, token: str) -> None:
        self.queue_message(session, request, message, self.compose(session, request, "link", token=token))

    def queue_reconsent(self, session: Session, request: GuardianRequest, message: SmsMessage, token: str) -> None:
        """The link of a request opened because a notice changed (``reconsent``): says so, presumes nothing."""
        self.queue_message(session, request, message, self.compose(session, request, "reconsent", token=token))

    def queue_code(self, session: Session, request: GuardianRequest, message: SmsMessage, code: str) -> None:
        self.queue_message(session, request, message, self.compose(session, request, "code", code=code))

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
        self.queue_message(session, request, reservation, self.compose(session, request, "withdrawal", token=token))
        return True


def _org_name(session: Session, request: GuardianRequest) -> str:
    org = session.get(Organization, request.org_id)
    return org.name if org else ""
