"""A short, human-readable account of the latest run and the published marts."""

from __future__ import annotations

from customer_marts.config import Settings
from customer_marts.warehouse import connect


def describe_published(settings: Settings) -> str:
    lines: list[str] = []
    if settings.build_db.exists():
        with connect(settings.build_db, read_only=True) as con:
            run = con.execute(
                "select run_id, logical_date, status, failed_step, message "
                "from audit.pipeline_runs order by started_at desc limit 1"
            ).fetchone()
            if run:
                run_id, as_of, status, failed_step, message = run
                checks = dict(
                    con.execute(
                        "select status, count(*) from audit.check_results where run_id = ? group by 1",
                        [run_id],
                    ).fetchall()
                )
                lines.append(f"latest run: {run_id} (as of {as_of}): {status.upper()}")
                lines.append(
                    "quality verdict: "
                    + ("FAILED" if checks.get("failed") or status == "failed" else "PASSED")
                    + f" ({checks.get('passed', 0)} passed, {checks.get('warned', 0)} warned, "
                    f"{checks.get('failed', 0)} failed checks)"
                )
                if failed_step:
                    lines.append(f"failed step: {failed_step}\n{message}")
    if not settings.published_db.exists():
        lines.append(f"nothing published yet at {settings.published_db}")
        return "\n".join(lines)
    with connect(settings.published_db, read_only=True) as con:
        tables = con.execute(
            "select schema_name || '.' || table_name, estimated_size from duckdb_tables() "
            "where schema_name = 'marts' order by 1"
        ).fetchall()
        counts = [
            (name, con.execute(f"select count(*) from {name}").fetchone()[0]) for name, _ in tables
        ]
        as_of = con.execute(
            "select max(logical_date) filter (status = 'success') from audit.pipeline_runs"
        ).fetchone()[0]
    lines.append(f"published: {settings.published_db} (data as of {as_of})")
    lines += [f"  {name:<32} {count:>10,} rows" for name, count in counts]
    return "\n".join(lines)
