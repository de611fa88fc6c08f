"""The report's acquisition charts: monthly retention by acquisition channel, and LTV:CAC
by channel (the channel's cohorts pooled, spend-weighted).
"""

from __future__ import annotations

import logging

import duckdb

from customer_marts.report.charts import Series, time_chart
from customer_marts.report.scales import Linear, nice_domain, nice_ticks
from customer_marts.report.source import Source, Unavailable, newest_months, rows
from customer_marts.report.svg import (
    BLUE,
    GREEN,
    INK,
    MUTED,
    ORANGE,
    RED,
    fmt_number,
    legend,
    svg,
    text,
    tooltip,
    x_axis,
)

log = logging.getLogger(__name__)

# One colour per channel line, in order of the channels' size; more channels than colours
# reuse them (the tooltips name the channel).
CHANNEL_COLOURS = (BLUE, ORANGE, GREEN, RED, "#7c3aed", "#0891b2", "#db2777", "#65a30d", INK)
MAX_CHANNELS = len(CHANNEL_COLOURS)


def retention_by_channel(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[str, str]:
    """One monthly retention-rate line per acquisition channel; a month whose group is too
    small to report (is_reportable false) is left out of its line. Returns the chart and a
    note naming the channels left out."""
    source.require(
        "marts.retention_by_period",
        "grain",
        "dimension",
        "dimension_value",
        "period_start",
        "customers_start",
        "retention_rate_pct",
        "is_reportable",
        "is_complete",
    )
    base = (
        "from marts.retention_by_period where grain = 'month' and dimension = 'acquisition_channel'"
    )
    groups = rows(
        con,
        f"select dimension_value, bool_or(is_reportable) as reportable {base} "
        "group by all order by sum(customers_start) desc, dimension_value",
    )
    channels = [row["dimension_value"] for row in groups if row["reportable"] is True]
    if not channels:
        raise Unavailable(
            "marts.retention_by_period has no reportable monthly rows by acquisition channel"
        )
    shown, left_out = channels[:MAX_CHANNELS], channels[MAX_CHANNELS:]
    months = _channel_months(con, base, shown)
    series = [
        Series(channel, CHANNEL_COLOURS[index], [row[f"c{index}"] for row in months])
        for index, channel in enumerate(shown)
    ]
    chart = time_chart(
        "retention-by-channel",
        "Monthly retention rate by acquisition channel",
        [row["period_start"] for row in months],
        series,
        [row["is_complete"] is False for row in months],
        "month in progress",
        (0.0, 100.0),
        "% retained in the month",
        lambda value: f"{value:.0f} %",
    )
    hidden = sorted(row["dimension_value"] for row in groups if row["reportable"] is False)
    notes = []
    if hidden:
        notes.append(f"Too few customers to report: {', '.join(hidden)}.")
    if left_out:
        notes.append(f"Smaller channels not drawn: {', '.join(left_out)}.")
    return chart, " ".join(notes)


def _channel_months(con: duckdb.DuckDBPyConnection, base: str, channels: list[str]) -> list[dict]:
    """One row per month (newest months, gaps kept): is_complete and c0..cN, the reportable
    retention rate of each channel (NULL when too small or absent)."""
    columns = ", ".join(
        f"max(retention_rate_pct) filter (where dimension_value = '{_quoted(channel)}' "
        f"and is_reportable) as c{index}"
        for index, channel in enumerate(channels)
    )
    return newest_months(
        con,
        f"select period_start, bool_and(is_complete) as is_complete, {columns} {base} "
        "group by period_start",
    )


def _quoted(value: str) -> str:
    return value.replace("'", "''")


def pooled(ratio: str) -> str:
    """A channel's cohorts pooled: the value of all their customers / all their spend, from
    each cohort's ratio x its spend (= its value). A cohort with spend and no customer adds
    its spend and no value; one whose ratio is unknown although it has customers (no
    prediction) is left out of both sums."""
    counted = f"spend > 0 and ({ratio} is not null or new_customers = 0)"
    return (
        f"sum(coalesce({ratio} * spend, 0)) filter (where {counted}) "
        f"/ nullif(sum(spend) filter (where {counted}), 0)"
    )


def customers(count: int) -> str:
    return f"{count:,} customer" + ("" if count == 1 else "s")


def ltv_cac_by_channel(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[str, str]:
    """Horizontal bars per channel with spend: historic and predicted LTV:CAC of all its
    cohorts pooled (`pooled`), with lines at 1 (the customers paid their cost back) and 3
    (the usual target)."""
    source.require(
        "marts.ltv_cac_by_channel",
        "channel",
        "cohort_month",
        "new_customers",
        "spend",
        "cac",
        "historic_ltv_cac_ratio",
        "predicted_ltv_cac_ratio",
    )
    channels = rows(
        con,
        f"""
        select
            channel,
            sum(new_customers)::bigint as customers,
            coalesce(sum(spend), 0)::double as spend,
            {pooled("historic_ltv_cac_ratio")} as historic,
            {pooled("predicted_ltv_cac_ratio")} as predicted
        from marts.ltv_cac_by_channel
        group by channel
        order by spend desc, customers desc, channel
        """,
    )
    paid = [row for row in channels if row["spend"] > 0]
    if not paid:
        raise Unavailable("marts.ltv_cac_by_channel has no channel with marketing spend")
    unpaid = [row for row in channels if row["spend"] <= 0]
    ratios = [row[key] for row in paid for key in ("historic", "predicted")]
    top = max([value for value in ratios if value is not None] + [3.0])
    domain = nice_domain(0.0, top * 1.05)

    bar_h, gap = 14, 14
    left, right, top_margin = 150, 860, 58
    width = 900
    height = top_margin + len(paid) * (2 * bar_h + gap) + 50
    x = Linear(domain[0], domain[1], left, right)
    bottom = top_margin + len(paid) * (2 * bar_h + gap)
    body = x_axis(x, nice_ticks(*domain), top_margin - 6, bottom, lambda tick: f"{tick:g}")
    for reference, label in ((1.0, "1 = paid back"), (3.0, "3 = usual target")):
        body.append(
            f'<line x1="{x(reference):.1f}" x2="{x(reference):.1f}" y1="{top_margin - 6}" '
            f'y2="{bottom:.1f}" stroke="{MUTED}" stroke-dasharray="4 3"/>'
        )
        body.append(text(x(reference) + 4, top_margin - 10, label, class_="legend"))
    for index, row in enumerate(paid):
        y = top_margin + index * (2 * bar_h + gap)
        body.append(
            text(
                left - 8,
                y + bar_h + 4,
                f"{row['channel']} ({row['customers']:,})",
                "end",
                class_="tick",
            )
        )
        for offset, (key, name, colour) in enumerate(
            (("historic", "historic", BLUE), ("predicted", "predicted 12-month", ORANGE))
        ):
            value = row[key]
            bar_y = y + offset * bar_h
            if value is None:
                body.append(text(left + 4, bar_y + bar_h - 3, "no value", class_="legend"))
                continue
            body.append(
                f'<rect class="mark" x="{left}" y="{bar_y + 1:.1f}" '
                f'width="{max(x(value) - left, 1):.1f}" height="{bar_h - 2}" fill="{colour}">'
                + tooltip(
                    f"{row['channel']}, {name} LTV:CAC: {value:.2f} "
                    f"({customers(row['customers'])}, spend {fmt_number(row['spend'])})"
                )
                + "</rect>"
            )
    body += legend(
        left,
        16,
        [
            (
                "historic CLV x margin / CAC",
                f'<rect x="0" y="-5" width="12" height="10" fill="{BLUE}"/>',
            ),
            (
                "predicted 12-month CLV / CAC",
                f'<rect x="0" y="-5" width="12" height="10" fill="{ORANGE}"/>',
            ),
        ],
    )
    body.append(
        text(
            (left + right) / 2,
            height - 8,
            "LTV:CAC (value per customer / cost per customer)",
            "middle",
            class_="axis-title",
        )
    )
    note = ""
    if unpaid:
        note = (
            "Channels without marketing spend (no CAC): "
            + ", ".join(f"{row['channel']} ({customers(row['customers'])})" for row in unpaid)
            + "."
        )
    return svg("ltv-cac-by-channel", width, height, "LTV:CAC by acquisition channel", body), note
