"""``/report/<token>``: one organization's compliance report, opened through a signed, expiring link.

The token is all the page asks for, so anything wrong with it (forged, altered, expired, signed by a
retired key, revoked with all the organization's links, a consent token, an organization gone) answers
the same 404 page, which says nothing about
why. The token is in the URL: the answer is never cached (``no-store``), never sent on in ``Referer``
(``no-referrer``), never indexed (``X-Robots-Tag``), never framed, and loads nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, render_template, request

from service import db
from service.domain.report_links import revoked
from service.guardian.views import protect_page
from service.keys.report_links import InvalidReportLink, decode_report_link
from service.keys.signing import issuer, key_set
from service.models import Organization
from service.report.i18n import report_locale, translate
from service.report.page import compute_report, render_report_page

bp = Blueprint("report_page", __name__)


@bp.after_request
def protect_report(response: Response) -> Response:
    protect_page(response)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.get("/report/<token>")
def show(token: str) -> Response:
    locale = report_locale(request.args.get("lang"))
    try:
        claims = decode_report_link(token, key_set().public_keys, issuer=issuer())
    except InvalidReportLink:
        return _invalid(locale)
    org_id = claims["sub"]
    org = db.session().get(Organization, org_id)
    if org is None or revoked(org, claims["iat"]):
        return _invalid(locale)
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    html = render_report_page(compute_report(org_id), locale, link_expires_at=expires_at)
    return Response(html, mimetype="text/html")


def _invalid(locale: str) -> Response:
    html = render_template(
        "report_invalid.html",
        locale=locale,
        title=translate(locale, "link_invalid_title"),
        text=translate(locale, "link_invalid"),
    )
    return Response(html, status=404, mimetype="text/html")
