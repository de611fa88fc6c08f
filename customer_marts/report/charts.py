"""The report's charts of the marts: cohort retention, retention and churn, NPS, CLV by
segment and the CLV model's holdout check.
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
    GREEN,
    GRID,
    INK,
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
STAGE_ORDER = ("new", "active", "at_risk", "churned")


def cohort_heatmap(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    source.require(
        "marts.cohort_retention",
        "grain",
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
            where grain = 'month' order by cohort_start desc limit ?
        )
        select cohort_start, period_number, cohort_size, active_customers,
            retention_pct, is_complete
        from marts.cohort_retention
        where grain = 'month' and cohort_start in (select cohort_start from newest_cohorts)
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
        "period_start",
        "retention_rate_pct",
        "churn_rate_pct",
        "is_complete",
    )
    months = newest_months(
        con,
        "select period_start, retention_rate_pct, churn_rate_pct, is_complete "
        "from marts.retention_by_period where grain = 'month'",
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


def segment_intervals(con: duckdb.DuckDBPyConnection, source: Source) -> dict:
    """The 90 % interval of each segment's mean clv_12m (clv_by_segment), when published."""
    try:
        source.require(
            "marts.clv_by_segment",
            "lifecycle_stage",
            "is_high_value",
            "avg_clv_12m_low",
            "avg_clv_12m_high",
        )
    except Unavailable:
        return {}
    return {
        (row["lifecycle_stage"], row["is_high_value"]): (
            _float(row["avg_clv_12m_low"]),
            _float(row["avg_clv_12m_high"]),
        )
        for row in rows(
            con,
            "select lifecycle_stage, is_high_value, avg_clv_12m_low, avg_clv_12m_high "
            "from marts.clv_by_segment",
        )
        if row["avg_clv_12m_low"] is not None and row["avg_clv_12m_high"] is not None
    }


def _float(value) -> float | None:
    return None if value is None else float(value)


def clv_by_segment(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    source.require("marts.customer_clv", "customer_id", "clv_12m")
    source.require("marts.dim_customers", "customer_id", "lifecycle_stage", "is_high_value")
    groups = rows(
        con,
        """
        select
            customers.lifecycle_stage,
            customers.is_high_value,
            count(*) as customers,
            avg(clv.clv_12m)::double as mean,
            quantile_cont(clv.clv_12m::double, [0.05, 0.25, 0.5, 0.75, 0.95]) as quantiles
        from marts.customer_clv as clv
        inner join marts.dim_customers as customers on clv.customer_id = customers.customer_id
        where clv.clv_12m is not null
        group by all
        """,
    )
    if not groups:
        raise Unavailable("marts.customer_clv has no predicted 12-month CLV")
    intervals = segment_intervals(con, source)
    rank = {stage: index for index, stage in enumerate(STAGE_ORDER)}
    groups.sort(key=lambda g: (rank.get(g["lifecycle_stage"], 99), not g["is_high_value"]))
    high = max(
        max(
            g["quantiles"][4],
            g["mean"],
            intervals.get((g["lifecycle_stage"], g["is_high_value"]), (0.0, 0.0))[1],
        )
        for g in groups
    )
    domain = nice_domain(0.0, max(high, 1.0))
    width, row_h = 900, 34
    left, right, top = 210, width - 30, 52
    bottom = top + len(groups) * row_h
    height = bottom + 56
    x = Linear(domain[0], domain[1], left, right)
    body = []
    for tick in nice_ticks(*domain):
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{bottom}" '
            f'stroke="{GRID}"/>'
        )
        body.append(text(x(tick), bottom + 16, fmt_number(tick), "middle", class_="tick"))
    for index, group in enumerate(groups):
        p5, p25, p50, p75, p95 = group["quantiles"]
        mid = top + (index + 0.5) * row_h
        colour = GREEN if group["is_high_value"] else BLUE
        segment = (
            f"{group['lifecycle_stage']} · {'high value' if group['is_high_value'] else 'other'}"
        )
        band = intervals.get((group["lifecycle_stage"], group["is_high_value"]))
        band_text = (
            f"; 90 % interval of the mean {fmt_number(band[0], 2)} to {fmt_number(band[1], 2)}"
            if band
            else ""
        )
        body.append(
            text(left - 8, mid + 4, f"{segment} ({group['customers']:,})", "end", class_="tick")
        )
        body.append(
            f'<line x1="{x(p5):.1f}" x2="{x(p95):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
            f'stroke="{colour}" stroke-width="1.5"/>'
        )
        for whisker in (p5, p95):
            body.append(
                f'<line x1="{x(whisker):.1f}" x2="{x(whisker):.1f}" y1="{mid - 6:.1f}" '
                f'y2="{mid + 6:.1f}" stroke="{colour}" stroke-width="1.5"/>'
            )
        body.append(
            f'<rect class="mark" x="{x(p25):.1f}" y="{mid - 10:.1f}" '
            f'width="{max(x(p75) - x(p25), 1.5):.1f}" height="20" fill="{colour}" '
            f'fill-opacity="0.25" stroke="{colour}" stroke-width="1.5">'
            + tooltip(
                f"{segment}: {group['customers']:,} customers; 12-month CLV median "
                f"{fmt_number(p50, 2)}, middle half {fmt_number(p25, 2)} to "
                f"{fmt_number(p75, 2)}, 5th-95th percentile {fmt_number(p5, 2)} to "
                f"{fmt_number(p95, 2)}, mean {fmt_number(group['mean'], 2)}{band_text}"
            )
            + "</rect>"
        )
        if band:
            lo, hi = x(band[0]), x(band[1])
            body.append(
                f'<line class="interval" x1="{lo:.1f}" x2="{hi:.1f}" y1="{mid + 13:.1f}" '
                f'y2="{mid + 13:.1f}" stroke="{ORANGE}" stroke-width="3"/>'
            )
            for end in (lo, hi):
                body.append(
                    f'<line x1="{end:.1f}" x2="{end:.1f}" y1="{mid + 9:.1f}" '
                    f'y2="{mid + 17:.1f}" stroke="{ORANGE}" stroke-width="2"/>'
                )
        body.append(
            f'<line x1="{x(p50):.1f}" x2="{x(p50):.1f}" y1="{mid - 10:.1f}" '
            f'y2="{mid + 10:.1f}" stroke="{INK}" stroke-width="2"/>'
        )
        mx = x(group["mean"])
        body.append(f'<path d="M{mx:.1f},{mid - 5:.1f} l5,5 l-5,5 l-5,-5 z" fill="{INK}"/>')
    body += legend(
        left,
        16,
        [
            (
                "high value",
                f'<rect x="0" y="-5" width="12" height="10" fill="{GREEN}" fill-opacity="0.4"/>',
            ),
            (
                "other customers",
                f'<rect x="0" y="-5" width="12" height="10" fill="{BLUE}" fill-opacity="0.4"/>',
            ),
            ("median", f'<line x1="5" x2="5" y1="-6" y2="6" stroke="{INK}" stroke-width="2"/>'),
            ("mean", f'<path d="M5,-5 l5,5 l-5,5 l-5,-5 z" fill="{INK}"/>'),
            (
                "90 % interval of the mean",
                f'<line x1="0" x2="12" y1="0" y2="0" stroke="{ORANGE}" stroke-width="3"/>',
            ),
        ],
    )
    body += [
        text(
            (left + right) / 2,
            height - 8,
            "predicted CLV over the next 12 months",
            "middle",
            class_="axis-title",
        ),
        text(8, top - 10, "lifecycle stage · segment (customers)", class_="axis-title"),
    ]
    return svg("clv-by-segment", width, height, "12-month CLV by segment", body)


def clv_holdout(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[str, str]:
    """The selected purchase model's holdout check: actual vs predicted repeat purchases
    per customer by calibration frequency, and cumulated over the holdout weeks."""
    source.require(
        "marts.clv_validation",
        "model",
        "check_name",
        "bucket",
        "bucket_order",
        "customers",
        "actual_repeat_purchases",
        "predicted_repeat_purchases",
        "status",
        "reason",
        "is_selected_model",
    )
    checked = rows(
        con,
        """
        select model, check_name, bucket, bucket_order, customers, status, reason,
            actual_repeat_purchases::double as actual,
            predicted_repeat_purchases::double as predicted,
            mae_per_customer::double as mae, calibration_end_date, holdout_days
        from marts.clv_validation
        where is_selected_model or status <> 'validated'
        order by model, check_name, bucket_order
        """,
    )
    selected = [row for row in checked if row["status"] == "validated"]
    if not selected:
        reasons = sorted({row["reason"] for row in checked if row["reason"]})
        raise Unavailable(
            "marts.clv_validation has no validated check of the model in use"
            + (f" ({reasons[0]})" if reasons else "")
        )
    model = selected[0]["model"]
    buckets = [row for row in selected if row["check_name"] == "by_calibration_frequency"]
    weeks = [row for row in selected if row["check_name"] == "cumulative_by_week"]
    total = next(row for row in selected if row["check_name"] == "total")
    charts = holdout_by_frequency(model, buckets) + cumulative_holdout(model, weeks)
    error = (
        100 * (total["predicted"] - total["actual"]) / total["actual"] if total["actual"] else None
    )
    summary = (
        f"Model in use: {model}. Calibration to {total['calibration_end_date']}, holdout "
        f"{total['holdout_days']} days: {fmt_number(total['actual'])} repeat purchases "
        f"happened, {fmt_number(total['predicted'], 1)} were predicted"
        + (f" ({error:+.1f} %)" if error is not None else "")
        + f"; mean absolute error {fmt_number(total['mae'], 3)} per customer."
    )
    return charts, summary


def holdout_by_frequency(model: str, buckets: list[dict]) -> str:
    """Paired bars per calibration frequency: actual and predicted holdout repeat
    purchases per customer."""
    width, height = 900, 300
    left, right, top, bottom = 64, width - 20, 34, height - 58
    per = [
        (
            row,
            row["actual"] / row["customers"] if row["customers"] else None,
            row["predicted"] / row["customers"] if row["customers"] else None,
        )
        for row in buckets
    ]
    most = max([v for _, a, p in per for v in (a, p) if v is not None] or [1.0])
    domain = nice_domain(0.0, max(most, 0.1))
    y = Linear(domain[0], domain[1], bottom, top)
    step = (right - left) / max(len(per), 1)
    body = y_axis(y, nice_ticks(*domain), left, right, lambda v: f"{v:g}")
    for index, (row, actual, predicted) in enumerate(per):
        x0 = left + index * step
        body.append(text(x0 + step / 2, bottom + 18, row["bucket"], "middle", class_="tick"))
        for offset, value, colour, label in (
            (0.18, actual, INK, "actual"),
            (0.52, predicted, BLUE, "predicted"),
        ):
            if value is None:
                continue
            body.append(
                f'<rect class="mark" x="{x0 + offset * step:.1f}" y="{y(value):.1f}" '
                f'width="{0.3 * step:.1f}" height="{max(bottom - y(value), 0.5):.1f}" '
                f'fill="{colour}" fill-opacity="0.75">'
                + tooltip(
                    f"calibration frequency {row['bucket']}, {label}: {value:.3f} repeat "
                    f"purchases per customer in the holdout ({row['customers']:,} customers; "
                    f"actual {fmt_number(row['actual'])}, predicted "
                    f"{fmt_number(row['predicted'], 1)} in total; {model})"
                )
                + "</rect>"
            )
    body += legend(
        left,
        16,
        [
            ("actual", f'<rect x="0" y="-5" width="12" height="10" fill="{INK}"/>'),
            (f"predicted ({model})", f'<rect x="0" y="-5" width="12" height="10" fill="{BLUE}"/>'),
        ],
    )
    body += axis_titles(
        width,
        height,
        "repeat purchases in the calibration window",
        "per customer in the holdout",
        top,
        bottom,
    )
    return svg(
        "holdout-by-frequency",
        width,
        height,
        "Holdout repeat purchases by calibration frequency, actual vs predicted",
        body,
    )


def cumulative_holdout(model: str, weeks: list[dict]) -> str:
    """Two lines over the holdout weeks: cumulative actual and predicted repeat purchases."""
    width, height = 900, 300
    left, right, top, bottom = 64, width - 20, 34, height - 58
    most = max([row["actual"] for row in weeks] + [row["predicted"] for row in weeks] + [1.0])
    domain = nice_domain(0.0, most)
    y = Linear(domain[0], domain[1], bottom, top)
    x = Linear(0, max(len(weeks), 1), left, right)
    body = y_axis(y, nice_ticks(*domain), left, right, fmt_number)
    label_every = max(1, math.ceil(len(weeks) / 13))
    for index in range(1, len(weeks) + 1):
        if index % label_every == 0 or index == 1:
            body.append(text(x(index), bottom + 18, index, "middle", class_="tick"))
    for name, key, colour in (
        ("actual", "actual", INK),
        (f"predicted ({model})", "predicted", BLUE),
    ):
        points = [(x(0), y(0))] + [(x(i), y(row[key])) for i, row in enumerate(weeks, start=1)]
        body.append(
            f'<polyline points="{" ".join(f"{px:.1f},{py:.1f}" for px, py in points)}" '
            f'fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for index, row in enumerate(weeks, start=1):
            body.append(
                f'<circle class="mark" cx="{x(index):.1f}" cy="{y(row[key]):.1f}" r="3" '
                f'fill="{colour}">'
                + tooltip(
                    f"{name}, {row['bucket']}: {fmt_number(row[key], 1)} repeat purchases "
                    "since the calibration end"
                )
                + "</circle>"
            )
    body += legend(
        left,
        16,
        [
            ("actual", f'<circle cx="5" cy="0" r="4" fill="{INK}"/>'),
            (f"predicted ({model})", f'<circle cx="5" cy="0" r="4" fill="{BLUE}"/>'),
        ],
    )
    body += axis_titles(width, height, "holdout week", "cumulative repeat purchases", top, bottom)
    return svg(
        "holdout-cumulative",
        width,
        height,
        "Cumulative repeat purchases over the holdout weeks, actual vs predicted",
        body,
    )
