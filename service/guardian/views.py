"""The guardian's pages: server-rendered, mobile first, usable without JavaScript, zh-CN and English."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, make_response, render_template, request
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
        return self.render("message.html", status, heading=self.t(heading_key), message=message, org=org)


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
        return None, page.message("gone_title", page.t(gone.code, org=org.name if org else ""), 410, org)
    except NotFound:
        return None, page.message("not_found_title", page.t("not_found"), 404)
    return link, None


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


def _decision_page(
    session: Session,
    link: GuardianLink,
    page: Page,
    *,
    flash: str | None = None,
    flash_kind: str = "info",
    ticked: list[str] | None = None,
    transmit: list[str] | None = None,
    transmit_errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    req = link.request
    org = session.get(Organization, req.org_id)
    purposes = [_purpose_view(c.purpose, page) for c in req.consents if c.status == "pending_guardian"]
    if not purposes:  # the organization withdrew every purpose of the request: nothing is left to decide
        return page.message("changed_title", page.t("nothing_pending", org=org.name if org else ""), 410, org)
    return page.render(
        "decide.html",
        status,
        org=org,
        purposes=purposes,
        needs_code=req.delivery == Delivery.QR,
        phone_tail=req.phone_masked[-4:],
        child_name=flow.child_display_name(req, protector()),
        expires=local_time(req.expires_at, page.locale),
        flash=flash,
        flash_kind=flash_kind,
        ticked=ticked or [],
        transmit_ticked=transmit or [],
        transmit_errors=transmit_errors or [],
        # A page shown again (a code sent, an error) keeps the guardian's confirmation as they left it.
        attested=request.method == "POST" and request.form.get("attest_guardian") == "yes",
    )


def _withdrawal_page(session: Session, link: GuardianLink, page: Page, *, flash: str | None = None) -> Response:
    req = link.request
    org = session.get(Organization, req.org_id)
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
    child_name = flow.child_display_name(req, protector())
    return page.render("withdraw.html", org=org, consents=consents, flash=flash, child_name=child_name)


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
    return _withdrawal_page(session, link, page)


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
        return _withdraw(session, link, page)
    action = request.form.get("action")
    ticked = [code for code in request.form.getlist("purpose") if code]
    transmit = [code for code in request.form.getlist("transmit") if code]
    if action == "send_code" and link.request.delivery == Delivery.QR:
        return _send_code(session, link, page, ticked, transmit)
    if action in {"approve", "decline"}:
        return _decide(session, link, page, approve=action == "approve", ticked=ticked, transmit=transmit)
    return _decision_page(session, link, page, status=400)


def _send_code(session: Session, link: GuardianLink, page: Page, ticked: list[str], transmit: list[str]) -> Response:
    req: GuardianRequest = link.request
    messenger = Messenger.of(current_app)
    try:
        reservation = messenger.reserve(session, req, "code")
    except flow.RateLimited as limited:
        session.rollback()
        key = "sms_budget" if limited.code == "sms_budget_exhausted" else "rate_limited"
        org = session.get(Organization, req.org_id)
        return _decision_page(
            session,
            link,
            page,
            flash=page.t(key, seconds=limited.retry_after, org=org.name if org else ""),
            flash_kind="error",
            ticked=ticked,
            transmit=transmit,
            status=429,
        )
    code = flow.issue_code(session, req, protector())
    messenger.queue_code(session, req, reservation, code)  # the dispatcher sends it after the commit
    session.commit()
    return _decision_page(session, link, page, flash=page.t("code_sent"), ticked=ticked, transmit=transmit)


def _shown_versions() -> dict[str, int]:
    """The notice version of each purpose as the page showed it (``notice_version_<code>`` fields)."""
    shown = {}
    for name, value in request.form.items():
        if name.startswith("notice_version_") and value.isascii() and value.isdigit() and len(value) < 10:
            shown[name.removeprefix("notice_version_")] = int(value)
    return shown


def _decide(
    session: Session, link: GuardianLink, page: Page, *, approve: bool, ticked: list[str], transmit: list[str]
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
        )
    except flow.CodeRejected as rejected:
        session.commit()  # the try is counted (and a lock recorded) even though nothing is decided
        if rejected.check is flow.CodeCheck.LOCKED:
            return page.message("gone_title", page.t("locked", org=org_name), 410, org)
        message = {
            flow.CodeCheck.WRONG: page.t("code_wrong", left=rejected.tries_left),
            flow.CodeCheck.EXPIRED: page.t("code_expired"),
            flow.CodeCheck.MISSING: page.t("code_missing"),
        }[rejected.check]
        return _decision_page(
            session, link, page, flash=message, flash_kind="error", ticked=ticked, transmit=transmit, status=400
        )
    except flow.DecisionRefused as refused:
        # Nothing recorded; the page comes back with the guardian's ticks as they left them, and a
        # transmission box ticked alone or missing is pointed out next to it (TransmissionRefused).
        session.rollback()
        return _decision_page(
            session,
            link,
            page,
            flash=page.t(refused.code),
            flash_kind="error",
            ticked=ticked,
            transmit=transmit,
            transmit_errors=(refused.details or {}).get("purposes", []),
            status=400,
        )
    except flow.NoticeChanged:
        session.rollback()
        return _decision_page(session, link, page, flash=page.t("notice_changed"), flash_kind="error", status=409)
    except flow.LinkGone as gone:
        session.rollback()
        return page.message("gone_title", page.t(gone.code, org=org_name), 410, org)
    except StateChanged:
        session.rollback()
        return page.message("changed_title", page.t("state_changed", org=org_name), 409, org)
    session.commit()
    withdrawal_sent, withdrawal_url = False, None
    if decision.withdrawal_token:
        withdrawal_sent = Messenger.of(current_app).send_withdrawal_link(session, req, decision.withdrawal_token)
        if not withdrawal_sent:
            # Not sent (the phone's allowance, a provider failure): the link is kept nowhere else, so the
            # guardian gets it here, on the page only they are looking at.
            withdrawal_url = flow.link_url(current_app.config["PUBLIC_URL"], decision.withdrawal_token)
    outcome = [
        {"code": c.purpose.code, "name": page.local(c.purpose.name), "status": c.status}
        for c in session.get(GuardianRequest, req.id).consents  # type: ignore[union-attr]
    ]
    decided_at = local_time(req.decided_at or utcnow(), page.locale)
    return page.render(
        "receipt.html",
        org=org,
        outcome=outcome,
        decided_at=decided_at,
        withdrawal_sent=withdrawal_sent,
        withdrawal_url=withdrawal_url,
    )


def _withdraw(session: Session, link: GuardianLink, page: Page) -> Response:
    consent_id = request.form.get("withdraw", "")
    try:
        consent: Consent = flow.withdraw(session, link, consent_id)
    except NotFound:
        session.rollback()
        return _withdrawal_page(session, link, page)
    session.commit()
    return _withdrawal_page(session, link, page, flash=page.t("withdrawn", name=page.local(consent.purpose.name)))
