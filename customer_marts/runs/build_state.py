"""The build state (`audit.build_state`, docs/run-record.md): one row per run whose
dbt_build step started, with what it built from and how.

- `as_of_date`: the run's as-of date;
- `project_fingerprint`, `sources_fingerprint`, `dbt_vars` (JSON): the build's inputs
  (customer_marts/transform/fingerprint.py);
- `full_refresh` and `refresh_reason`: whether `dbt build` ran with `--full-refresh`,
  and why (customer_marts/transform/refresh.py); the reason is NULL for an
  incremental build;
- `status`: `running` while dbt builds, then `success` or `failed` (a build killed
  on the way stays `running`, which counts as not finished);
- `started_at`, `finished_at`.

The next build compares its inputs and as-of date with the last `success` row's to
decide whether it rebuilds every model. The incremental models read it too
(int_customers_changed): the rows to add are those that changed since the last
successful build (dated after its `as_of_date`, noted after its `started_at`). A
retried dbt_build step replaces its run's row, so a run is never its own reference.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import duckdb

from customer_marts.transform.fingerprint import BuildInputs
from customer_marts.transform.refresh import PreviousBuild, Refresh

COLUMNS = (
    "run_id, as_of_date, started_at, finished_at, status, full_refresh, refresh_reason, "
    "project_fingerprint, sources_fingerprint, dbt_vars"
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _previous(row: tuple | None) -> PreviousBuild | None:
    if row is None:
        return None
    run_id, as_of, status, full_refresh, project, sources, dbt_vars = row
    inputs = BuildInputs(project=project, sources=sources, dbt_vars=json.loads(dbt_vars))
    return PreviousBuild(run_id, as_of, status, bool(full_refresh), inputs)


def previous_builds(
    con: duckdb.DuckDBPyConnection,
) -> tuple[PreviousBuild | None, PreviousBuild | None]:
    """(the last successful build, the latest build attempt), each None if there is none."""
    query = (
        "select run_id, as_of_date, status, full_refresh, project_fingerprint, "
        "sources_fingerprint, dbt_vars from audit.build_state {where} "
        "order by started_at desc limit 1"
    )
    last_success = con.execute(query.format(where="where status = 'success'")).fetchone()
    latest = con.execute(query.format(where="")).fetchone()
    return _previous(last_success), _previous(latest)


def record_start(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: date,
    inputs: BuildInputs,
    refresh: Refresh,
) -> None:
    """The run's build, status `running` (replacing the row of an earlier attempt)."""
    con.execute("delete from audit.build_state where run_id = ?", [run_id])
    con.execute(
        f"insert into audit.build_state ({COLUMNS}) values (?, ?, ?, null, 'running', ?, ?, ?, ?, ?)",
        [
            run_id,
            as_of,
            _now(),
            refresh.full,
            refresh.reason,
            inputs.project,
            inputs.sources,
            json.dumps(inputs.dbt_vars, sort_keys=True),
        ],
    )


def record_end(con: duckdb.DuckDBPyConnection, run_id: str, status: str) -> None:
    """The run's build finished: `success` or `failed`."""
    con.execute(
        "update audit.build_state set status = ?, finished_at = ? where run_id = ?",
        [status, _now(), run_id],
    )
