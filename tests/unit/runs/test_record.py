"""The run record's writers on real DuckDB files: the run history taken over from a
published file written by an older version (fewer columns)."""

from __future__ import annotations

from customer_marts.runs import record
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import connect, sql_literal


def test_copy_history_takes_the_columns_an_older_published_file_has(tmp_path):
    old = tmp_path / "published.duckdb"
    with connect(old) as con:  # an older run record: no data_as_of, no completed_steps
        con.execute("create schema audit")
        con.execute(
            "create table audit.pipeline_runs (run_id varchar, logical_date date, status varchar)"
        )
        con.execute(
            "insert into audit.pipeline_runs values ('r1', '2025-06-01', 'success'), "
            "('r2', '2025-06-02', 'failed')"
        )
    build = tmp_path / "build.duckdb"
    with connect(build) as con:
        ensure_schema(con)
        con.execute(f"attach {sql_literal(old)} as history (read_only)")
        # check_results is absent from the old file: nothing to copy, no error
        record.copy_history(con, "history", ("pipeline_runs", "check_results"))
        con.execute("detach history")
        rows = con.execute(
            "select run_id, logical_date::varchar, status, data_as_of, completed_steps "
            "from audit.pipeline_runs order by run_id"
        ).fetchall()
        checks = con.execute("select count(*) from audit.check_results").fetchone()[0]
    # the two rows as written above; the columns the old file lacks stay empty
    assert rows == [
        ("r1", "2025-06-01", "success", None, None),
        ("r2", "2025-06-02", "failed", None, None),
    ]
    assert checks == 0
