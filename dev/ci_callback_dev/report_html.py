"""``report --html FILE``: one self-contained static page with the report's tables and a chart.

Inline CSS and an inline SVG stacked-bar chart: no script, no font or CDN, nothing fetched,
so the file opens from disk anywhere and can be mailed or archived as it is.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from .report import OUTCOMES, Summary, Table, tables, window_line

COLOURS = {"processed": "#2e7d32", "failed": "#c62828", "processing": "#1565c0", "unfinished": "#ef6c00"}

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px 32px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
p.window{color:#555;margin:0 0 16px}
table{border-collapse:collapse;min-width:320px;margin:0 0 4px}
th,td{border-bottom:1px solid #ddd;padding:5px 12px;text-align:left;vertical-align:top}
th{background:#f4f5f7;font-weight:600} td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.none{color:#888;font-style:italic} p.note{color:#666;font-size:12px;margin:2px 0 0}
.legend span{display:inline-block;margin-right:16px} .legend i{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px}
svg text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:#444}
footer{margin-top:32px;color:#888;font-size:12px}
"""


def _table(table: Table) -> str:
    head = "".join(f'<th class="n">{escape(h)}</th>' if i in table.numeric else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(table.headers))
    rows = []
    for row in table.rows:
        cells = "".join(f'<td class="n">{escape(c)}</td>' if i in table.numeric else f"<td>{escape(c)}</td>"
                        for i, c in enumerate(row))
        rows.append(f"<tr>{cells}</tr>")
    if not table.rows:
        rows.append(f'<tr><td class="none" colspan="{len(table.headers)}">none</td></tr>')
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    slug = "".join(ch if ch.isalnum() else "-" for ch in table.title.lower()).strip("-")
    return (f'<section id="{escape(slug)}"><h2>{escape(table.title)}</h2>'
            f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{note}</section>')


def chart(summary: Summary, bins: int = 24, width: int = 960, height: int = 260) -> str:
    """Callbacks over time, stacked by outcome, as inline SVG."""
    starts, counts = summary.timeline(bins)
    left, bottom, top = 44, 34, 12
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = max([sum(c.values()) for c in counts] + [1])
    step = max(1, -(-peak // 4))  # about four gridlines, on whole numbers
    ceiling = step * -(-peak // step)
    bar_w = plot_w / bins
    parts: list[str] = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                        f'viewBox="0 0 {width} {height}" role="img" aria-label="callbacks over time by outcome">']
    for i in range(0, ceiling + 1, step):
        y = top + plot_h - plot_h * i / ceiling
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 12}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{i}</text>')
    for n, slot in enumerate(counts):
        x = left + n * bar_w
        y = top + plot_h
        for outcome in OUTCOMES:
            value = slot[outcome]
            if not value:
                continue
            h = plot_h * value / ceiling
            y -= h
            parts.append(f'<rect class="bar {outcome}" x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS[outcome]}"><title>{escape(_label(starts[n]))}: '
                         f'{value} {outcome}</title></rect>')
    for n in range(0, bins, max(1, bins // 6)):
        x = left + n * bar_w
        parts.append(f'<text x="{x:.1f}" y="{height - 12}">{escape(_label(starts[n]))}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 12}" y2="{top + plot_h}" stroke="#999"/>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{COLOURS[o]}"></i>{o}</span>' for o in OUTCOMES)
    return f'<section id="timeline"><h2>Callbacks over time, by outcome</h2>{"".join(parts)}<p class="legend">{legend}</p></section>'


def _label(stamp: datetime) -> str:
    return stamp.astimezone(timezone.utc).strftime("%m-%d %H:%M")


def render(summary: Summary) -> str:
    body = "".join(_table(t) for t in tables(summary))
    generated = summary.generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>ci-callback report: {escape(summary.bucket)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>ci-callback report</h1><p class=\"window\">{escape(window_line(summary))}</p>"
        f"{chart(summary)}{body}"
        f"<footer>Generated {generated} by ci-callback report, from the bucket alone.</footer>"
        "</body></html>\n"
    )
