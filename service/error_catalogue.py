"""The error catalogue: every error ``code`` the service answers with, its HTTP status and what it means.

The spec lists it (``info.description``, and each operation's error examples), the README repeats it under
"Error codes", and ``tests/test_spec_examples.py`` keeps both, and ``service.errors.ERROR_CODES``, in step
with this table; ``tests/test_app.py`` scans the code for every code it answers with, and the status of
each. A new code goes here first: its status, one line for people, and the message an example shows (the
meaning when none is given).
"""

from __future__ import annotations

from typing import Any, NamedTuple


class ErrorCode(NamedTuple):
    status: int
    meaning: str
    #: The ``message`` an example of this error shows; the meaning when ``None``.
    message: str | None = None
    #: The ``errors`` an example shows, for codes that name what was wrong.
    details: dict[str, Any] | None = None


CATALOGUE: dict[str, ErrorCode] = {
    # The request itself
    "bad_request": ErrorCode(400, "The request could not be understood"),
    "malformed_json": ErrorCode(
        400,
        "The body is not valid JSON",
        "The browser (or proxy) sent a request that this server could not understand.",
        {"json": ["Invalid JSON body."]},
    ),
    "json_too_deep": ErrorCode(
        400, "The JSON body is nested too deeply", "JSON nested deeper than 32 levels is refused"
    ),
    "unauthorized": ErrorCode(401, "No API key, or an unknown or revoked one", "unknown or revoked API key"),
    "forbidden": ErrorCode(
        403, "The API key lacks the scope this operation needs", "this key lacks the scope: needs one of admin"
    ),
    "not_found": ErrorCode(
        404, "No such object in your organization (another organization's objects answer this too)", "not found"
    ),
    "method_not_allowed": ErrorCode(405, "The path does not answer this method"),
    "conflict": ErrorCode(409, "The request conflicts with the current state"),
    "gone": ErrorCode(410, "The link or resource existed and is no longer usable"),
    "payload_too_large": ErrorCode(413, "The body is larger than `MAX_CONTENT_LENGTH` (64 KiB)"),
    "unsupported_media_type": ErrorCode(415, "A body was sent without `Content-Type: application/json`"),
    "validation_error": ErrorCode(
        422,
        "A field is missing, unknown or invalid; `errors` names each",
        "The request was well-formed but was unable to be followed due to semantic errors.",
        {"json": {"birth_date": ["Not a valid date."], "face_image": ["Unknown field."]}},
    ),
    "invalid_cursor": ErrorCode(
        422,
        "`cursor` is not a `next_cursor` this list gave (another list's, or altered)",
        "not a cursor this list gave: pass the `next_cursor` of the last page",
        {"cursor": ["invalid"]},
    ),
    "rate_limited": ErrorCode(
        429,
        "Too many requests, or too many SMS to one phone; retry after `Retry-After` seconds",
        "1200 per 1 minute",
    ),
    "internal_error": ErrorCode(500, "An unexpected failure; nothing was changed", "Internal Server Error"),
    "service_unavailable": ErrorCode(
        503,
        "The database or another dependency did not answer in time; retry",
        "the database is unavailable; try again",
    ),
    "database_unavailable": ErrorCode(503, "Readiness: the database does not answer", "database unreachable"),
    "idempotency_key_reused": ErrorCode(
        422,
        "This `Idempotency-Key` was used with a different request",
        "this Idempotency-Key was used with a different request",
    ),
    "invalid_idempotency_key": ErrorCode(
        422, "`Idempotency-Key` must have 1 to 128 characters", "Idempotency-Key must have 1 to 128 characters"
    ),
    # The organization and its keys
    "invalid_name": ErrorCode(422, "An organization needs a name of 1 to 200 characters, an API key one of 1 to 100"),
    "too_many_keys": ErrorCode(
        422,
        "The organization already holds 100 keys that are not revoked (`MAX_ACTIVE_KEYS`); revoke one first",
        "the organization already holds 100 active keys: revoke one first",
    ),
    # Webhooks
    "webhook_url_refused": ErrorCode(
        422,
        "A webhook URL must be https and resolve to public addresses only (in production); "
        "http and loopback are allowed in development",
        "the URL must be https",
    ),
    "webhook_event_unknown": ErrorCode(
        422,
        'A webhook names one or more of the events listed in the README, "Webhooks"',
        "unknown events: consent.updated",
    ),
    "too_many_webhooks": ErrorCode(422, "An organization has at most 20 webhooks; delete one first"),
    "contact_required": ErrorCode(
        422,
        "An organization needs a contact people can reach",
        "an organization needs a contact people can reach (1 to 200 characters)",
    ),
    "invalid_scopes": ErrorCode(
        422, "API key scopes are among `admin`, `consents`, `verify`", "scopes must be among admin, consents, verify"
    ),
    # Purposes, notices, assessments, filings
    "prohibited_analysis": ErrorCode(
        422,
        "The purpose infers race, ethnicity, religion, health or social class from faces (R11)",
        "inferring race, ethnicity, religion, health or social class from a face is prohibited",
        {"analyses": ["race"]},
    ),
    "unknown_analysis": ErrorCode(
        422,
        "An analysis outside the documented list",
        "unknown analysis: declare only liveness, verification_1to1, identification_1toN, age_estimation, "
        "quality_check",
        {"analyses": ["mood"]},
    ),
    "alternative_required": ErrorCode(
        422, "The purpose offers no real non-biometric alternative (R6)", "describe the non-biometric alternative"
    ),
    "missing_locale": ErrorCode(
        422,
        "A text lacks a locale of `REQUIRED_LOCALES` (zh-CN by default); `errors` names each field and locale",
        "give every text people read in zh-CN",
        {"necessity": ["missing zh-CN"]},
    ),
    "purpose_exists": ErrorCode(409, "A purpose with this code exists", "purpose 'door_access' already exists"),
    "unknown_purpose": ErrorCode(
        422, "A purpose code your organization does not have", "unknown purposes", {"purposes": ["canteen_payment"]}
    ),
    "assessment_incomplete": ErrorCode(
        422,
        "An impact assessment content is missing or not real text (Measures Art. 9); `errors` names each",
        "each content needs at least 20 characters of real text",
        {"json": {"safeguards": ["needs at least 20 characters of real text"]}},
    ),
    "assessment_required": ErrorCode(
        409,
        "The purpose has no current impact assessment, or one is due after a major incident (R10)",
        "purpose 'door_access' has no current impact assessment",
    ),
    "already_filed": ErrorCode(
        409,
        "The first filing is already recorded: record a change filing",
        "the first filing is already recorded: record a change filing",
    ),
    "not_filed": ErrorCode(
        409,
        "A change filing needs a first filing recorded before it",
        "no first filing is recorded yet: a change filing follows one",
    ),
    # People and consents
    "subject_exists": ErrorCode(
        409, "A person with this `external_ref` is registered", "a subject with this external_ref already exists"
    ),
    "subject_erased": ErrorCode(409, "The person was erased", "this subject was erased"),
    "guardian_required": ErrorCode(
        409,
        "The person is under the guardian age: ask their guardian with `POST /v1/guardian-requests` (R4)",
        "this person is under the guardian age: consent must come from a parent or guardian "
        "through POST /v1/guardian-requests",
    ),
    "not_a_minor": ErrorCode(
        409,
        "The person is not under the guardian age: they consent themselves with `POST /v1/consents`",
        "this person is not under the guardian age: use POST /v1/consents",
    ),
    "stale_notice": ErrorCode(
        409,
        "The notice version shown is not the purpose's current one",
        "notice version 1 is not the current one (2)",
        {"current_version": 2},
    ),
    "consent_exists": ErrorCode(
        409,
        "A live (`active` or `pending_guardian`) consent to this purpose exists",
        "a live consent to this purpose exists",
    ),
    "consent_ended": ErrorCode(
        409, "The consent ended otherwise and cannot be withdrawn", "a declined consent cannot be withdrawn"
    ),
    "state_changed": ErrorCode(
        409, "Another request changed the same consent first; nothing was changed", "a consent was revoked meanwhile"
    ),
    "transmission_consent_required": ErrorCode(
        422,
        "The purpose transmits face data: `evidence.transmission_consent: true` is required (R9)",
        "purpose 'door_access' sends face data off the device: that needs its own act of consent, "
        "evidence.transmission_consent: true",
        {"purpose": "door_access"},
    ),
    # Guardian requests
    "invalid_phone": ErrorCode(
        422,
        "The guardian's phone is not a mobile number of `SMS_ALLOWED_REGIONS`",
        "not a mobile number of an allowed region",
        {"json": {"guardian": {"phone": ["not a mobile number of an allowed region"]}}},
    ),
    "recently_declined": ErrorCode(
        409,
        "The guardian declined a purpose recently: do not ask again before `errors.ask_again_after` (PIPL 16)",
        "the guardian declined these purposes recently",
        {"purposes": ["door_access"], "ask_again_after": {"door_access": "2026-12-27T09:00:00+00:00"}},
    ),
    "request_not_pending": ErrorCode(
        409, "The guardian request is no longer pending: it was decided or expired", "the request is approved"
    ),
    "not_paper_request": ErrorCode(
        409,
        "Only a `delivery: paper` request takes a written decision",
        "a delivery: sms request is decided by its link",
    ),
    "sms_budget_exhausted": ErrorCode(
        429,
        "Your organization's SMS budget for 24 hours is used up",
        "this organization's SMS budget for 24 hours is used up",
    ),
    "phone_erased": ErrorCode(
        429, "No phone is on record to send to any more", "there is no phone on record to send to"
    ),
    "no_guardian_phone": ErrorCode(
        409,
        "A child's page link goes to the guardian's phone, and no guardian request left one",
        "a child's link goes to the guardian's phone, and none is on record",
    ),
    # The guardian's and the person's pages (HTML; the codes show in their JSON answers and logs)
    "link_expired": ErrorCode(410, "The link has expired", "this link has expired"),
    "link_used": ErrorCode(410, "A decision was already made with this link"),
    "request_locked": ErrorCode(410, "The request was locked after too many wrong one-time codes"),
    "select_one": ErrorCode(422, "Guardian page: tick at least one purpose to approve, or decline"),
    "attestation_required": ErrorCode(422, "Guardian page: confirm being the child's parent or legal guardian"),
    "code_missing": ErrorCode(403, "Guardian page: the one-time code is missing"),
    "code_expired": ErrorCode(403, "Guardian page: the one-time code has expired"),
    "code_wrong": ErrorCode(403, "Guardian page: the one-time code is wrong"),
    "code_locked": ErrorCode(403, "Guardian page: too many wrong codes; the request is locked"),
    # Devices and places
    "prohibited_location": ErrorCode(
        422,
        "Recognition is prohibited in this private place: hotel rooms, bathrooms, changing and toilet areas (R7)",
        "face recognition devices may not be installed in hotel rooms, public bathhouses, changing rooms or toilets",
        {"location_type": ["prohibited: hotel_room"]},
    ),
    "signage_required": ErrorCode(
        422,
        "A device in a public place needs its posted signs and collection area (R7)",
        "a device in a public place needs evidence of prominent signs and a set collection area",
        {"collection_area": ["required in a public place: the area where faces are collected"]},
    ),
}


def error_example(code: str, *, message: str | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A real body of the one error shape (``service.errors.ErrorSchema``) for ``code``."""
    from service.errors import ErrorSchema

    entry = CATALOGUE[code]
    body: dict[str, Any] = {"code": code, "status": entry.status, "message": message or entry.message or entry.meaning}
    shown = details if details is not None else entry.details
    if shown:
        body["errors"] = shown
    if "request_id" in ErrorSchema().fields:
        # The error shape carries the request's id (issue 14): show one, as the log line has it.
        body["request_id"] = "3f9c2a7e5b1d4c8a9e6f0b2d7a4c1e58"
    return body


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table: in the spec's description and, verbatim, in the README."""
    rows = ["| code | status | meaning |", "|---|---|---|"]
    rows += [f"| `{code}` | {entry.status} | {entry.meaning} |" for code, entry in CATALOGUE.items()]
    return "\n".join(rows)
