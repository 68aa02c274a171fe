"""The guardian flow for children under the guardian age (R4): requests, links, codes, decisions (on the
guardian's page, or on a signed paper form: ``paper``), withdrawal, and the SMS that carry them
(``messaging``: each send reserved in the allowance, delivered after commit).

The HTTP layer commits; SMS are delivered by the caller *after* the commit that reserved them, so no
transaction (and no SQLite write lock) is held while a provider is slow, and a failed send never loses
the request: it stays ``pending`` with ``delivery_status: failed`` until resent.
"""

from service.domain.guardian.codes import OTP_MAX_FAILURES, CodeCheck, check_code, issue_code
from service.domain.guardian.common import link_url
from service.domain.guardian.decisions import (
    WITHDRAWABLE,
    CodeRejected,
    Decision,
    DecisionRefused,
    NoticeChanged,
    TransmissionRefused,
    consents_of_child,
    decide,
    withdraw,
)
from service.domain.guardian.links import RECEIPT_DAYS, LinkGone, issue_receipt, resolve_link, resolve_receipt
from service.domain.guardian.messages import RateLimited, SmsOutcome, check_sms_allowance
from service.domain.guardian.messaging import Messenger, local_time
from service.domain.guardian.paper import PAPER_ANSWERS, NotPaperRequest, record_paper_decision
from service.domain.guardian.requests import (
    GUARDIAN_REFUSALS,
    RecentlyDeclined,
    child_display_name,
    create_guardian_request,
    expire_if_due,
    expire_overdue_requests,
    get_request,
    list_requests,
    refuse_reasking,
    renew_decision_link,
)

__all__ = [
    "GUARDIAN_REFUSALS",
    "OTP_MAX_FAILURES",
    "PAPER_ANSWERS",
    "RECEIPT_DAYS",
    "WITHDRAWABLE",
    "CodeCheck",
    "CodeRejected",
    "Decision",
    "DecisionRefused",
    "LinkGone",
    "Messenger",
    "NotPaperRequest",
    "NoticeChanged",
    "RateLimited",
    "RecentlyDeclined",
    "SmsOutcome",
    "TransmissionRefused",
    "check_code",
    "check_sms_allowance",
    "child_display_name",
    "consents_of_child",
    "create_guardian_request",
    "decide",
    "expire_if_due",
    "expire_overdue_requests",
    "get_request",
    "issue_code",
    "issue_receipt",
    "link_url",
    "list_requests",
    "local_time",
    "record_paper_decision",
    "refuse_reasking",
    "renew_decision_link",
    "resolve_link",
    "resolve_receipt",
    "withdraw",
]
