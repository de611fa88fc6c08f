"""The report's charts of the marts over time: cohort retention, retention and churn, NPS
(the CLV charts are clv_charts.py).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date

import duckdb

from customer_marts.report.scales import Linear, nice_domain, nice_ticks
from customer_marts.report.source import Source, Unavailable, newest_months, rows
from customer_marts.report.svg import (
    BLUE,
    GRID,
    MUTED,
    ORANGE,
    axis_titles,
    fmt_number,
    fmt_pct,
    heat_colour,
    legend,
    month_label,
    svg,
    text,
    tooltip,
    y_axis,
)

log = logging.getLogger(__name__)


MAX_COHORTS = 24  # the heatmap shows the newest cohorts


def cohort_heatmap(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    source.require(
        "marts.cohort_retention",
        "grain",
        "dimension",
        "cohort_start",
        "period_number",
        "cohort_size",
        "active_customers",
        "retention_pct",
        "is_complete",
    )
    cells = rows(
        con,
        """
        with newest_cohorts as (
            select distinct cohort_start from marts.cohort_retention
            where grain = 'month' and dimension = 'overall'
            order by cohort_start desc limit ?
        )
        select cohort_start, period_number, cohort_size, active_customers,
            retention_pct, is_complete
        from marts.cohort_retention
        where grain = 'month' and dimension = 'overall'
            and cohort_start in (select cohort_start from newest_cohorts)
        order by cohort_start, period_number
        """,
        [MAX_COHORTS],
    )
    if not cells:
        raise Unavailable("marts.cohort_retention has no monthly cohorts")
    cohorts = sorted({cell["cohort_start"] for cell in cells})
    periods = max(cell["period_number"] for cell in cells) + 1
    later = [cell["retention_pct"] for cell in cells if cell["period_number"] > 0]
    top = max([value for value in later if value is not None] or [1.0])
    scale_max = max(5.0, math.ceil(top / 5) * 5)

    cell_w = max(26, min(44, 880 // periods))
    cell_h = 22
    left, top_margin = 150, 58
    width = left + periods * cell_w + 20
    height = top_margin + len(cohorts) * cell_h + 64
    row_of = {cohort: index for index, cohort in enumerate(cohorts)}
    body = [
        text(
            left + periods * cell_w / 2,
            16,
            "months since the first order",
            "middle",
            class_="axis-title",
        ),
        text(left - 8, top_margin - 8, "cohort (size)", "end", class_="axis-title"),
    ]
    for period in range(periods):
        body.append(
            text(left + (period + 0.5) * cell_w, top_margin - 8, period, "middle", class_="tick")
        )
    for cohort in cohorts:
        size = next(cell["cohort_size"] for cell in cells if cell["cohort_start"] == cohort)
        y = top_margin + row_of[cohort] * cell_h
        body.append(
            text(
                left - 8,
                y + cell_h / 2 + 4,
                f"{month_label(cohort)} ({size:,})",
                "end",
                class_="tick",
            )
        )
    for cell in cells:
        x = left + cell["period_number"] * cell_w
        y = top_margin + row_of[cell["cohort_start"]] * cell_h
        pct = cell["retention_pct"]
        if cell["period_number"] == 0:
            fill, ink = GRID, "cell"
        else:
            share = (pct or 0) / scale_max
            fill, ink = heat_colour(share), ("cell on-dark" if share > 0.5 else "cell")
        dashed = "" if cell["is_complete"] else ' stroke="#111827" stroke-dasharray="3 2"'
        state = "" if cell["is_complete"] else " (month in progress)"
        body.append(
            f'<rect class="mark" x="{x + 1:.1f}" y="{y + 1:.1f}" width="{cell_w - 2}" '
            f'height="{cell_h - 2}" fill="{fill}"{dashed}>'
            + tooltip(
                f"cohort {month_label(cell['cohort_start'])}, month {cell['period_number']}: "
                f"{cell['active_customers']:,} of {cell['cohort_size']:,} customers active "
                f"({fmt_pct(pct)}){state}"
            )
            + "</rect>"
        )
        if pct is not None:
            body.append(
                text(x + cell_w / 2, y + cell_h / 2 + 4, f"{pct:.0f}", "middle", class_=ink)
            )
    # legend: the colour scale and the in-progress outline
    legend_y = top_margin + len(cohorts) * cell_h + 22
    steps = 10
    for index in range(steps):
        body.append(
            f'<rect x="{left + index * 18}" y="{legend_y}" width="18" height="10" '
            f'fill="{heat_colour((index + 0.5) / steps)}"/>'
        )
    body += [
        text(left - 6, legend_y + 9, "0 %", "end", class_="legend"),
        text(
            left + steps * 18 + 6,
            legend_y + 9,
            f"{scale_max:.0f} % retained (month 0 = 100 %, grey)",
            class_="legend",
        ),
        f'<rect x="{left + steps * 18 + 290}" y="{legend_y}" width="18" height="10" '
        f'fill="none" stroke="#111827" stroke-dasharray="3 2"/>',
        text(
            left + steps * 18 + 314, legend_y + 9, "month in progress (incomplete)", class_="legend"
        ),
    ]
    return svg("cohort-heatmap", width, height, "Monthly cohort retention heatmap", body)


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: list[float | None]


def time_chart(
    chart_id: str,
    label: str,
    months: list[date],
    series: list[Series],
    muted: list[bool],
    muted_label: str,
    y_domain: tuple[float, float],
    y_title: str,
    y_format,
    band: tuple[list[float | None], list[float | None]] | None = None,
) -> str:
    """A monthly line chart. Muted months (incomplete, not reportable) are drawn grey and
    hollow, as are the line segments and band pieces that touch them."""
    width, height = 900, 330
    left, right, top, bottom = 64, width - 20, 34, height - 58
    step = (right - left) / max(len(months), 1)
    x = [left + (index + 0.5) * step for index in range(len(months))]
    y = Linear(y_domain[0], y_domain[1], bottom, top)
    body = y_axis(y, nice_ticks(*y_domain), left, right, y_format)
    if y_domain[0] < 0 < y_domain[1]:
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{MUTED}"/>'
        )
    label_every = max(1, math.ceil(len(months) / 12))
    for index, month in enumerate(months):
        if index % label_every == 0:
            body.append(text(x[index], bottom + 18, month_label(month), "middle", class_="tick"))
    if band:
        low, high = band
        for index in range(len(months) - 1):
            pair = (index, index + 1)
            if any(low[i] is None or high[i] is None for i in pair):
                continue
            colour = MUTED if any(muted[i] for i in pair) else BLUE
            points = [(x[i], y(high[i])) for i in pair] + [(x[i], y(low[i])) for i in pair[::-1]]
            body.append(
                f'<polygon points="{" ".join(f"{px:.1f},{py:.1f}" for px, py in points)}" '
                f'fill="{colour}" fill-opacity="0.15" stroke="none"/>'
            )
        for index in range(len(months)):
            if low[index] is not None and high[index] is not None:
                body.append(
                    f'<line x1="{x[index]:.1f}" x2="{x[index]:.1f}" y1="{y(low[index]):.1f}" '
                    f'y2="{y(high[index]):.1f}" '
                    f'stroke="{MUTED if muted[index] else BLUE}" stroke-opacity="0.5"/>'
                )
    for one in series:
        for index in range(len(months) - 1):
            a, b = one.values[index], one.values[index + 1]
            if a is None or b is None:
                continue
            grey = muted[index] or muted[index + 1]
            body.append(
                f'<line x1="{x[index]:.1f}" y1="{y(a):.1f}" x2="{x[index + 1]:.1f}" '
                f'y2="{y(b):.1f}" stroke="{MUTED if grey else one.colour}" stroke-width="2"'
                + (' stroke-dasharray="4 3"/>' if grey else "/>")
            )
        for index, value in enumerate(one.values):
            if value is None:
                continue
            fill = "#ffffff" if muted[index] else one.colour
            stroke = MUTED if muted[index] else one.colour
            note = f" ({muted_label})" if muted[index] else ""
            body.append(
                f'<circle class="mark" cx="{x[index]:.1f}" cy="{y(value):.1f}" r="4" '
                f'fill="{fill}" stroke="{stroke}" stroke-width="2">'
                + tooltip(f"{one.name}, {month_label(months[index])}: {y_format(value)}{note}")
                + "</circle>"
            )
    swatches = [(one.name, f'<circle cx="5" cy="0" r="4" fill="{one.colour}"/>') for one in series]
    if band:
        swatches.append(
            (
                "95 % margin of error",
                f'<rect x="0" y="-5" width="12" height="10" fill="{BLUE}" fill-opacity="0.2"/>',
            )
        )
    swatches.append(
        (
            muted_label,
            f'<circle cx="5" cy="0" r="4" fill="#ffffff" stroke="{MUTED}" stroke-width="2"/>',
        )
    )
    body += legend(left, 16, swatches)
    body += axis_titles(width, height, "month", y_title, top, bottom)
    return svg(chart_id, width, height, label, body)


def retention_trend(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    source.require(
        "marts.retention_by_period",
        "grain",
        "dimension",
        "period_start",
        "retention_rate_pct",
        "churn_rate_pct",
        "is_complete",
    )
    months = newest_months(
        con,
        "select period_start, retention_rate_pct, churn_rate_pct, is_complete "
        "from marts.retention_by_period where grain = 'month' and dimension = 'overall'",
    )
    if not months:
        raise Unavailable("marts.retention_by_period has no monthly rows")
    return time_chart(
        "retention-trend",
        "Monthly retention and churn rate",
        [row["period_start"] for row in months],
        [
            Series("retention rate", BLUE, [row["retention_rate_pct"] for row in months]),
            Series("churn rate", ORANGE, [row["churn_rate_pct"] for row in months]),
        ],
        [row["is_complete"] is False for row in months],
        "month in progress",
        (0.0, 100.0),
        "% of customers at the start of the month",
        lambda value: f"{value:.0f} %",
    )


def nps_trend(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[str, str]:
    """The chart and a one-line summary of the trailing 30 days (when published)."""
    source.require(
        "marts.nps_by_period",
        "grain",
        "dimension",
        "period_start",
        "responses",
        "nps",
        "nps_margin_of_error",
        "is_reportable",
    )
    months = newest_months(
        con,
        """
        select period_start, responses, nps, is_reportable,
            greatest(-100, nps - nps_margin_of_error) as nps_low,
            least(100, nps + nps_margin_of_error) as nps_high
        from marts.nps_by_period where grain = 'month' and dimension = 'overall'
        """,
    )
    if not months:
        raise Unavailable("marts.nps_by_period has no monthly overall rows")
    nps = [row["nps"] for row in months]
    low = [row["nps_low"] for row in months]
    high = [row["nps_high"] for row in months]
    values = [v for v in [*low, *high, *nps, 0.0] if v is not None]
    domain = nice_domain(min(values), max(values))
    domain = (max(-100.0, domain[0]), min(100.0, domain[1]))
    chart = time_chart(
        "nps-trend",
        "Monthly NPS with its 95 % margin of error",
        [row["period_start"] for row in months],
        [Series("NPS", BLUE, nps)],
        [row["is_reportable"] is False for row in months],
        "too few responses (not reportable)",
        domain,
        "NPS (−100 to 100)",
        lambda value: f"{value:+.0f}" if value else "0",
        band=(low, high),
    )
    summary = ""
    try:
        source.require(
            "marts.nps_rolling_30d",
            "day",
            "responses",
            "nps",
            "nps_margin_of_error",
            "is_reportable",
        )
        latest = rows(
            con,
            "select day, responses, nps, nps_margin_of_error, is_reportable "
            "from marts.nps_rolling_30d order by day desc limit 1",
        )
    except Unavailable:
        latest = []
    if latest and latest[0]["nps"] is not None:
        row = latest[0]
        summary = (
            f"Trailing 30 days to {row['day']}: NPS {row['nps']:+.0f} "
            f"± {fmt_number(row['nps_margin_of_error'])} from {row['responses']:,} responses"
            + ("" if row["is_reportable"] else " (too few responses to report)")
            + "."
        )
    return chart, summary
