"""The visual run report: one static, self-contained HTML page per published build.

`write_report(published_db, out_dir)` opens the published file read-only,
aggregates in DuckDB (only a few hundred rows reach Python, whatever the
build's size) and writes `out_dir/index.html`: inline SVG drawn here, inline
CSS, no script, no font or stylesheet from the network, so it opens from disk,
offline, in any browser. The page is written to a temporary file and renamed
over `index.html`, so a browser never sees half a page.

Sections (docs/run-report.md):
- cohort retention heatmap: the monthly triangle (`marts.cohort_retention`);
- retention and churn rate by month (`marts.retention_by_period`);
- NPS by month with its 95 % margin of error (`marts.nps_by_period`, overall);
- 12-month CLV by lifecycle stage and value segment (`marts.customer_clv`
  joined to `marts.dim_customers`), with the 90 % interval of each segment's mean
  (`marts.clv_by_segment`);
- the CLV model's holdout check: actual vs predicted repeat purchases by calibration
  frequency and cumulated over the holdout weeks (`marts.clv_validation`);
- the run's data quality: checks, quarantined rows, freshness and recent runs
  (`audit.*`).

A mart missing from the published file (an older build, a model not yet
built) turns its section into "not available in this build"; the rest renders.
Every data mark in a chart has the class `mark`, so a test can count them.
"""

from __future__ import annotations

import html
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from customer_marts.config import Settings
from customer_marts.warehouse import connect

log = logging.getLogger(__name__)

REPORT_DIR = "report"  # under $WAREHOUSE_DIR
REPORT_FILE = "index.html"
MAX_COHORTS = 24  # the heatmap shows the newest cohorts
MAX_MONTHS = 36  # the trend charts show the newest months
MAX_LISTED = 25  # rows of a table before "and N more"
LINES_LISTED = 12  # line numbers listed per quarantine reason
RECENT_RUNS = 10
CHECK_STATUSES = ("passed", "warned", "failed")

INK = "#1f2937"
MUTED = "#9ca3af"
GRID = "#e5e7eb"
BLUE = "#2563eb"
ORANGE = "#ea580c"
GREEN = "#16a34a"
AMBER = "#d97706"
RED = "#dc2626"
# The heatmap's sequential scale, light to dark (ColorBrewer Blues).
HEAT_LOW = (239, 246, 255)
HEAT_HIGH = (8, 48, 107)

STAGE_ORDER = ("new", "active", "at_risk", "churned")


# ---------------------------------------------------------------- reading the build


class Unavailable(Exception):
    """A section's data is not in the published file."""


@dataclass(frozen=True)
class Source:
    """The published tables a build has, with their columns."""

    columns: dict[str, set[str]]

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> Source:
        columns: dict[str, set[str]] = {}
        for table, column in con.execute(
            "select schema_name || '.' || table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and schema_name in ('marts', 'audit')"
        ).fetchall():
            columns.setdefault(table, set()).add(column)
        return cls(columns)

    def require(self, table: str, *needed: str) -> None:
        if table not in self.columns:
            raise Unavailable(f"{table} is not in this build")
        missing = [column for column in needed if column not in self.columns[table]]
        if missing:
            raise Unavailable(f"{table} has no column {', '.join(missing)} in this build")


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    return con.sql(sql, params=list(params)).to_dicts()


def newest_months(con: duckdb.DuckDBPyConnection, monthly_sql: str) -> list[dict]:
    """The rows of a monthly query (one row per `period_start`) for its newest MAX_MONTHS
    months, one row per calendar month: a month the query has no row for comes back
    with its other columns null, so a chart leaves a gap instead of closing it up."""
    return rows(
        con,
        f"""
        with monthly as ({monthly_sql}),
        spine as (
            select unnest(generate_series(
                greatest(min(period_start), max(period_start) - interval {MAX_MONTHS - 1} month),
                max(period_start),
                interval 1 month
            ))::date as period_start
            from monthly
        )
        select spine.period_start, monthly.* exclude (period_start)
        from spine
        left join monthly on monthly.period_start = spine.period_start
        order by spine.period_start
        """,
    )


# ---------------------------------------------------------------- SVG primitives


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_number(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f} %"


def month_label(day: date) -> str:
    return f"{day:%Y-%m}"


@dataclass(frozen=True)
class Linear:
    """Maps a data interval onto a pixel interval."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        span = (self.d1 - self.d0) or 1.0
        return self.r0 + (value - self.d0) * (self.r1 - self.r0) / span


def nice_step(low: float, high: float, count: int = 5) -> float:
    """A round step (1, 2 or 5 x 10^k) that cuts low..high into about `count` parts."""
    raw = (high - low) / count if high > low else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """The multiples of the round step within low..high."""
    step = nice_step(low, high, count)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [round(index * step, 10) for index in range(first, last + 1)]


def nice_domain(low: float, high: float, count: int = 5) -> tuple[float, float]:
    """low..high widened to multiples of the round step."""
    step = nice_step(low, high, count)
    return math.floor(low / step) * step, max(
        math.ceil(high / step), math.floor(low / step) + 1
    ) * step


def svg(chart_id: str, width: int, height: int, label: str, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{chart_id}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(label)}">' + "".join(body) + "</svg>"
    )


def text(x: float, y: float, content: object, anchor: str = "start", **attrs: object) -> str:
    extra = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{esc(value)}"' for key, value in attrs.items()
    )
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(content)}</text>'


def tooltip(content: str) -> str:
    return f"<title>{esc(content)}</title>"


def y_axis(scale: Linear, ticks: list[float], left: float, right: float, fmt) -> list[str]:
    """Horizontal grid lines with their labels left of the plot."""
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(
            f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(text(left - 6, y + 4, fmt(tick), "end", class_="tick"))
    return parts


def axis_titles(
    width: int, height: int, x_title: str, y_title: str, top: float, bottom: float
) -> list[str]:
    middle = (top + bottom) / 2
    return [
        text(width / 2, height - 6, x_title, "middle", class_="axis-title"),
        f'<text x="14" y="{middle:.1f}" text-anchor="middle" class="axis-title" '
        f'transform="rotate(-90 14 {middle:.1f})">{esc(y_title)}</text>',
    ]


def legend(x: float, y: float, items: list[tuple[str, str]]) -> list[str]:
    """Legend entries (label, SVG swatch drawn at 0,0) laid out left to right."""
    parts = []
    for label, swatch in items:
        parts.append(f'<g transform="translate({x:.1f},{y:.1f})">{swatch}</g>')
        parts.append(text(x + 16, y + 4, label, class_="legend"))
        x += 28 + 6.5 * len(label)
    return parts


def heat_colour(share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    rgb = (round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ---------------------------------------------------------------- charts


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


# ---------------------------------------------------------------- data quality


def published_run(con: duckdb.DuckDBPyConnection, source: Source) -> dict:
    """The run that published this file: its newest successful run."""
    source.require("audit.pipeline_runs", "run_id", "status", "started_at", "logical_date")
    found = rows(
        con,
        "select * from audit.pipeline_runs where status = 'success' "
        "order by started_at desc limit 1",
    )
    if not found:
        raise Unavailable("audit.pipeline_runs records no successful run")
    return found[0]


def checks_chart(counts: list[dict]) -> str:
    """One stacked bar per layer: passed, warned and failed checks."""
    width, row_h = 900, 30
    left, right, top = 110, width - 30, 34
    bottom = top + len(counts) * row_h
    height = bottom + 48
    most = max(row["passed"] + row["warned"] + row["failed"] for row in counts) or 1
    domain = nice_domain(0, most)
    x = Linear(domain[0], domain[1], left, right)
    body = []
    for tick in nice_ticks(*domain):
        if tick == int(tick):
            body.append(
                f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{bottom}" '
                f'stroke="{GRID}"/>'
            )
            body.append(text(x(tick), bottom + 16, f"{tick:.0f}", "middle", class_="tick"))
    for index, row in enumerate(counts):
        mid = top + (index + 0.5) * row_h
        body.append(text(left - 8, mid + 4, row["layer"], "end", class_="tick"))
        start = 0
        for status, colour in (("passed", GREEN), ("warned", AMBER), ("failed", RED)):
            if row[status]:
                body.append(
                    f'<rect class="mark" x="{x(start):.1f}" y="{mid - 9:.1f}" '
                    f'width="{x(start + row[status]) - x(start):.1f}" height="18" '
                    f'fill="{colour}">'
                    + tooltip(f"{row['layer']}: {row[status]} {status}")
                    + "</rect>"
                )
                start += row[status]
    body += legend(
        left,
        16,
        [
            (status, f'<rect x="0" y="-5" width="12" height="10" fill="{colour}"/>')
            for status, colour in (("passed", GREEN), ("warned", AMBER), ("failed", RED))
        ],
    )
    body.append(text((left + right) / 2, height - 8, "checks", "middle", class_="axis-title"))
    return svg("quality-checks", width, height, "Quality checks by layer and status", body)


def table(found: list[dict], headings: dict[str, str]) -> str:
    """Query rows as an HTML table; `headings` maps columns to headings. A `total` column
    (`count(*) over ()` before the limit) adds "and N more" below a cut table."""
    head = "".join(f"<th>{esc(heading)}</th>" for heading in headings.values())
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(row[column])}</td>" for column in headings) + "</tr>"
        for row in found
    )
    total = found[0].get("total", len(found)) if found else 0
    more = f'<p class="note">… and {total - len(found):,} more.</p>' if total > len(found) else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def run_cards(run: dict, freshness_days: int) -> str:
    """The run's identity, freshness and counts, as a grid of labelled values."""
    as_of, newest = run.get("logical_date"), run.get("data_as_of")
    if newest is None:
        freshness, freshness_state = "newest data: unknown", "warn"
    else:
        lag = (as_of - newest).days
        fresh = lag <= freshness_days
        freshness_state = "ok" if fresh else "bad"
        freshness = (
            f"data as of {newest}: {lag} day{'' if lag == 1 else 's'} before the as-of date "
            f"({'fresh' if fresh else 'STALE'}: limit {freshness_days} days)"
        )
    started, finished = run.get("started_at"), run.get("finished_at")
    timing = f"{started:%Y-%m-%d %H:%M:%S}" if started else "–"
    if started and finished:
        timing += f" → {finished:%H:%M:%S} ({(finished - started).total_seconds():,.0f} s)"
    passed, warned, failed = (run.get(f"checks_{status}") or 0 for status in CHECK_STATUSES)
    quarantined = run.get("rows_quarantined") or 0
    cards = [
        ("run", run["run_id"], ""),
        ("as-of date", as_of, ""),
        ("freshness", freshness, freshness_state),
        ("started → finished (UTC)", timing, ""),
        ("rows ingested", fmt_number(run.get("rows_ingested")), ""),
        ("rows quarantined", fmt_number(quarantined), "warn" if quarantined else "ok"),
        (
            "checks",
            f"{passed} passed, {warned} warned, {failed} failed",
            "bad" if failed else "warn" if warned else "ok",
        ),
        ("published version", run.get("published_version") or "–", ""),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card {state}"><div class="k">{esc(label)}</div>'
            f'<div class="v">{esc(value)}</div></div>'
            for label, value, state in cards
        )
        + "</div>"
    )


def checks_part(con: duckdb.DuckDBPyConnection, source: Source, run_id: str) -> str:
    source.require("audit.check_results", "run_id", "layer", "suite", "check", "status")
    counts = rows(
        con,
        """
        select layer,
            count(*) filter (where status = 'passed') as passed,
            count(*) filter (where status = 'warned') as warned,
            count(*) filter (where status = 'failed') as failed
        from audit.check_results where run_id = ? group by layer order by layer
        """,
        [run_id],
    )
    not_passed = rows(
        con,
        """
        select status, layer, suite, "check", observed_value, left(details, 300) as details,
            count(*) over () as total
        from audit.check_results where run_id = ? and status <> 'passed'
        order by status = 'failed' desc, layer, suite, "check" limit ?
        """,
        [run_id, MAX_LISTED],
    )
    parts = [
        '<p class="how">How to read it: one bar per layer; green checks passed, amber ones '
        "warned (recorded, did not block), red ones failed (an error blocks publish).</p>",
        checks_chart(counts)
        if counts
        else '<p class="note">No check results recorded for this run.</p>',
    ]
    if not_passed:
        headings = ("status", "layer", "suite", "check", "observed_value", "details")
        parts.append(table(not_passed, {column: column.replace("_", " ") for column in headings}))
    else:
        parts.append('<p class="ok-line">Every check passed.</p>')
    return "".join(parts)


def quarantine_part(con: duckdb.DuckDBPyConnection, source: Source, run_id: str) -> str:
    source.require(
        "audit.quarantine", "source", "file_name", "line_number", "column", "reason", "run_id"
    )
    quarantined = rows(
        con,
        """
        with numbered as (
            select source, file_name, "column", reason, line_number,
                row_number() over (
                    partition by source, file_name, "column", reason order by line_number
                ) as nth
            from audit.quarantine where run_id = ?
        )
        select source, file_name, "column", reason, count(*) as quarantined_rows,
            string_agg(line_number::varchar, ', ' order by line_number)
                filter (where nth <= ? and line_number is not null)
                || if(count(*) > ?, ', …', '') as lines,
            count(*) over () as total
        from numbered
        group by all order by quarantined_rows desc, file_name, reason limit ?
        """,
        [run_id, LINES_LISTED, LINES_LISTED, MAX_LISTED],
    )
    if not quarantined:
        return '<p class="ok-line">No rows were quarantined in this run.</p>'
    return (
        '<p class="how">How to read it: rows set aside by ingestion, grouped by file and '
        "reason, with their line numbers in the file; fix them at the source and re-deliver "
        "the file.</p>"
        + table(
            quarantined,
            {
                "source": "source",
                "file_name": "file",
                "column": "column",
                "reason": "reason",
                "quarantined_rows": "rows",
                "lines": "lines",
            },
        )
    )


def recent_runs_part(con: duckdb.DuckDBPyConnection) -> str:
    runs = rows(
        con,
        """
        select run_id, logical_date, status, coalesce(failed_step, '') as failed_step,
            if(length(message) > 160, left(message, 159) || '…', coalesce(message, ''))
                as message
        from audit.pipeline_runs order by started_at desc limit ?
        """,
        [RECENT_RUNS],
    )
    headings = {
        "run_id": "run",
        "logical_date": "as-of date",
        "status": "status",
        "failed_step": "failed step",
        "message": "message",
    }
    return "<h3>Recent runs</h3>" + table(runs, headings)


def quality_section(
    con: duckdb.DuckDBPyConnection, source: Source, run: dict, freshness_days: int
) -> str:
    parts = [run_cards(run, freshness_days)]
    for heading, part in (("Checks", checks_part), ("Quarantined rows", quarantine_part)):
        try:
            content = part(con, source, run["run_id"])
        except Unavailable as missing:
            content = f'<p class="missing">Not available in this build: {esc(missing)}.</p>'
        parts.append(f"<h3>{heading}</h3>{content}")
    parts.append(recent_runs_part(con))
    return "".join(parts)


# ---------------------------------------------------------------- the page

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1f2937; margin: 0; background: #f9fafb; }
main { max-width: 960px; margin: 0 auto; padding: 24px; }
header h1 { font-size: 24px; margin: 0 0 4px; }
header p { margin: 0; color: #4b5563; }
nav { margin: 12px 0 8px; }
nav a { margin-right: 14px; color: #2563eb; text-decoration: none; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px;
  padding: 16px 20px; margin: 18px 0; overflow-x: auto; }
h2 { font-size: 18px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 18px 0 4px; }
.how { color: #4b5563; margin: 0 0 10px; }
.note { color: #6b7280; font-size: 12px; margin: 6px 0 0; }
.missing { color: #92400e; background: #fffbeb; border: 1px solid #fde68a;
  border-radius: 6px; padding: 10px 12px; }
.ok-line { color: #166534; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; fill: #374151; }
svg text.axis-title { font-size: 12px; fill: #111827; font-weight: 600; }
svg text.cell { font-size: 10px; }
svg text.on-dark { fill: #ffffff; }
svg text.legend { font-size: 11px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr));
  gap: 8px; }
.card { border: 1px solid #e5e7eb; border-left: 4px solid #d1d5db; border-radius: 6px;
  padding: 6px 10px; }
.card.ok { border-left-color: #16a34a; } .card.warn { border-left-color: #d97706; }
.card.bad { border-left-color: #dc2626; }
.card .k { font-size: 11px; color: #6b7280; text-transform: uppercase; }
.card .v { font-weight: 600; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin-top: 6px; }
th, td { text-align: left; border-bottom: 1px solid #e5e7eb; padding: 4px 6px;
  vertical-align: top; }
th { background: #f3f4f6; }
"""

SECTIONS = (
    # id, title, how to read it
    (
        "cohort-retention",
        "Cohort retention (monthly triangle)",
        "How to read it: each row is the customers whose first order fell in that month; "
        "each cell is the % of them who ordered again N months later (darker = more "
        "retained). Compare down a column to see whether newer cohorts keep better.",
    ),
    (
        "retention-churn",
        "Retention and churn rate by month",
        "How to read it: of the customers active at the start of a month, the blue line is "
        "the % still active at its end and the orange line the % lost; they add up to "
        "100 %. Hollow grey points are the month still in progress.",
    ),
    (
        "nps",
        "Net Promoter Score by month",
        "How to read it: the line is the monthly NPS (% promoters − % detractors) and the "
        "shaded band its 95 % margin of error; a change smaller than the band may be noise. "
        "Grey months have too few responses to report.",
    ),
    (
        "clv",
        "Predicted 12-month CLV by segment",
        "How to read it: one box per lifecycle stage and value segment; the box spans the "
        "middle half of customers, the black bar is the median, the diamond the mean and "
        "the whiskers the 5th to 95th percentile of predicted value over the next 12 months; "
        "the orange bar under a box is the 90 % interval of the segment's mean from the "
        "models' uncertainty (narrow: the mean is well determined).",
    ),
    (
        "clv-holdout",
        "Holdout check of the CLV model",
        "How to read it: the model was refitted on the history up to the calibration end "
        "and asked to predict the days after it, which it had not seen. Bars: repeat "
        "purchases per customer in that holdout, actual (dark) vs predicted (blue), by how "
        "often the customers had bought before; lines: the same cumulated week by week. "
        "Close bars and lines mean forecasts you can use; a systematic gap means rank "
        "customers with the predictions, do not forecast with them.",
    ),
    (
        "quality",
        "Data quality of this run",
        "How to read it: the run that published this build, whether its data is fresh, "
        "what its quality checks found and which input rows were set aside.",
    ),
)

SOURCES = {
    "cohort-retention": "marts.cohort_retention (grain month), newest "
    f"{MAX_COHORTS} cohorts; values are retention_pct.",
    "retention-churn": f"marts.retention_by_period (grain month), newest {MAX_MONTHS} months.",
    "nps": "marts.nps_by_period (grain month, dimension overall), newest "
    f"{MAX_MONTHS} months; marts.nps_rolling_30d.",
    "clv": "marts.customer_clv.clv_12m by marts.dim_customers.lifecycle_stage and "
    "is_high_value; intervals: marts.clv_by_segment.avg_clv_12m_low / _high.",
    "clv-holdout": "marts.clv_validation (the model in use: is_selected_model).",
    "quality": "audit.pipeline_runs, audit.check_results, audit.quarantine.",
}


def render_section(
    section_id: str, title: str, how: str, content: str | None, reason: str = "", extra: str = ""
) -> str:
    if content is None:
        return (
            f'<section id="{section_id}" class="unavailable"><h2>{esc(title)}</h2>'
            f'<p class="missing">Not available in this build: {esc(reason)}.</p></section>'
        )
    return (
        f'<section id="{section_id}"><h2>{esc(title)}</h2><p class="how">{esc(how)}</p>'
        f"{content}{extra}"
        f'<p class="note">Source: {esc(SOURCES[section_id])}</p></section>'
    )


def render(con: duckdb.DuckDBPyConnection, freshness_days: int) -> str:
    """The whole page as a string."""
    con.execute("set enable_progress_bar = false")  # a pipeline log is not a terminal
    source = Source.read(con)
    try:
        run = published_run(con, source)
    except Unavailable:
        run = {}
    content: dict[str, tuple[str | None, str, str]] = {}

    def attempt(section_id: str, build) -> None:
        try:
            result = build()
        except Unavailable as missing:
            content[section_id] = (None, str(missing), "")
            return
        chart, extra = result if isinstance(result, tuple) else (result, "")
        content[section_id] = (chart, "", f'<p class="note">{esc(extra)}</p>' if extra else "")

    attempt("cohort-retention", lambda: cohort_heatmap(con, source))
    attempt("retention-churn", lambda: retention_trend(con, source))
    attempt("nps", lambda: nps_trend(con, source))
    attempt("clv", lambda: clv_by_segment(con, source))
    attempt("clv-holdout", lambda: clv_holdout(con, source))
    if run:
        attempt("quality", lambda: quality_section(con, source, run, freshness_days))
    else:
        content["quality"] = (None, "audit.pipeline_runs records no successful run", "")

    generated = datetime.now(UTC)
    subtitle = (
        f"As-of date {run.get('logical_date')} · data as of {run.get('data_as_of') or '?'} · "
        f"run {run.get('run_id')} · version {run.get('published_version') or '?'}"
        if run
        else "No successful run recorded in this file."
    )
    sections = "".join(
        render_section(section_id, title, how, *content[section_id])
        for section_id, title, how in SECTIONS
    )
    nav = "".join(f'<a href="#{section_id}">{esc(title)}</a>' for section_id, title, _ in SECTIONS)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Customer Marts run report – {esc(run.get('logical_date', ''))}</title>"
        f"<style>{STYLE}</style></head><body><main>"
        f"<header><h1>Customer Marts: run report</h1><p>{esc(subtitle)}</p>"
        f'<p class="note">Generated {generated:%Y-%m-%d %H:%M:%S} UTC from the published '
        "build. Hover a mark for its numbers.</p></header>"
        f"<nav>{nav}</nav>{sections}</main></body></html>\n"
    )


def write_atomically(path: Path, content: str) -> None:
    """Write `path` through a temporary file in the same folder and one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_report(published_db: Path, out_dir: Path, freshness_days: int | None = None) -> Path:
    """Render the report of the published build into `out_dir/index.html`; return its path.

    `freshness_days` (default: the FRESHNESS_DAYS setting) is the lag between the
    as-of date and the newest data beyond which the report calls the data stale.
    """
    if not published_db.exists():
        raise FileNotFoundError(f"no published build at {published_db}: run the pipeline first")
    if freshness_days is None:
        freshness_days = Settings.from_env().freshness_days
    with connect(published_db, read_only=True) as con:
        page = render(con, freshness_days)
    target = out_dir / REPORT_FILE
    write_atomically(target, page)
    log.info("run report written to %s (%d kB)", target, len(page) // 1024)
    return target


def write_run_report(settings: Settings) -> Path | None:
    """Render the report of what is published now, for the publish step: never raises.

    The publish has already happened when this runs; a report that cannot be
    rendered is logged as a warning and must not fail or undo it.
    """
    try:
        return write_report(
            settings.published_db, settings.warehouse_dir / REPORT_DIR, settings.freshness_days
        )
    except Exception as exc:  # noqa: BLE001 - the report is not worth failing a publish for
        log.warning("the run report could not be rendered (the publish stands): %s", exc)
        return None
