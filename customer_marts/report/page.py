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
- retention rate by month per acquisition channel (`marts.retention_by_period`,
  dimension acquisition_channel; groups too small to report left out);
- LTV:CAC by acquisition channel, its cohorts pooled (`marts.ltv_cac_by_channel`);
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

import logging
import os
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb

from customer_marts.config import Settings
from customer_marts.report.acquisition_charts import ltv_cac_by_channel, retention_by_channel
from customer_marts.report.charts import MAX_COHORTS, cohort_heatmap, nps_trend, retention_trend
from customer_marts.report.clv_charts import clv_by_segment, clv_holdout
from customer_marts.report.quality import published_run, quality_section
from customer_marts.report.source import MAX_MONTHS, Source, Unavailable
from customer_marts.report.svg import esc
from customer_marts.warehouse import connect

log = logging.getLogger(__name__)

STYLESHEET = "report.css"  # package data, inlined into every page


def style() -> str:
    """The page's CSS (customer_marts/report/report.css)."""
    return resources.files(__package__).joinpath(STYLESHEET).read_text()


REPORT_DIR = "report"  # under $WAREHOUSE_DIR
REPORT_FILE = "index.html"
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
        "retention-channel",
        "Retention rate by acquisition channel",
        "How to read it: one line per channel the customers first bought through; each "
        "point is the % of that channel's customers active at the start of the month who "
        "were still active at its end. A channel whose line stays higher keeps its "
        "customers longer. Months with too few of a channel's customers are left out.",
    ),
    (
        "ltv-cac",
        "LTV:CAC by acquisition channel",
        "How to read it: per channel with marketing spend, what its customers are worth "
        "against what acquiring them cost, all its monthly cohorts pooled (weighted by "
        "spend). Blue: margin earned so far (historic CLV x margin) / CAC; orange: predicted "
        "12-month CLV / CAC. Below 1 the channel has not paid its customers back; about 3 "
        "is the usual target.",
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
    "cohort-retention": "marts.cohort_retention (grain month, dimension overall), newest "
    f"{MAX_COHORTS} cohorts; values are retention_pct.",
    "retention-churn": "marts.retention_by_period (grain month, dimension overall), newest "
    f"{MAX_MONTHS} months.",
    "retention-channel": "marts.retention_by_period (grain month, dimension "
    f"acquisition_channel, is_reportable), newest {MAX_MONTHS} months.",
    "ltv-cac": "marts.ltv_cac_by_channel (historic_ltv_cac_ratio, predicted_ltv_cac_ratio "
    "weighted by spend over the channel's cohorts with spend).",
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
    attempt("retention-channel", lambda: retention_by_channel(con, source))
    attempt("ltv-cac", lambda: ltv_cac_by_channel(con, source))
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
        f"<style>{style()}</style></head><body><main>"
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
