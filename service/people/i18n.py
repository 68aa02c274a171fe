"""The person's page's texts, in Simplified Chinese (default) and English.

The footer (the handler, its contact, officer and complaint channel) and the consent statuses are the
guardian pages' own texts: a key not found here is looked up there.
"""

from __future__ import annotations

from typing import Any

from service.guardian.i18n import DEFAULT_LOCALE
from service.guardian.i18n import TEXTS as GUARDIAN_TEXTS

TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "您的个人信息与权利",
        "intro": "以下是{org}就处理您的人脸信息所持有的同意记录。您可以查阅、复制您的个人信息，撤回同意，"
        "申请更正或删除，或提出投诉（《个人信息保护法》第四十四条至第五十条）。",
        "intro_guardian": "以下是{org}就处理孩子的人脸信息所持有的同意记录。"
        "作为监护人，您可以代孩子查阅、复制其个人信息，撤回同意，申请更正或删除，或提出投诉（《个人信息保护法》第三十一条、第四十四条至第五十条）。",
        "rights_how": "您可以向上述个人信息处理者申请查阅、复制、更正、补充、删除个人信息，要求解释处理规则，"
        "或撤回同意；可以在本页提出，也可通过下列联系方式提出。个人信息处理者拒绝的，应当说明理由。",
        "consents_heading": "同意记录",
        "no_consents": "{org}没有您的同意记录。",
        "used_for": "用途说明",
        "notice_version": "告知内容版本 {version}",
        "withdraw_button": "撤回同意",
        "confirm_title": "确认撤回同意",
        "confirm_text": "撤回对“{name}”的同意后立即生效：停止为该用途处理人脸信息，个人信息处理者应当删除相关人脸信息。"
        "撤回不影响撤回前基于同意已进行的处理的效力。之后如需再次使用，需重新同意；也可改用下列替代方式。",
        "confirm_button": "确认撤回",
        "cancel": "返回，不撤回",
        "withdrawn": "已撤回对“{name}”的同意，即时生效。",
        "not_yours": "找不到该项同意，未作任何更改。",
        "cannot_withdraw": "该项同意已结束，无需撤回。",
        "copy_heading": "复制您的个人信息",
        "copy_text": "下载一份{org}在本服务中持有的您的个人信息副本（JSON 格式）："
        "登记信息、各项同意、告知内容版本及其摘要、同意的证据和您提出的申请。其中不含他人的信息，监护人的手机号只显示部分数字。",
        "copy_link": "下载副本（JSON）",
        "requests_heading": "申请更正、删除或投诉",
        "requests_text": "{org}应在 {days} 个工作日内答复。",
        "kind": "类型",
        "kind_correction": "更正或补充个人信息",
        "kind_deletion": "删除个人信息",
        "kind_complaint": "投诉",
        "details": "具体内容",
        "details_help": "请写明需要更正、删除的内容或投诉的事项（不超过 {max} 字）。"
        "请勿填写身份证号、银行卡号等无关信息。",
        "submit_request": "提交",
        "request_filed": "已提交。{org}应在 {due} 前答复。",
        "request_invalid": "未提交：请选择类型并填写具体内容（不超过 {max} 字）。",
        "request_limit": "您已有较多未答复的申请，请等待答复后再提交，或直接联系{org}。",
        "filed_heading": "已提交的申请",
        "due": "答复期限：{due}",
        "status_open": "处理中",
        "status_closed": "已答复",
        "outcome": "答复",
        "link_expired": "此链接已过期。请联系 {org} 获取新的链接。",
        "not_found": "找不到此链接，请检查完整链接。",
    },
    "en": {
        "title": "Your personal information and your rights",
        "intro": "These are the consents {org} holds for processing your face. You can see and copy your personal "
        "information, withdraw consent, ask for correction or deletion, or complain (PIPL Articles 44 to 50).",
        "intro_guardian": "These are the consents {org} holds for processing your child's face. As guardian you can, "
        "on your child's behalf, see and copy their personal information, withdraw consent, ask for correction or "
        "deletion, or complain (PIPL Articles 31 and 44 to 50).",
        "rights_how": "You may ask the personal information handler to let you see or copy your personal information, "
        "correct, complete or delete it, explain its processing rules, or withdraw consent: on this page, or through "
        "the contacts below. A refusal must give its reasons.",
        "consents_heading": "Consents",
        "no_consents": "{org} holds no consent of yours.",
        "used_for": "What it is for",
        "notice_version": "Notice version {version}",
        "withdraw_button": "Withdraw consent",
        "confirm_title": "Confirm the withdrawal",
        "confirm_text": "Withdrawing consent to “{name}” takes effect at once: your face is no longer processed for it "
        "and the personal information handler must delete the face data. Processing done before, based on your "
        "consent, stays lawful. To use it again you would consent again; you can use the alternative below instead.",
        "confirm_button": "Withdraw now",
        "cancel": "Go back without withdrawing",
        "withdrawn": "Consent to “{name}” was withdrawn, with immediate effect.",
        "not_yours": "That consent was not found. Nothing was changed.",
        "cannot_withdraw": "That consent has already ended: there is nothing to withdraw.",
        "copy_heading": "A copy of your personal information",
        "copy_text": "Download a copy (JSON) of the personal information {org} holds about you in this service: your "
        "record, each consent, the notice versions and their digests, the evidence of each consent and your "
        "requests. It holds nobody else's information; guardians' phone numbers show only some digits.",
        "copy_link": "Download a copy (JSON)",
        "requests_heading": "Ask for correction or deletion, or complain",
        "requests_text": "{org} must answer within {days} working days.",
        "kind": "Kind",
        "kind_correction": "Correct or complete my information",
        "kind_deletion": "Delete my information",
        "kind_complaint": "Complaint",
        "details": "Details",
        "details_help": "Say what should be corrected or deleted, or what the complaint is about (at most {max} "
        "characters). Do not enter identity card or bank card numbers.",
        "submit_request": "Submit",
        "request_filed": "Submitted. {org} must answer by {due}.",
        "request_invalid": "Not submitted: choose a kind and write the details (at most {max} characters).",
        "request_limit": "You have many requests awaiting an answer. Please wait for the answers, or contact {org}.",
        "filed_heading": "Your requests",
        "due": "Answer due by {due}",
        "status_open": "Being handled",
        "status_closed": "Answered",
        "outcome": "Answer",
        "link_expired": "This link has expired. Please ask {org} for a new one.",
        "not_found": "We could not find this link. Please check the full link.",
    },
}


def translate(locale: str, key: str, **values: Any) -> str:
    texts = TEXTS.get(locale, TEXTS[DEFAULT_LOCALE])
    if key in texts:
        return texts[key].format(**values)
    return GUARDIAN_TEXTS.get(locale, GUARDIAN_TEXTS[DEFAULT_LOCALE])[key].format(**values)
