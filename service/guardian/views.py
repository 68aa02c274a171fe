"""The guardian's pages: server-rendered, mobile first, usable without JavaScript, zh-CN and English."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import db
from service.domain import guardian as flow
from service.domain.consent_lifecycle import StateChanged, effective_status
from service.domain.guardian import Messenger, local_time
from service.domain.purposes import LOCALIZED_FIELDS, in_locale
from service.domain.statuses import Delivery
from service.errors import NotFound
from service.guardian.i18n import pick_locale, translate
from service.keys.crypto import constant_time_equal, token_hash
from service.keys.data_key import protector
from service.models import Consent, GuardianLink, GuardianRequest, Organization, Purpose, utcnow

bp = Blueprint("guardian", __name__, template_folder="templates")

CSRF_COOKIE = "cg_csrf"


@dataclass(frozen=True)
class Localized:
    """A text and the language it is in, which may differ from the page's (``lang`` on its element)."""

    text: str
    lang: str

    def __str__(self) -> str:
        return self.text


class Page:
    """What every page needs: the locale, the translator, the CSRF pair (its cookie scoped to the pages)."""

    cookie_path = "/g/"

    def __init__(self, link_hash: str, fallback_locale: str):
        self.locale = pick_locale(request.args.get("lang"), request.accept_languages, fallback_locale)
        self.link_hash = link_hash
        self.cookie = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)

    def t(self, key: str, **values: Any) -> str:
        return translate(self.locale, key, **values)

    def local(self, texts: dict[str, str]) -> Localized:
        """A text the organization wrote, in the page's language where it was given (R1)."""
        text, lang = in_locale(texts, self.locale)
        return Localized(text, lang)

    @property
    def csrf_token(self) -> str:
        return protector().form_token(self.cookie, self.link_hash)

    def csrf_ok(self) -> bool:
        posted = request.form.get("csrf_token", "")
        return CSRF_COOKIE in request.cookies and constant_time_equal(self.csrf_token, posted)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        body = render_template(template, locale=self.locale, t=self.t, csrf_token=self.csrf_token, **context)
        response = make_response(body, status)
        response.set_cookie(
            CSRF_COOKIE,
            self.cookie,
            httponly=True,
            samesite="Strict",
            path=self.cookie_path,
            secure=current_app.config["PUBLIC_URL"].startswith("https://"),
        )
        return response

    def message(self, heading_key: str, message: str, status: int, org: Organization | None = None) -> Response:
        # A form refused for its CSRF token (open too long, the cookie gone) offers the page again by a GET of
        # the same link: reloading would post the refused form once more.
        reopen = f"{request.path}?lang={self.locale}" if heading_key == "forbidden_title" else None
        return self.render(
            "message.html", status, heading=self.t(heading_key), message=message, org=org, reopen_url=reopen
        )


@bp.after_request
def protect_page(response: Response) -> Response:
    # The link token is in the URL: never cache, never leak it through Referer, never frame.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _open(session: Session, token: str) -> tuple[GuardianLink | None, Response | None]:
    """Resolve the link, or answer the page that says why it cannot be used."""
    page = Page(token_hash(token), "zh-CN")
    try:
        link = flow.resolve_link(session, token)
    except flow.LinkGone as gone:
        session.commit()  # an expiry found on the way is recorded
        org = _org_of_token(session, token)
        decided = _decided_request_of_token(session, token) if gone.code == "link_used" else None
        if decided is not None:
            # A used decision link says what was decided with it, and where withdrawal is (its SMS).
            page = Page(token_hash(token), decided.locale)
            return None, _receipt(session, decided, page, used=True, status=410)
        return None, page.message("gone_title", page.t(gone.code, org=org.name if org else ""), 410, org)
    except NotFound:
        return None, page.message("not_found_title", page.t("not_found"), 404)
    return link, None


def _decided_request_of_token(session: Session, token: str) -> GuardianRequest | None:
    link = session.scalars(select(GuardianLink).where(GuardianLink.token_hash == token_hash(token))).first()
    if link is None or link.kind != "decision" or link.request.decided_at is None:
        return None
    return link.request


def _org_of_token(session: Session, token: str) -> Organization | None:
    link = session.scalars(select(GuardianLink).where(GuardianLink.token_hash == token_hash(token))).first()
    return session.get(Organization, link.request.org_id) if link else None


def _purpose_view(purpose: Purpose, page: Page) -> dict[str, Any]:
    """Everything a guardian is told about a purpose (R1), in the page's language where it was given."""
    return {
        "code": purpose.code,
        "notice_version": purpose.notice_version,
        **{name: page.local(getattr(purpose, name)) for name in LOCALIZED_FIELDS},
        "capture": purpose.capture,
        "retention_days": purpose.retention_days,
        "transmits_face_data": purpose.transmits_face_data,
        "notice": page.local(purpose.current_notice.texts),
    }


#: Where each refusal of the decision form is shown: beside the field it is about (``errors`` key).
ERROR_FIELDS = {
    "select_one": "purposes",
    "transmission_consent_required": "purposes",
    "notice_changed": "purposes",
    "attestation_required": "attest",
    "code_wrong": "otp",
    "code_expired": "otp",
    "code_missing": "otp",
    "rate_limited": "otp",
    "rate_limited_minutes": "otp",
    "sms_budget": "otp",
    "sms_failed": "otp",
}


def _decision_page(
    session: Session,
    link: GuardianLink,
    page: Page,
    *,
    errors: dict[str, str] | None = None,
    note: str | None = None,
    ticked: list[str] | None = None,
    transmit: list[str] | None = None,
    transmit_errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    """The decision form; ``errors`` (field → message) stand beside their field, the first one focused."""
    req = link.request
    org = session.get(Organization, req.org_id)
    purposes = [_purpose_view(c.purpose, page) for c in req.consents if c.status == "pending_guardian"]
    if not purposes:  # the organization withdrew every purpose of the request: nothing is left to decide
        return page.message("changed_title", page.t("nothing_pending", org=org.name if org else ""), 410, org)
    errors = errors or {}
    # Without JavaScript, ``autofocus`` is what moves the focus to the first error (in the page's order).
    order = ["purposes", "attest", "otp"] if req.delivery != Delivery.QR else ["purposes", "otp", "attest"]
    first_error = next((field for field in order if field in errors), None)
    if first_error is None and note:
        first_error = "otp"  # a code was just sent: the next thing to do is to type it
    return page.render(
        "decide.html",
        status,
        org=org,
        purposes=purposes,
        needs_code=req.delivery == Delivery.QR,
        phone_tail=req.phone_masked[-4:],
        child_name=flow.child_display_name(req, protector()),
        expires=local_time(req.expires_at, page.locale),
        errors=errors,
        note=note,
        focus=first_error,
        ticked=ticked or [],
        transmit_ticked=transmit or [],
        transmit_errors=transmit_errors or [],
        # A page shown again (a code sent, an error) keeps the guardian's confirmation as they left it.
        attested=request.method == "POST" and request.form.get("attest_guardian") == "yes",
    )


def _error(page: Page, key: str, **values: Any) -> dict[str, str]:
    return {ERROR_FIELDS[key]: page.t(key, **values)}


def _withdrawal_page(
    session: Session, link: GuardianLink, page: Page, *, flash: str | None = None, status: int = 200
) -> Response:
    req = link.request
    org = session.get(Organization, req.org_id)
    consents = _consents_of_child(session, req, page)
    child_name = flow.child_display_name(req, protector())
    return page.render("withdraw.html", status, org=org, consents=consents, flash=flash, child_name=child_name)


def _consents_of_child(session: Session, req: GuardianRequest, page: Page) -> list[dict[str, Any]]:
    now = utcnow()
    consents = []
    for consent in flow.consents_of_child(session, req):
        status = effective_status(consent, now)
        consents.append(
            {
                "id": consent.id,
                "name": page.local(consent.purpose.name),
                "alternative": page.local(consent.purpose.alternative),
                "status": status,
                "withdrawable": status in flow.WITHDRAWABLE,
            }
        )
    return consents


@bp.get("/g/<token>")
def show(token: str) -> Response:
    session = db.session()
    link, refusal = _open(session, token)
    if refusal is not None:
        return refusal
    assert link is not None
    page = Page(link.token_hash, link.request.locale)
    if link.kind == "decision":
        return _decision_page(session, link, page)
    withdrawn = request.args.get("withdrawn", "")
    flash = None
    for item in _consents_of_child(session, link.request, page) if withdrawn else []:
        if item["id"] == withdrawn and item["status"] == "revoked":
            flash = page.t("withdrawn", name=item["name"])
    return _withdrawal_page(session, link, page, flash=flash)


@bp.get("/g/r/<token>")
def receipt(token: str) -> Response:
    """The receipt of a decision: reachable again later, in either language; it decides nothing."""
    session = db.session()
    page = Page(token_hash(token), "zh-CN")
    try:
        req = flow.resolve_receipt(session, token)
    except NotFound:
        return page.message("not_found_title", page.t("not_found"), 404)
    page = Page(token_hash(token), req.locale)
    # Only when the withdrawal SMS could not go: its link, kept in this browser alone (see _decide).
    withdrawal_token = request.cookies.get(WITHDRAWAL_COOKIE)
    withdrawal_url = None
    if withdrawal_token and 20 <= len(withdrawal_token) <= 100 and withdrawal_token.isascii():
        withdrawal_url = flow.link_url(current_app.config["PUBLIC_URL"], withdrawal_token)
    return _receipt(session, req, page, withdrawal_url=withdrawal_url)


def short_reference(request_id: str) -> str:
    """What a guardian reads out on the phone: the request id's first 8 characters, ``2657 C6C7``.

    The organization finds the request by the id that starts with them (lowercase, without the space).
    """
    head = request_id.replace("-", "")[:8].upper()
    return f"{head[:4]} {head[4:]}"


#: Carries a withdrawal link the SMS could not, from the decision to its receipt, in the guardian's browser.
WITHDRAWAL_COOKIE = "cg_withdrawal"


def _receipt(
    session: Session,
    req: GuardianRequest,
    page: Page,
    *,
    used: bool = False,
    withdrawal_url: str | None = None,
    status: int = 200,
) -> Response:
    """What was decided, purpose by purpose, when, and the reference the organization knows it by."""
    org = session.get(Organization, req.org_id)
    now = utcnow()
    outcome = []
    for consent in sorted(req.consents, key=lambda c: c.purpose.code):
        if consent.status == "pending_guardian":
            continue
        current = effective_status(consent, now)
        approved = consent.granted_at is not None
        outcome.append(
            {
                "code": consent.purpose.code,
                "name": page.local(consent.purpose.name),
                "approved": approved,
                # Ticked, but the organization's impact assessment had lapsed by the decision (R10): not
                # granted, for a reason of the organization's, not the guardian's.
                "not_effective": not approved and consent.end_reason == "assessment_required",
                "alternative": page.local(consent.purpose.alternative),
                "status": current,
                # Withdrawn or ended since the decision: said beside it.
                "now": current if approved and current != "active" else None,
            }
        )
    return page.render(
        "receipt.html",
        status,
        org=org,
        used=used,
        outcome=outcome,
        any_approved=any(item["approved"] for item in outcome),
        child_name=flow.child_display_name(req, protector()),
        decided_at=local_time(req.decided_at or now, page.locale),
        reference=req.id,
        short_reference=short_reference(req.id),
        withdrawal_url=withdrawal_url,
    )


@bp.post("/g/<token>")
def act(token: str) -> Response:
    session = db.session()
    link, refusal = _open(session, token)
    if refusal is not None:
        return refusal
    assert link is not None
    page = Page(link.token_hash, link.request.locale)
    if not page.csrf_ok():
        return page.message("forbidden_title", page.t("forbidden"), 403)
    if link.kind == "withdrawal":
        if "confirm" in request.form:
            return _withdraw(session, link, page, token, request.form.get("confirm", ""))
        return _confirm_withdrawal(session, link, page, request.form.get("withdraw", ""))
    action = request.form.get("action")
    ticked = [code for code in request.form.getlist("purpose") if code]
    transmit = [code for code in request.form.getlist("transmit") if code]
    if action == "send_code" and link.request.delivery == Delivery.QR:
        return _send_code(session, link, page, ticked, transmit)
    if action in {"approve", "decline"}:
        return _decide(session, link, page, token, approve=action == "approve", ticked=ticked, transmit=transmit)
    return _decision_page(session, link, page, status=400)


def _send_code(session: Session, link: GuardianLink, page: Page, ticked: list[str], transmit: list[str]) -> Response:
    req: GuardianRequest = link.request
    messenger = Messenger.of(current_app)
    try:
        reservation = messenger.reserve(session, req, "code")
    except flow.RateLimited as limited:
        session.rollback()
        key = "sms_budget" if limited.code == "sms_budget_exhausted" else "rate_limited"
        seconds = int(limited.retry_after)
        if key == "rate_limited" and seconds >= 60:
            key = "rate_limited_minutes"  # a wait of minutes is said in minutes, rounded up
        org = session.get(Organization, req.org_id)
        return _decision_page(
            session,
            link,
            page,
            errors=_error(page, key, seconds=seconds, minutes=-(-seconds // 60), org=org.name if org else ""),
            ticked=ticked,
            transmit=transmit,
            status=429,
        )
    code = flow.issue_code(session, req, protector())
    messenger.queue_code(session, req, reservation, code)  # the dispatcher sends it after the commit
    session.commit()
    return _decision_page(session, link, page, note=page.t("code_sent"), ticked=ticked, transmit=transmit)


def _shown_versions() -> dict[str, int]:
    """The notice version of each purpose as the page showed it (``notice_version_<code>`` fields)."""
    shown = {}
    for name, value in request.form.items():
        if name.startswith("notice_version_") and value.isascii() and value.isdigit() and len(value) < 10:
            shown[name.removeprefix("notice_version_")] = int(value)
    return shown


def _decide(
    session: Session,
    link: GuardianLink,
    page: Page,
    token: str,
    *,
    approve: bool,
    ticked: list[str],
    transmit: list[str],
) -> Response:
    req: GuardianRequest = link.request
    org = session.get(Organization, req.org_id)
    org_name = org.name if org else ""
    try:
        decision = flow.decide(
            session,
            link,
            approve=approve,
            ticked=ticked,
            attested=request.form.get("attest_guardian") == "yes",
            code=request.form.get("otp"),
            protector=protector(),
            shown_versions=_shown_versions(),
            transmit=transmit,
            messenger=Messenger.of(current_app),  # the withdrawal SMS is queued in the decision's transaction
        )
    except flow.CodeRejected as rejected:
        session.commit()  # the try is counted (and a lock recorded) even though nothing is decided
        if rejected.check is flow.CodeCheck.LOCKED:
            return page.message("gone_title", page.t("locked", org=org_name), 410, org)
        key = {
            flow.CodeCheck.WRONG: "code_wrong",
            flow.CodeCheck.EXPIRED: "code_expired",
            flow.CodeCheck.MISSING: "code_missing",
        }[rejected.check]
        return _decision_page(
            session,
            link,
            page,
            errors=_error(page, key, left=rejected.tries_left),
            ticked=ticked,
            transmit=transmit,
            status=400,
        )
    except flow.DecisionRefused as refused:
        # Nothing recorded; the page comes back with the guardian's ticks as they left them, and a
        # transmission box ticked alone or missing is pointed out next to it (TransmissionRefused).
        session.rollback()
        return _decision_page(
            session,
            link,
            page,
            errors=_error(page, refused.code),
            ticked=ticked,
            transmit=transmit,
            transmit_errors=(refused.details or {}).get("purposes", []),
            status=400,
        )
    except flow.NoticeChanged:
        session.rollback()
        return _decision_page(session, link, page, errors=_error(page, "notice_changed"), status=409)
    except flow.LinkGone as gone:
        session.rollback()
        return page.message("gone_title", page.t(gone.code, org=org_name), 410, org)
    except StateChanged:
        session.rollback()
        return page.message("changed_title", page.t("state_changed", org=org_name), 409, org)
    receipt_token = flow.issue_receipt(session, req, utcnow())
    session.commit()  # the decision, its receipt and the withdrawal SMS (reservation and outbox row) at once
    withdrawal_sent = decision.withdrawal_queued
    # POST/redirect/GET: the receipt is a page of its own, so Back and reload never post the form again.
    response = make_response(redirect(f"/g/r/{receipt_token}?lang={page.locale}", 303))
    if decision.withdrawal_token and not withdrawal_sent:
        # Not queued (the phone's allowance was used up): the link is kept nowhere on our side, so
        # the guardian gets it on the receipt, carried there by a cookie of this browser and that page only.
        response.set_cookie(
            WITHDRAWAL_COOKIE,
            decision.withdrawal_token,
            httponly=True,
            samesite="Strict",
            path=f"/g/r/{receipt_token}",
            secure=current_app.config["PUBLIC_URL"].startswith("https://"),
        )
    return response


def _confirm_withdrawal(session: Session, link: GuardianLink, page: Page, consent_id: str) -> Response:
    """The step between the withdraw button and the withdrawal: what it does, and a way back."""
    item = next((c for c in _consents_of_child(session, link.request, page) if c["id"] == consent_id), None)
    if item is None or not item["withdrawable"]:
        return _withdrawal_page(session, link, page, status=404 if item is None else 409)
    org = session.get(Organization, link.request.org_id)
    return page.render("withdraw_confirm.html", org=org, item=item, back_url=f"?lang={page.locale}")


def _withdraw(session: Session, link: GuardianLink, page: Page, token: str, consent_id: str) -> Response:
    try:
        consent: Consent = flow.withdraw(session, link, consent_id)
    except NotFound:
        session.rollback()
        return _withdrawal_page(session, link, page, status=404)
    session.commit()
    # POST/redirect/GET, as after a decision; the list then says what was withdrawn.
    return make_response(redirect(f"/g/{token}?lang={page.locale}&withdrawn={consent.id}", 303))
