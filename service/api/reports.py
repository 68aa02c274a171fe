"""Reports for compliance officers: JSON for machines, an HTML page with charts for people."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, render_template
from flask.views import MethodView

from schemas.reports import ComplianceReportSchema
from service import db
from service.api import Blueprint
from service.charts import horizontal_bars, stacked_columns
from service.domain.filing import parse_dates
from service.domain.reports import CONSENT_KINDS, compliance_report
from service.keys.api_keys import current_caller

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/v1/reports",
    description="Compliance reports (R7, R10, R12)",
    template_folder="../templates",
)


def current_report() -> dict[str, Any]:
    """The caller's report; committed, since computing it records the day's count of people (R12)."""
    config = current_app.config
    session = db.session()
    report = compliance_report(
        session,
        org_id=current_caller().org_id,
        threshold=config["FILING_THRESHOLD"],
        holidays=parse_dates(config["FILING_HOLIDAYS"]),
        extra_workdays=parse_dates(config["FILING_EXTRA_WORKDAYS"]),
        deletion_hours=config["DELETION_HOURS"],
    )
    session.commit()
    return report


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
    @blp.response(200, content_type="text/html", description="The report as a page with charts")
    def get(self) -> Response:
        """The compliance report as an HTML page with charts, for compliance officers

        The figures of `GET /v1/reports/compliance`, each chart with its table. Scope: `admin`.
        """
        report = current_report()
        consent_chart = stacked_columns(
            report["consents_over_time"], CONSENT_KINDS, title="Consent events per day by kind"
        )
        verification_chart = horizontal_bars(
            [(f"{v['decision']}: {v['reason']}", v["count"], v["decision"]) for v in report["verifications"]],
            title="Verifications by decision and reason",
        )
        html = render_template(
            "report.html", report=report, consent_chart=consent_chart, verification_chart=verification_chart
        )
        return Response(html, mimetype="text/html")
