"""Small server-rendered SVG charts for the compliance page: no JavaScript, readable without colour.

Each series has a colour and a pattern of its own (solid, diagonal hatching, dots, cross-hatching,
horizontal lines), so series stay apart in grey, in print and for colour-blind readers; bars carry
their values as text. Each chart is ``role="img"`` with a ``<title>`` and a ``<desc>`` it is labelled by;
the page pairs it with a table of the same numbers and a text legend (:func:`legend`). Texts come in
already translated; the charts only draw.
"""

from __future__ import annotations

from html import escape
from typing import Any

#: Series → (colour, pattern). Colours pass WCAG 3:1 against white; patterns tell them apart without it.
STYLES: dict[str, tuple[str, str]] = {
    "granted": ("#1e6b34", "solid"),
    "revoked": ("#a4161a", "diagonal"),
    "expired": ("#4a4f57", "dots"),
    "declined": ("#9a4f00", "cross"),
    "reconsent_required": ("#5b3fa3", "horizontal"),
    "allow": ("#1e6b34", "solid"),
    "deny": ("#a4161a", "diagonal"),
}
DEFAULT_STYLE = ("#0b5394", "solid")
INK = "#1a1a1a"

_MARKS = {
    "solid": "",
    "diagonal": '<path d="M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4" stroke="#fff" stroke-width="1.6"/>',
    "dots": '<circle cx="2" cy="2" r="1.4" fill="#fff"/><circle cx="6" cy="6" r="1.4" fill="#fff"/>',
    "cross": '<path d="M0,0 l8,8 M8,0 l-8,8" stroke="#fff" stroke-width="1.3"/>',
    "horizontal": '<path d="M0,2 h8 M0,6 h8" stroke="#fff" stroke-width="1.4"/>',
}


def fill_id(chart_id: str, series: str) -> str:
    return f"{chart_id}-fill-{series}"


def _defs(chart_id: str, series: list[str]) -> str:
    patterns = []
    for key in dict.fromkeys(series):
        colour, mark = STYLES.get(key, DEFAULT_STYLE)
        patterns.append(
            f'<pattern id="{escape(fill_id(chart_id, key))}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{colour}"/>{_MARKS[mark]}</pattern>'
        )
    return f"<defs>{''.join(patterns)}</defs>"


def _open(chart_id: str, width: int, height: int, title: str, description: str) -> str:
    return (
        f'<svg class="chart" id="{chart_id}" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(description)}</desc>'
    )


def stacked_columns(
    rows: list[dict[str, Any]],
    keys: tuple[str, ...],
    *,
    chart_id: str,
    title: str,
    description: str,
    peak_label: str,
    label_key: str = "date",
) -> str:
    """One column per row (e.g. per day), stacked by ``keys``; every seventh row's label under its column."""
    width, height, left, bottom, top = 360, 210, 8, 24, 22
    plot_h = height - bottom - top
    peak = max([sum(int(r[k]) for k in keys) for r in rows] + [1])
    step = (width - left - 4) / max(len(rows), 1)
    parts = [
        _open(chart_id, width, height, title, description),
        _defs(chart_id, list(keys)),
        f'<line x1="{left}" y1="{top}" x2="{width - 4}" y2="{top}" stroke="#c9ccd1" stroke-dasharray="3 3"/>',
        f'<text x="{left}" y="{top - 6}" font-size="14" fill="{INK}">{escape(peak_label)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" stroke="{INK}"/>',
    ]
    for index, row in enumerate(rows):
        x, base = left + index * step + 1, float(top + plot_h)
        for key in keys:
            value = int(row[key])
            if not value:
                continue
            h = plot_h * value / peak
            base -= h
            parts.append(
                f'<rect class="bar" data-series="{escape(key)}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="url(#{escape(fill_id(chart_id, key))})" '
                f'stroke="{INK}" stroke-width="0.5"/>'
            )
        if (len(rows) - 1 - index) % 7 == 0:  # the last row labelled, then every seventh back from it
            day = escape(str(row[label_key])[5:])
            last = index == len(rows) - 1
            at, anchor = (x + step - 2, "end") if last else (x + step / 2 - 1, "middle")
            parts.append(
                f'<text x="{at:.1f}" y="{height - 6}" font-size="14" text-anchor="{anchor}" fill="{INK}">{day}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(items: list[tuple[str, int, str]], *, chart_id: str, title: str, description: str) -> str:
    """One bar per item, ``(label, value, series)``: its label above it, its value at its end."""
    width, row_h, label_h, bar_h = 360, 50, 21, 20
    peak = max([value for _, value, _ in items] + [1])
    height = max(len(items), 1) * row_h + 4
    parts = [_open(chart_id, width, height, title, description), _defs(chart_id, [s for _, _, s in items])]
    for index, (label, value, series) in enumerate(items):
        y = 4 + index * row_h
        w = max((width - 60) * value / peak, 1)
        parts.append(
            f'<text x="0" y="{y + 16}" font-size="16" fill="{INK}">{escape(label)}</text>'
            f'<rect class="bar" data-series="{escape(series)}" x="0" y="{y + label_h}" width="{w:.1f}" '
            f'height="{bar_h}" fill="url(#{escape(fill_id(chart_id, series))})" stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="{w + 6:.1f}" y="{y + label_h + 16}" font-size="16" font-weight="600" fill="{INK}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(chart_id: str, entries: list[tuple[str, str]]) -> str:
    """A text legend, ``(series, label)`` each with a swatch in the series' own colour and pattern."""
    items = "".join(
        f'<li><svg width="22" height="16" aria-hidden="true" focusable="false"><rect x="1" y="1" width="20" '
        f'height="14" fill="url(#{escape(fill_id(chart_id, series))})" stroke="{INK}"/></svg>'
        f'<span data-series="{escape(series)}">{escape(label)}</span></li>'
        for series, label in entries
    )
    return f'<ul class="legend">{items}</ul>'
