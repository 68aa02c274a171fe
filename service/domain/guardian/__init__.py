"""The guardian flow for children under the guardian age (R4): requests, links, codes, decisions, withdrawal.

The HTTP layer commits; SMS are sent by the caller *after* the commit that made them necessary, so no
transaction (and no SQLite write lock) is held while a provider is slow, and a failed send never loses
the request: it stays ``pending`` with ``delivery_status: failed`` until resent.
"""

from service.domain.guardian.codes import OTP_MAX_FAILURES, CodeCheck, check_code, issue_code
from service.domain.guardian.common import link_url
from service.domain.guardian.decisions import WITHDRAWABLE, Decision, consents_of_child, decide, withdraw
from service.domain.guardian.links import LinkGone, resolve_link
from service.domain.guardian.messages import RateLimited, SmsOutcome, check_sms_allowance, record_sms
from service.domain.guardian.requests import (
    create_guardian_request,
    expire_if_due,
    expire_overdue_requests,
    get_request,
)

__all__ = [
    "OTP_MAX_FAILURES",
    "WITHDRAWABLE",
    "CodeCheck",
    "Decision",
    "LinkGone",
    "RateLimited",
    "SmsOutcome",
    "check_code",
    "check_sms_allowance",
    "consents_of_child",
    "create_guardian_request",
    "decide",
    "expire_if_due",
    "expire_overdue_requests",
    "get_request",
    "issue_code",
    "link_url",
    "record_sms",
    "resolve_link",
    "withdraw",
]
