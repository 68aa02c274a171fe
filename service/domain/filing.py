"""When filing with the cyberspace office is due (R12): 30 working days after the threshold is crossed."""

from __future__ import annotations

from datetime import date, timedelta

FILING_WORKING_DAYS = 30


def add_working_days(
    start: date, days: int, *, holidays: frozenset[date] = frozenset(), extra_workdays: frozenset[date] = frozenset()
) -> date:
    """The date ``days`` working days after ``start``: weekends and holidays skipped, make-up workdays counted."""
    current, remaining = start, days
    while remaining > 0:
        current += timedelta(days=1)
        weekend = current.weekday() >= 5
        working = current in extra_workdays or (not weekend and current not in holidays)
        if working:
            remaining -= 1
    return current


def parse_dates(raw: str | None) -> frozenset[date]:
    """``2026-10-01,2026-10-02`` → a set of dates; blanks ignored."""
    if not raw:
        return frozenset()
    return frozenset(date.fromisoformat(part.strip()) for part in raw.split(",") if part.strip())
