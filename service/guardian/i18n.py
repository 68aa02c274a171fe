"""The guardian pages' texts, in Simplified Chinese (default) and English.

The SMS texts live with the messages themselves, in ``service.domain.guardian.messaging``.
"""

from __future__ import annotations

from typing import Any

from service.config import SUPPORTED_LOCALES as LOCALES

DEFAULT_LOCALE = "zh-CN"

TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "处理孩子人脸信息的监护人同意",
        "intro": "{org}想对孩子使用人脸识别，请您作为监护人逐项决定。同意哪项就勾选哪项，不勾选就是不同意。"
        "不同意也没关系，孩子可以用每项下面写的其他方式。",
        "if_not_agreed": "不同意也可以：",
        "deadline": "请在{when}前作出决定",
        "colon": "：",
        "controller": "个人信息处理者",
        "processing_method": "处理方式",
        "capture": "采集方式",
        "capture_device": "由{org}安装的固定摄像头或终端设备采集人脸",
        "capture_personal_device": "在孩子或您本人的手机上采集人脸",
        "rights_impact": "对孩子权益的影响",
        "rights_how": "您可以代孩子向上述个人信息处理者申请查阅、复制、更正、补充、删除孩子的个人信息，"
        "要求解释处理规则，或撤回同意。请通过下列联系方式提出；个人信息处理者拒绝的，应当说明理由。",
        "complaint_authority": "您也可以向网信部门等履行个人信息保护职责的部门投诉、举报"
        "（《个人信息保护法》第六十五条）。",
        "age_end": "孩子年满十四周岁时，您作出的监护人同意自动终止，此后由孩子本人决定。",
        "pipo": "个人信息保护负责人",
        "complaint": "投诉与行使权利的渠道",
        "complaint_default": "联系{contact}",
        "why_guardian": "孩子不满十四周岁，其个人信息（包括人脸信息）属于敏感个人信息。"
        "依照《个人信息保护法》第二十八条、第二十九条和第三十一条，"
        "处理孩子的人脸信息须取得您作为父母或其他监护人的单独同意（监护人同意）。",
        "contact": "联系方式",
        "purpose": "用途",
        "notice": "告知内容",
        "used_for": "人脸信息用于",
        "necessity": "必要性",
        "retention": "保存期限",
        "retention_days": "{days} 天（到期后删除）",
        "alternative": "不使用人脸识别的替代方式",
        "transmits": "此用途会将孩子的人脸信息传出设备。传出须经您另行单独同意，即上方的第二个勾选框："
        "同意此用途须两项都勾选；不同意则两项都不勾选。",
        "transmit_to": "我另外同意：为“{name}”，把孩子的人脸信息从采集设备传送出去",
        "transmission_consent_required": "您的选择未提交。会将人脸信息传出设备的用途有两个勾选框："
        "同意须两项都勾选，不同意则两项都不勾选。请检查标出的用途后重新提交。",
        "transmission_pair": "同意“{name}”须勾选以上两项；不同意则两项都不勾选。",
        "local_only": "人脸信息仅在采集设备上处理和保存，不会传出设备。",
        "withdraw_how": "如何撤回同意",
        "withdraw_text": "您可随时撤回同意。如您同意了任一用途，提交后会收到一条含撤回链接的短信；也可联系{contact}。"
        "撤回后即停止处理，个人信息处理者会删除孩子的人脸信息；撤回不影响撤回前基于您的同意已进行的处理的效力。",
        "agree_to": "我同意将孩子的人脸信息用于“{name}”",
        "code_heading": "验证您的手机号",
        "code_help": "我们将向尾号为 {phone} 的手机发送 6 位验证码，10 分钟内有效。",
        "code_label": "短信验证码",
        "send_code": "发送验证码",
        "approve": "同意所勾选的用途",
        "decline": "全部不同意",
        "expires": "此链接有效期至 {when}",
        "code_sent": "验证码正在发送，一般1分钟内收到；没收到可在1分钟后再点“发送验证码”。",
        "code_wrong": "验证码不正确，还可尝试 {left} 次。",
        "code_expired": "验证码已过期，请重新发送。",
        "code_missing": "请先发送并输入短信验证码。",
        "locked": "验证码错误次数过多，此请求已锁定，未作任何决定。如仍需作出决定，可联系{org}重新发起。",
        "rate_limited": "发送太频繁，请{seconds}秒后再点“发送验证码”。",
        "rate_limited_minutes": "发送太频繁，请约{minutes}分钟后再点“发送验证码”。",
        "sms_failed": "短信发送失败，请稍后再试。",
        "select_one": "您没有勾选任何用途。如需同意，请勾选相应用途；如都不同意，请点击“全部不同意”。",
        "child": "孩子",
        "attest_guardian": "我确认我是该孩子的父母或其他法定监护人，有权代孩子作出上述决定。",
        "attest_help": "如您不是孩子的父母或法定监护人，请不要在此作决定，可联系{org}。",
        "attestation_required": "如需同意，请先勾选“我确认我是该孩子的父母或其他法定监护人”一项。",
        "notice_changed": "告知内容已更新，您之前的选择未提交。请阅读更新后的内容，重新勾选后再作决定。",
        "sms_budget": "暂时无法发送验证码（短信发送量已达上限）。请几小时后再试，或直接联系 {org}。",
        "changed_title": "此请求已有变化",
        "nothing_pending": "{org} 已取消此请求中的全部用途，目前没有需要您决定的事项。如有疑问，请联系 {org}。",
        "state_changed": "在您作决定期间，{org} 更改了此请求（例如取消了其中某项用途），您的选择没有被提交。"
        "请重新打开短信中的链接查看最新内容；如有疑问，请联系 {org}。",
        "receipt_title": "您的决定已记录",
        "receipt_approved": "已同意",
        "receipt_declined": "未同意",
        "receipt_not_effective": "未生效：{org}手续未完成，不会使用孩子的人脸信息",
        "receipt_alternative": "其他方式：",
        "receipt_withdraw_link": "您的决定已记录，但撤回链接短信未能发出。"
        "请截图或复制保存以下链接，今后可随时通过它撤回同意：",
        "receipt_time": "记录时间：{when}",
        "withdraw_title": "撤回对处理孩子人脸信息的同意",
        "withdraw_intro": "以下是{org}就处理孩子人脸信息的各项同意及其状态。带有“撤回同意”按钮的各项，"
        "您可逐项撤回；撤回立即生效，孩子可改用所列的替代方式。",
        "withdraw_button": "撤回同意",
        "withdrawn": "已撤回对“{name}”的同意，孩子的人脸信息不再用于该用途。",
        "status_active": "有效",
        "status_pending_guardian": "待监护人决定",
        "status_declined": "未同意",
        "status_revoked": "已撤回",
        "status_expired": "已过期",
        "status_reconsent_required": "已暂停（告知内容已变更）",
        "why_heading": "为什么需要监护人同意",
        "purposes_legend": "请逐项选择是否同意",
        "notice_summary": "阅读“{name}”的完整告知",
        "used_title": "此链接已用于作出决定",
        "used_intro": "您已用这个链接作过决定，不能再改。下面是当时的决定。",
        "receipt_decision": "您的决定",
        "receipt_now": "目前：{status}",
        "receipt_reference": "参考编号",
        "receipt_reference_help": "就这个决定联系{org}时，请报上这个参考编号。请截屏保存本页。",
        "receipt_full_id": "完整编号（供{org}工作人员查询）",
        "receipt_withdraw_sms": "您可随时撤回同意：请使用决定后发送到您手机的短信中的撤回链接，或联系{org}。"
        "撤回立即生效。",
        "receipt_nothing_approved": "您选择了不同意，孩子的人脸信息不会用于这些用途，孩子可以继续用上面写的其他方式。"
        "如果是点错了或改变主意，请联系{org}。",
        "confirm_title": "确认撤回同意",
        "confirm_text": "撤回对“{name}”的同意后立即生效：停止为该用途处理孩子的人脸信息，{org}会删除相关人脸信息，"
        "孩子可改用下列替代方式。撤回不影响撤回前已进行的处理。撤回后如需再次同意，须由{org}重新发起请求。",
        "confirm_button": "确认撤回",
        "cancel": "取消，不撤回",
        "gone_title": "此链接已失效",
        "link_expired": "此链接已过期。如需重新决定，请联系 {org} 重新发起。",
        "link_used": "此链接已用于作出决定，不能再次使用。"
        "如需撤回同意，请使用决定后收到的短信中的撤回链接，或联系个人信息处理者。",
        "request_locked": "验证码错误次数过多，此监护人同意请求已锁定。",
        "not_found_title": "链接无效",
        "not_found": "找不到此链接，请检查短信中的完整链接。",
        "forbidden_title": "请求无法验证",
        "forbidden": "页面停留太久，您的选择没有提交。请点下面的“重新打开”，再选一次。",
        "reopen": "重新打开",
        "language": "English",
    },
    "en": {
        "title": "Consent for processing your child's face",
        "intro": "{org} would like to use face recognition for your child. As the guardian, please decide for each "
        "purpose: tick what you agree to; unticked means no. Saying no is fine: your child can use the other way "
        "written under each purpose.",
        "if_not_agreed": "If you do not agree: ",
        "deadline": "Please decide before {when}",
        "colon": ": ",
        "controller": "Personal information handler",
        "processing_method": "How the face is processed",
        "capture": "Where the face is captured",
        "capture_device": "By a fixed camera or terminal installed by {org}",
        "capture_personal_device": "On your child's or your own phone",
        "rights_impact": "Effect on your child's rights",
        "rights_how": "On your child's behalf you may ask the personal information handler to let you see or copy "
        "your child's personal information, correct, complete or delete it, explain its processing rules, or "
        "withdraw consent. Use the contacts below; a refusal must give its reasons.",
        "complaint_authority": "You may also complain to the cyberspace administration or another authority in "
        "charge of personal information protection (PIPL Article 65).",
        "age_end": "Your consent ends when your child turns 14; from then on your child decides.",
        "pipo": "Personal information protection officer",
        "complaint": "Complaints and exercising your rights",
        "complaint_default": "Contact {contact}",
        "why_guardian": "Your child is under 14, so their personal information, face data included, is sensitive "
        "personal information. Under Articles 28, 29 and 31 of the Personal Information Protection Law, processing "
        "it needs the separate consent of a parent or other guardian.",
        "contact": "Contact",
        "purpose": "Purpose",
        "notice": "Notice",
        "used_for": "The face data is used for",
        "necessity": "Why it is necessary",
        "retention": "Kept for",
        "retention_days": "{days} days, then deleted",
        "alternative": "The alternative without face recognition",
        "transmits": "For this purpose your child's face data leaves the device. That needs your separate "
        "consent, given with the second box above: to agree to this purpose tick both boxes; to decline it, "
        "leave both unticked.",
        "transmit_to": "I separately agree that my child's face data may be transmitted off the device for “{name}”",
        "transmission_consent_required": "Your choices were not submitted. A purpose whose face data leaves the "
        "device has two boxes: tick both to agree, or neither to decline. Please check the purpose marked below "
        "and submit again.",
        "transmission_pair": "To agree to “{name}”, tick both boxes above; to decline it, leave both unticked.",
        "local_only": "Face data is processed and kept on the capturing device only; it never leaves it.",
        "withdraw_how": "How to withdraw consent",
        "withdraw_text": "You can withdraw consent at any time. If you agree to any purpose, you will get an SMS with "
        "a withdrawal link; you can also contact {contact}. After withdrawal, processing stops and the personal "
        "information handler must delete your child's face data; processing done before, based on your consent, "
        "stays lawful.",
        "agree_to": "I agree that my child's face may be used for “{name}”",
        "code_heading": "Verify your phone number",
        "code_help": "We send a 6-digit code to the phone ending {phone}. It is valid for 10 minutes.",
        "code_label": "Code from the SMS",
        "send_code": "Send code",
        "approve": "Agree to the ticked purposes",
        "decline": "Decline all",
        "expires": "This link is valid until {when}",
        "code_sent": "The code is on its way and usually arrives within a minute. If it has not come, tap “Send code” "
        "again after a minute.",
        "code_wrong": "That code is wrong. {left} tries left.",
        "code_expired": "That code has expired. Please send a new one.",
        "code_missing": "Please send and enter the SMS code first.",
        "locked": "Too many wrong codes: this request is locked and nothing was decided. If you still want to decide, "
        "ask {org} to start a new request.",
        "rate_limited": "Too many messages. Please tap “Send code” again in {seconds} seconds.",
        "rate_limited_minutes": "Too many messages. Please tap “Send code” again in about {minutes} minutes.",
        "sms_failed": "The SMS could not be sent. Please try again later.",
        "select_one": "You ticked no purpose. To agree, tick the purposes you agree to; to agree to none, choose "
        "“Decline all”.",
        "child": "Child",
        "attest_guardian": "I confirm that I am this child's parent or other legal guardian and may decide for them.",
        "attest_help": "If you are not the child's parent or legal guardian, please do not decide here; you can "
        "contact {org}.",
        "attestation_required": "To agree, please tick the box confirming that you are the child's parent or other "
        "legal guardian.",
        "notice_changed": "The notice was updated and your choices were not submitted. Please read the new text and "
        "tick again before deciding.",
        "sms_budget": "The code cannot be sent for now (the message limit is reached). Please try again in a few "
        "hours, or contact {org} directly.",
        "changed_title": "This request has changed",
        "nothing_pending": "{org} cancelled every purpose of this request: there is nothing left for you to decide. "
        "Contact {org} if in doubt.",
        "state_changed": "While you were deciding, {org} changed this request (for example, cancelled one of its "
        "purposes), so your choices were not submitted. Please open the link in the SMS again to see the current "
        "request; contact {org} if in doubt.",
        "receipt_title": "Your decision is recorded",
        "receipt_approved": "Agreed",
        "receipt_declined": "Not agreed",
        "receipt_not_effective": "Not in effect: {org} has not completed its procedures, so your child's face data "
        "will not be used",
        "receipt_alternative": "Other way: ",
        "receipt_withdraw_link": "Your decision is recorded, but the SMS with your withdrawal link could not be sent. "
        "Take a screenshot or copy this link: use it at any time to withdraw.",
        "receipt_time": "Recorded at {when}",
        "withdraw_title": "Withdraw consent for your child",
        "withdraw_intro": "These are the consents {org} holds for processing your child's face, with their status. "
        "You can withdraw each one that has a withdraw button; withdrawal takes effect at once and your child can "
        "use the alternative shown.",
        "withdraw_button": "Withdraw consent",
        "withdrawn": "Consent to “{name}” was withdrawn: your child's face data is no longer used for it.",
        "status_active": "Active",
        "status_pending_guardian": "Awaiting guardian",
        "status_declined": "Declined",
        "status_revoked": "Withdrawn",
        "status_expired": "Expired",
        "status_reconsent_required": "Paused (the notice changed)",
        "why_heading": "Why a guardian's consent is needed",
        "purposes_legend": "Decide for each purpose",
        "notice_summary": "Read the full notice for “{name}”",
        "used_title": "This link was already used to decide",
        "used_intro": "You already decided with this link and cannot change it here. This is what you decided.",
        "receipt_decision": "Your decision",
        "receipt_now": "now: {status}",
        "receipt_reference": "Reference number",
        "receipt_reference_help": "Quote this reference number when you contact {org} about this decision. Take a "
        "screenshot of this page to keep it.",
        "receipt_full_id": "Full number (for {org}'s staff)",
        "receipt_withdraw_sms": "You can withdraw consent at any time: use the withdrawal link in the SMS sent to "
        "your phone after deciding, or contact {org}. Withdrawal takes effect at once.",
        "receipt_nothing_approved": "You chose not to agree: your child's face data will not be used for these "
        "purposes, and your child can keep using the other ways shown above. If you tapped by mistake or change "
        "your mind, please contact {org}.",
        "confirm_title": "Confirm the withdrawal",
        "confirm_text": "Withdrawing consent to “{name}” takes effect at once: your child's face is no longer "
        "processed for it, {org} must delete the face data it holds for it, and your child can use the "
        "alternative below. Processing done before stays lawful. To agree again later, {org} must send a new "
        "request.",
        "confirm_button": "Withdraw now",
        "cancel": "Cancel, do not withdraw",
        "gone_title": "This link no longer works",
        "link_expired": "This link has expired. Please ask {org} to start a new request.",
        "link_used": "This link was already used to decide and cannot be used again. To withdraw consent, use the "
        "link in the SMS you got after deciding, or contact the personal information handler.",
        "request_locked": "Too many wrong codes: this request is locked.",
        "not_found_title": "Unknown link",
        "not_found": "We could not find this link. Please check the full link in the SMS.",
        "forbidden_title": "The request could not be verified",
        "forbidden": "The page was open too long and your choices were not submitted. Tap “Open again” below and "
        "choose again.",
        "reopen": "Open again",
        "language": "中文",
    },
}


def pick_locale(explicit: str | None, accept_language: Any, fallback: str) -> str:
    """``?lang=`` first, then the browser's ``Accept-Language``, then the request's locale."""
    if explicit in LOCALES:
        return explicit
    best = accept_language.best_match(["zh-CN", "zh", "en"]) if accept_language else None
    if best:
        return "en" if best == "en" else "zh-CN"
    return fallback if fallback in LOCALES else DEFAULT_LOCALE


def translate(locale: str, key: str, **values: Any) -> str:
    return TEXTS.get(locale, TEXTS[DEFAULT_LOCALE])[key].format(**values)
