"""The compliance report as an HTML page, in Simplified Chinese or English: each chart with its table."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import current_app, render_template

from service import db
from service.charts import horizontal_bars, legend, stacked_columns
from service.domain.filing import parse_dates
from service.domain.guardian import local_time
from service.domain.purposes import in_locale
from service.domain.reports import CONSENT_KINDS, compliance_report
from service.domain.statuses import ConsentStatus
from service.report.i18n import label, translate

_NOTICE_CHANGE = re.compile(r"material notice change \(version (\d+)\)")


def compute_report(org_id: str) -> dict[str, Any]:
    """The organization's report, committed: computing it records the day's count of people (R12)."""
    config = current_app.config
    session = db.session()
    report = compliance_report(
        session,
        org_id=org_id,
        threshold=config["FILING_THRESHOLD"],
        holidays=parse_dates(config["FILING_HOLIDAYS"]),
        extra_workdays=parse_dates(config["FILING_EXTRA_WORKDAYS"]),
        deletion_hours=config["DELETION_HOURS"],
    )
    session.commit()
    return report


def _when(value: str | datetime, locale: str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return local_time(moment, locale)


def _due_reason(locale: str, due: dict[str, Any]) -> str:
    """Why an assessment is listed, in the page's language (``outdated_reason`` is stored in English)."""
    reason = str(due["reason"])
    if reason == "expired":
        return translate(locale, "due_expired")
    if reason == "due within 30 days":
        return translate(locale, "due_soon")
    change = _NOTICE_CHANGE.fullmatch(reason)
    if change:
        return translate(locale, "due_notice_change", version=change.group(1))
    return f"{translate(locale, 'due_outdated')}: {reason}" if due.get("outdated") else reason


def _consents(report: dict[str, Any], locale: str) -> dict[str, Any]:
    days = report["consents_over_time"]
    totals = {kind: sum(int(day[kind]) for day in days) for kind in CONSENT_KINDS}
    names = {kind: label(locale, "event", kind) for kind in CONSENT_KINDS}
    described = ", ".join(f"{names[kind]} {totals[kind]}" for kind in CONSENT_KINDS)
    peak = max([sum(int(day[kind]) for kind in CONSENT_KINDS) for day in days] + [0])
    return {
        "chart": stacked_columns(
            days,
            CONSENT_KINDS,
            chart_id="consents-chart",
            title=translate(locale, "consents_chart"),
            description=translate(locale, "consents_desc", totals=described),
            peak_label=translate(locale, "peak", value=peak),
        ),
        "legend": legend("consents-chart", [(kind, names[kind]) for kind in CONSENT_KINDS]),
        "kinds": [(kind, names[kind]) for kind in CONSENT_KINDS],
        "days": [{**day, "total": sum(int(day[kind]) for kind in CONSENT_KINDS)} for day in days],
        "totals": {**totals, "total": sum(totals.values())},
    }


def _verifications(report: dict[str, Any], locale: str) -> dict[str, Any]:
    rows = sorted(report["verifications"], key=lambda v: (v["decision"] != "allow", -v["count"], v["reason"]))
    items = [
        {
            **v,
            "decision_label": label(locale, "decision", v["decision"]),
            "reason_label": label(locale, "reason", v["reason"]),
        }
        for v in rows
    ]
    counts = {d: sum(v["count"] for v in rows if v["decision"] == d) for d in ("allow", "deny")}
    colon = translate(locale, "colon")
    return {
        "chart": horizontal_bars(
            [(f"{v['decision_label']}{colon}{v['reason_label']}", v["count"], v["decision"]) for v in items],
            chart_id="verifications-chart",
            title=translate(locale, "verifications_chart"),
            description=translate(locale, "verifications_desc", total=sum(counts.values()), **counts),
        )
        if items
        else "",
        "legend": legend(
            "verifications-chart", [(d, label(locale, "decision", d)) for d in ("allow", "deny") if counts[d]]
        ),
        "rows": items,
    }


def _by_form(report: dict[str, Any]) -> list[str]:
    """The statuses the form table shows as columns, in the lifecycle's order."""
    present = {status for counts in report["consents_by_form"].values() for status in counts}
    present |= set(report["consents_by_status"])
    return [s.value for s in ConsentStatus if s.value in present] + sorted(present - {s.value for s in ConsentStatus})


def render_report_page(report: dict[str, Any], locale: str, *, link_expires_at: datetime | None = None) -> str:
    """The page; ``link_expires_at`` when it was opened through a signed link, to say until when it works."""

    def t(key: str, **values: Any) -> str:
        return translate(locale, key, **values)

    def word(family: str, code: str) -> str:
        return label(locale, family, code)

    purposes = [
        {**p, "local_name": in_locale(p["name"], locale)[0], "name_lang": in_locale(p["name"], locale)[1]}
        for p in report["purposes"]
    ]
    return render_template(
        "report.html",
        locale=locale,
        other_locale="en" if locale == "zh-CN" else "zh-CN",
        t=t,
        word=word,
        when=lambda value: _when(value, locale),
        due_reason=lambda due: _due_reason(locale, due),
        report=report,
        purposes=purposes,
        consents=_consents(report, locale),
        verifications=_verifications(report, locale),
        statuses=_by_form(report),
        link_until=local_time(link_expires_at, locale) if link_expires_at else None,
    )
