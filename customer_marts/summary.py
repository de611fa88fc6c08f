"""A short, human-readable account of the latest run and the published marts."""

from __future__ import annotations

from customer_marts.config import Settings
from customer_marts.publish import DOCS_DIR, PARQUET_DIR, current_version
from customer_marts.report import REPORT_DIR
from customer_marts.warehouse import connect


def describe_latest_run(settings: Settings) -> list[str]:
    """The latest run of the build database: outcome, counts and quality verdict."""
    if not settings.build_db.exists():
        return []
    with connect(settings.build_db, read_only=True) as con:
        run = con.execute(
            "select run_id, logical_date, status, failed_step, message, rows_ingested, "
            "rows_quarantined, checks_passed, checks_warned, checks_failed "
            "from audit.pipeline_runs order by started_at desc limit 1"
        ).fetchone()
    if not run:
        return []
    run_id, as_of, status, failed_step, message, ingested, quarantined, *checks = run
    passed, warned, failed = (count or 0 for count in checks)
    lines = [
        f"latest run: {run_id} (as of {as_of}): {status.upper()}",
        "quality verdict: "
        + ("FAILED" if failed or status == "failed" else "PASSED")
        + f" ({passed} passed, {warned} warned, {failed} failed checks)",
        f"rows ingested: {ingested or 0:,}, quarantined: {quarantined or 0:,}",
    ]
    if status == "failed":
        lines.append(f"failed step: {failed_step}\n{message}")
    return lines


def describe_published(settings: Settings) -> str:
    lines = describe_latest_run(settings)
    published = settings.published_db
    if not published.exists():
        lines.append(f"nothing published yet at {published}")
        return "\n".join(lines)
    with connect(published, read_only=True) as con:
        tables = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where schema_name = 'marts' order by 1"
        ).fetchall()
        counts = [
            (name, con.execute(f"select count(*) from {name}").fetchone()[0]) for (name,) in tables
        ]
        version = current_version(settings.warehouse_dir, published)
        record = con.execute(
            "select logical_date, data_as_of from audit.pipeline_runs "
            "where status = 'success' order by started_at desc limit 1"
        ).fetchone()
    logical_date, as_of = record or (None, None)
    lines.append(
        f"published: {published} (version {version.name if version else '?'}; "
        f"as-of date {logical_date}, newest data {as_of})"
    )
    lines += [f"  {name:<32} {count:>10,} rows" for name, count in counts]
    parquet = settings.warehouse_dir / PARQUET_DIR
    if parquet.exists():
        lines.append(f"parquet export: {parquet}/<table>.parquet")
    report = settings.warehouse_dir / REPORT_DIR / "index.html"
    if report.exists():
        lines.append(f"run report: {report}")
    docs = settings.warehouse_dir / DOCS_DIR
    if (docs / "index.html").exists():
        lines.append(
            f"dbt docs site: {docs}/index.html (serve it: make docs; "
            f"offline: {docs}/static_index.html)"
        )
    return "\n".join(lines)
