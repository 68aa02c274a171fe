"""Reports for compliance officers: JSON for machines, an HTML page with charts for people, links to it."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from schemas.reports import (
    ComplianceReportSchema,
    ReportLinkRequestSchema,
    ReportLinkSchema,
    ReportPageQuerySchema,
)
from service import db
from service.api import Blueprint
from service.domain.report_links import issue_report_link, revoke_report_links
from service.keys.api_keys import current_caller
from service.keys.signing import issuer, key_set
from service.report.page import compute_report, render_report_page

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/v1/reports",
    description="Compliance reports (R7, R10, R12)",
)

REPORT_LINK_EXAMPLE = {
    "url": "https://consent.example.cn/report/eyJhbGciOiJFUzI1NiIsImtpZCI6Ik1fTXg1Q1JkIiwidHlwIjoicmVwb3J0LWxpbmsrand0In0"
    ".eyJpc3MiOiJodHRwczovL2NvbnNlbnQuZXhhbXBsZS5jbiJ9.c2lnbmF0dXJl",
    "expires_at": "2026-12-04T09:00:00+00:00",
}


def current_report() -> dict[str, Any]:
    """The caller's report; committed, since computing it records the day's count of people (R12)."""
    return compute_report(current_caller().org_id)


@blp.route("/compliance")
class ComplianceReport(MethodView):
    @blp.authorized("admin")
    @blp.response(200, ComplianceReportSchema)
    def get(self) -> dict[str, Any]:
        """The compliance report

        `filing`: its `status` (`not_required`, `due`, `overdue`, `filed`), the `count` of distinct people
        with at least one active consent now against `FILING_THRESHOLD`, the day the count crossed it since
        it was last below (`crossed_on`; the count is recorded once a day, by this report and by
        `consent-gate sweep`) and the `deadline` 30 working days later (weekends, `FILING_HOLIDAYS` skipped;
        `FILING_EXTRA_WORKDAYS` counted); after a material notice change to a filed purpose, a change
        filing is due 30 working days after it (`due_filing: change`, `changed_on`). Then purposes with
        their assessments, assessments due within 30 days, devices by location type, minors with guardian
        consent, consents by status with written (paper) consents apart from online ones, verifications by
        decision and reason, consent events per day, deletions owed by recognition
        systems (pending, overdue among them, confirmed).
        """
        return current_report()


@blp.route("/compliance.html")
class ComplianceReportPage(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ReportPageQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, content_type="text/html", description="The report as a page with charts")
    def get(self, lang: str) -> Response:
        """The compliance report as an HTML page with charts, for compliance officers

        In Simplified Chinese by default, in English with `?lang=en`; each chart is followed by a table of
        the same numbers. To open it in a browser without an API key, issue a link
        (`POST /v1/reports/compliance/links`, or `consent-gate report --link`).
        """
        html = render_report_page(current_report(), lang)
        response = Response(html, mimetype="text/html")
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        return response


@blp.route("/compliance/links")
class ComplianceReportLinks(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ReportLinkRequestSchema)
    @blp.response(201, ReportLinkSchema, example=REPORT_LINK_EXAMPLE)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Issue a link that opens the HTML report without an API key

        The link opens this organization's report (`/report/<token>`) in any browser until `expires_at`,
        `hours` (1 to 720) from now; anyone who holds it can read the report, so hand it only to the
        compliance officer. It is signed with the service's signing key and cannot be changed to another
        organization or a later expiry; it stops working when it expires, when its signing key is retired,
        or when the organization revokes its links (`DELETE` on this path). Each link issued is recorded in
        the audit trail (`report_link.issued`, with its expiry).
        """
        caller = current_caller()
        session = db.session()
        issued = issue_report_link(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            hours=fields["hours"],
            keys=key_set(),
            issuer=issuer(),
            public_url=current_app.config["PUBLIC_URL"],
            locale=fields.get("lang"),
        )
        session.commit()
        return {"url": issued.url, "expires_at": issued.expires_at}

    @blp.authorized("admin")
    @blp.response(204)
    def delete(self) -> None:
        """Revoke every link to the report issued so far

        Every link of this organization issued up to this second stops opening (the page answers as for
        any invalid link); links issued from the next second on open as usual. Use it when a link leaked:
        links are not stored, so they are revoked all at once, and the compliance officer asks for a new
        one. Asking for a link within the same second as a revocation answers 409 `conflict`. Recorded in
        the audit trail (`report_links.revoked`).
        """
        caller = current_caller()
        session = db.session()
        revoke_report_links(session, org_id=caller.org_id, actor=caller.actor)
        session.commit()
