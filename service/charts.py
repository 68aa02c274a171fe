"""Small server-rendered SVG charts for the compliance page: no JavaScript, readable without colour."""

from __future__ import annotations

from html import escape
from typing import Any

PALETTE = {
    "granted": "#1e6b34",
    "revoked": "#a4161a",
    "expired": "#6c6f75",
    "declined": "#b35c00",
    "reconsent_required": "#5b3fa3",
    "allow": "#1e6b34",
    "deny": "#a4161a",
}


def stacked_columns(rows: list[dict[str, Any]], keys: tuple[str, ...], *, title: str, label_key: str = "date") -> str:
    """One column per row (e.g. per day), stacked by ``keys``, with a legend."""
    width, height, left, bottom, top = 720, 260, 36, 40, 16
    plot_h = height - bottom - top
    peak = max([sum(int(r[k]) for k in keys) for r in rows] + [1])
    step = (width - left - 8) / max(len(rows), 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height + 24}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" stroke="#4a4f57"/>',
        f'<text x="4" y="{top + 8}" font-size="11" fill="#1a1a1a">{peak}</text>',
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
                f'<rect class="bar" data-series="{key}" x="{x:.1f}" y="{base:.1f}" width="{max(step - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE.get(key, "#0b5394")}"><title>{escape(str(row[label_key]))} '
                f"{key}: {value}</title></rect>"
            )
        if index % 7 == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 22}" font-size="10" fill="#1a1a1a">'
                f"{escape(str(row[label_key])[5:])}</text>"
            )
    for index, key in enumerate(keys):
        x = left + index * 130
        parts.append(
            f'<rect x="{x}" y="{height}" width="12" height="12" fill="{PALETTE.get(key, "#0b5394")}"/>'
            f'<text x="{x + 16}" y="{height + 10}" font-size="11" fill="#1a1a1a">{escape(key)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(items: list[tuple[str, int, str]], *, title: str) -> str:
    """One labelled bar per item: (label, value, colour key)."""
    width, row_h, label_w = 720, 24, 260
    peak = max([value for _, value, _ in items] + [1])
    height = max(len(items), 1) * row_h + 8
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for index, (label, value, colour) in enumerate(items):
        y = 4 + index * row_h
        w = (width - label_w - 60) * value / peak
        parts.append(
            f'<text x="4" y="{y + 15}" font-size="12" fill="#1a1a1a">{escape(label)}</text>'
            f'<rect class="bar" data-series="{escape(colour)}" x="{label_w}" y="{y}" width="{max(w, 1):.1f}" '
            f'height="{row_h - 6}" fill="{PALETTE.get(colour, "#0b5394")}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12" fill="#1a1a1a">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
