"""The report's data quality section: the published run, its checks, quarantined rows,
freshness and recent runs (`audit.*`).
"""

from __future__ import annotations

import logging

import duckdb

from customer_marts.report.scales import Linear, nice_domain, nice_ticks
from customer_marts.report.source import Source, Unavailable, rows
from customer_marts.report.svg import (
    AMBER,
    GREEN,
    RED,
    esc,
    fmt_number,
    legend,
    svg,
    text,
    tooltip,
    x_axis,
)

log = logging.getLogger(__name__)


MAX_LISTED = 25  # rows of a table before "and N more"
LINES_LISTED = 12  # line numbers listed per quarantine reason
RECENT_RUNS = 10
CHECK_STATUSES = ("passed", "warned", "failed")


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
    whole = [tick for tick in nice_ticks(*domain) if tick == int(tick)]
    body = x_axis(x, whole, top, bottom, lambda tick: f"{tick:.0f}")
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
