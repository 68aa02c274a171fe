"""The person's own page (R16): server-rendered, no JavaScript needed, zh-CN and English, like the guardian's.

``/p/<token>`` lists the person's consents; its forms withdraw one (``withdraw``, then ``confirm``) and file
a correction or deletion request or a complaint (``action=request``); ``/p/<token>/copy.json`` downloads a
copy of their data. Every form carries the CSRF token of the guardian pages, bound to a ``SameSite=Strict``
cookie and to this link; responses are never cached and never leak the link through ``Referer``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import db
from service.domain import rights
from service.domain.consent_lifecycle import effective_status
from service.domain.filing import parse_dates
from service.domain.guardian import local_time
from service.errors import DomainError, NotFound
from service.guardian.views import Page, protect_page
from service.keys.crypto import token_hash
from service.models import AccessLink, Consent, Organization, utcnow
from service.people.i18n import translate

bp = Blueprint("people", __name__, template_folder="templates")
bp.after_request(protect_page)


class PersonPage(Page):
    """A guardian page's machinery, with the person's texts and the CSRF cookie scoped to ``/p/``."""

    cookie_path = "/p/"

    def t(self, key: str, **values: Any) -> str:
        return translate(self.locale, key, **values)


def _open(session: Session, token: str) -> tuple[AccessLink | None, PersonPage, Response | None]:
    """Resolve the link, or answer the page that says why it cannot be used (404, 410)."""
    page = PersonPage(token_hash(token), "zh-CN")
    try:
        return rights.resolve_access_link(session, token), page, None
    except rights.AccessLinkGone:
        gone = session.scalars(select(AccessLink).where(AccessLink.token_hash == token_hash(token))).first()
        org = session.get(Organization, gone.org_id) if gone else None
        return None, page, page.message("gone_title", page.t("link_expired", org=org.name if org else ""), 410, org)
    except NotFound:
        return None, page, page.message("not_found_title", page.t("not_found"), 404)


def _consent_view(consent: Consent, page: PersonPage, now: Any) -> dict[str, Any]:
    status = effective_status(consent, now)
    return {
        "id": consent.id,
        "name": page.local(consent.purpose.name),
        "description": page.local(consent.purpose.description),
        "alternative": page.local(consent.purpose.alternative),
        "notice_version": consent.notice_version,
        "status": status,
        "withdrawable": status in rights.WITHDRAWABLE,
    }


def _person_page(
    session: Session,
    link: AccessLink,
    page: PersonPage,
    token: str,
    *,
    flash: str | None = None,
    flash_kind: str = "info",
    status: int = 200,
    kind: str = "",
    details: str = "",
) -> Response:
    org = session.get(Organization, link.org_id)
    now = utcnow()
    filed = [
        {
            "id": item.id,
            "kind": item.kind,
            "status": item.status,
            "due": local_time(item.due_at, page.locale),
            "outcome": item.outcome,
        }
        for item in rights.requests_of_subject(session, link)
    ]
    return page.render(
        "people/page.html",
        status,
        org=org,
        guardian=link.holder == "guardian",
        consents=[_consent_view(consent, page, now) for consent in rights.consents_of_person(session, link)],
        filed=filed,
        kinds=rights.KINDS,
        kind=kind,
        details=details,
        details_max=rights.DETAILS_MAX,
        due_days=rights.DUE_WORKING_DAYS,
        copy_url=f"/p/{token}/copy.json",
        expires=local_time(link.expires_at, page.locale),
        flash=flash,
        flash_kind=flash_kind,
    )


@bp.get("/p/<token>")
def show(token: str) -> Response:
    session = db.session()
    link, page, refusal = _open(session, token)
    if refusal is not None:
        return refusal
    assert link is not None
    return _person_page(session, link, page, token)


@bp.get("/p/<token>/copy.json")
def copy(token: str) -> Response:
    """A copy of the person's data (PIPL 45), as a file download."""
    session = db.session()
    link, _page, refusal = _open(session, token)
    if refusal is not None:
        return refusal
    assert link is not None
    body = json.dumps(rights.copy_of_data(session, link), ensure_ascii=False, indent=2, sort_keys=True)
    day = utcnow().date().isoformat()
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="personal-data-{day}.json"'},
    )


@bp.post("/p/<token>")
def act(token: str) -> Response:
    session = db.session()
    link, page, refusal = _open(session, token)
    if refusal is not None:
        return refusal
    assert link is not None
    if not page.csrf_ok():
        return page.message("forbidden_title", page.t("forbidden"), 403)
    if "confirm" in request.form:
        return _withdraw(session, link, page, token, request.form.get("confirm", ""))
    if "withdraw" in request.form:
        return _confirm(session, link, page, token, request.form.get("withdraw", ""))
    if request.form.get("action") == "request":
        return _file_request(session, link, page, token)
    return _person_page(session, link, page, token, status=400)


def _confirm(session: Session, link: AccessLink, page: PersonPage, token: str, consent_id: str) -> Response:
    """The step between the withdraw button and the withdrawal: what withdrawing does, and a way back."""
    try:
        consent = rights.consent_of_person(session, link, consent_id)
    except NotFound:
        return _person_page(session, link, page, token, flash=page.t("not_yours"), flash_kind="error", status=404)
    item = _consent_view(consent, page, utcnow())
    if not item["withdrawable"]:
        return _person_page(session, link, page, token, flash=page.t("cannot_withdraw"), flash_kind="error", status=409)
    org = session.get(Organization, link.org_id)
    return page.render("people/confirm.html", org=org, item=item, back_url=f"/p/{token}")


def _withdraw(session: Session, link: AccessLink, page: PersonPage, token: str, consent_id: str) -> Response:
    try:
        consent = rights.withdraw_on_page(session, link, consent_id)
    except NotFound:
        session.rollback()
        return _person_page(session, link, page, token, flash=page.t("not_yours"), flash_kind="error", status=404)
    except DomainError:  # ended meanwhile (expired, erased): nothing to withdraw
        session.rollback()
        return _person_page(session, link, page, token, flash=page.t("cannot_withdraw"), flash_kind="error", status=409)
    session.commit()
    return _person_page(session, link, page, token, flash=page.t("withdrawn", name=page.local(consent.purpose.name)))


def _file_request(session: Session, link: AccessLink, page: PersonPage, token: str) -> Response:
    kind = request.form.get("kind", "")
    details = request.form.get("details", "")
    org = session.get(Organization, link.org_id)
    org_name = org.name if org else ""
    try:
        filed = rights.file_rights_request(
            session,
            link,
            kind=kind,
            details=details,
            holidays=parse_dates(current_app.config["FILING_HOLIDAYS"]),
            extra_workdays=parse_dates(current_app.config["FILING_EXTRA_WORKDAYS"]),
        )
    except rights.TooManyOpenRequests:
        session.rollback()
        message = page.t("request_limit", org=org_name)
        return _person_page(session, link, page, token, flash=message, flash_kind="error", status=429)
    except DomainError:
        session.rollback()
        message = page.t("request_invalid", max=rights.DETAILS_MAX)
        kept = details[: rights.DETAILS_MAX]
        return _person_page(
            session, link, page, token, flash=message, flash_kind="error", status=400, kind=kind, details=kept
        )
    session.commit()
    message = page.t("request_filed", org=org_name, due=local_time(filed.due_at, page.locale))
    return _person_page(session, link, page, token, flash=message)
