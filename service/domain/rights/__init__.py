"""People's rights (PIPL 44-50, R16): a page of their own, reached by a link, where a person (or a child's
guardian) sees their consents, withdraws one, takes a copy of their data, and files a correction or deletion
request or a complaint that the organization answers within 15 working days.

``links``: issuing and opening the page's links; ``person``: what the page shows and does; ``requests``:
the requests filed there, their due date, the organization's list and answer, and erasure.
"""

from service.domain.rights.links import (
    ACCESS_SMS,
    AccessLinkGone,
    IssuedLink,
    NoGuardianPhone,
    access_text,
    issue_access_link,
    latest_guardian_request,
    link_actor,
    page_url,
    resolve_access_link,
)
from service.domain.rights.person import (
    WITHDRAWABLE,
    consent_of_person,
    consents_of_person,
    copy_of_data,
    withdraw_on_page,
)
from service.domain.rights.requests import (
    DETAILS_MAX,
    DUE_WORKING_DAYS,
    KINDS,
    MAX_OPEN_PER_SUBJECT,
    OUTCOME_MAX,
    TooManyOpenRequests,
    close_rights_request,
    file_rights_request,
    forget_rights_of_subject,
    get_rights_request,
    list_rights_requests,
    requests_of_subject,
    rights_due_at,
)

__all__ = [
    "ACCESS_SMS",
    "DETAILS_MAX",
    "DUE_WORKING_DAYS",
    "KINDS",
    "MAX_OPEN_PER_SUBJECT",
    "OUTCOME_MAX",
    "WITHDRAWABLE",
    "AccessLinkGone",
    "IssuedLink",
    "NoGuardianPhone",
    "TooManyOpenRequests",
    "access_text",
    "close_rights_request",
    "consent_of_person",
    "consents_of_person",
    "copy_of_data",
    "file_rights_request",
    "forget_rights_of_subject",
    "get_rights_request",
    "issue_access_link",
    "latest_guardian_request",
    "link_actor",
    "list_rights_requests",
    "page_url",
    "requests_of_subject",
    "resolve_access_link",
    "rights_due_at",
    "withdraw_on_page",
]
