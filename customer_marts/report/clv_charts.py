"""The report's CLV charts: 12-month CLV by segment with its 90 % intervals, and the CLV
models' holdout check (by calibration frequency, cumulative over the holdout weeks).
"""

from __future__ import annotations

import logging
import math

import duckdb

from customer_marts.report.scales import Linear, nice_domain, nice_ticks
from customer_marts.report.source import Source, Unavailable, rows
from customer_marts.report.svg import (
    BLUE,
    GREEN,
    INK,
    ORANGE,
    axis_titles,
    fmt_number,
    legend,
    svg,
    text,
    tooltip,
    x_axis,
    y_axis,
)

log = logging.getLogger(__name__)

STAGE_ORDER = ("new", "active", "at_risk", "churned")


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
    body = x_axis(x, nice_ticks(*domain), top, bottom, fmt_number)
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
