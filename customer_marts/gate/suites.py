"""The suites of the quality gate, as authored in `expectations/<layer>/<table>.json`,
and the run parameters they may use.

Suites may use run parameters, written `${name}` in any string of the suite (a
string that is exactly `${name}` takes the parameter's type): `as_of_date`,
`as_of_end` (the day after), `fresh_since` (the as-of date minus `FRESHNESS_DAYS`),
`freshness_days`, `run_id`, `max_quarantine_pct` (`MAX_QUARANTINE_PCT`),
`volume_tolerance_pct` (`VOLUME_TOLERANCE_PCT`), the dbt project's published precision
(`money_decimals`, `pct_decimals`, `quantity_decimals`) and, per suite,
`volume_previous` (the previous successful run's row count of the table) and
`volume_min` / `volume_max` (that count -/+ `VOLUME_TOLERANCE_PCT`; none on a first run).
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

from customer_marts.config import Settings

PARAMETER = re.compile(r"\$\{(\w+)\}")
VOLUME_CHECK = "volume_vs_previous_run"


def substitute(value: Any, parameters: dict[str, Any]) -> Any:
    """Replace `${name}` run parameters in a suite definition (recursively)."""
    if isinstance(value, dict):
        return {key: substitute(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, parameters) for item in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = PARAMETER.fullmatch(value)
    if whole:
        return parameters[whole.group(1)]
    return PARAMETER.sub(lambda match: str(parameters[match.group(1)]), value)


def published_decimals(dbt_project_dir: Path) -> dict[str, int]:
    """The dbt project's published precision (vars `<kind>_decimals`, for example
    `pct_decimals`): checks of identities between rounded numbers allow for it."""
    project = yaml.safe_load((dbt_project_dir / "dbt_project.yml").read_text())
    return {
        name: int(value)
        for name, value in (project.get("vars") or {}).items()
        if name.endswith("_decimals")
    }


def run_parameters(settings: Settings, run_id: str, as_of: date) -> dict:
    """The parameters every suite of a run may use."""
    return {
        "as_of_date": as_of.isoformat(),
        "as_of_end": (as_of + timedelta(days=1)).isoformat(),
        "fresh_since": (as_of - timedelta(days=settings.freshness_days)).isoformat(),
        "freshness_days": settings.freshness_days,
        "run_id": run_id,
        "max_quarantine_pct": settings.max_quarantine_pct,
        "volume_tolerance_pct": settings.volume_tolerance_pct,
        **published_decimals(settings.dbt_project_dir),
    }


def volume_parameters(
    con: duckdb.DuckDBPyConnection, suite: str, tolerance_pct: float
) -> dict[str, int | None]:
    """The previous successful run's row count of the suite's table and the bounds
    around it."""
    previous = con.execute(
        """
        select check_results.observed_value
        from audit.check_results
        inner join audit.pipeline_runs on check_results.run_id = pipeline_runs.run_id
        where pipeline_runs.status = 'success' and check_results.suite = ?
            and check_results."check" = ?
        order by pipeline_runs.started_at desc
        limit 1
        """,
        [suite, VOLUME_CHECK],
    ).fetchone()
    if not previous or previous[0] is None:
        return {"volume_previous": None, "volume_min": None, "volume_max": None}
    rows = int(json.loads(previous[0]))
    return {
        "volume_previous": rows,
        "volume_min": int(rows * (1 - tolerance_pct / 100)),
        "volume_max": int(rows * (1 + tolerance_pct / 100)) + 1,
    }


def run_as_of(con: duckdb.DuckDBPyConnection, run_id: str) -> date:
    """The as-of date of a run from its record (start_run writes it)."""
    row = con.execute(
        "select logical_date from audit.pipeline_runs where run_id = ?", [run_id]
    ).fetchall()
    if not row or row[0][0] is None:
        raise ValueError(f"run {run_id} is not in audit.pipeline_runs: start the run first")
    return row[0][0]


def load_suites(expectations_dir: Path, layer: str) -> list[dict[str, Any]]:
    """The suite definitions of one layer, as written in expectations/<layer>/*.json."""
    suites = []
    for path in sorted((expectations_dir / layer).glob("*.json")):
        suite = json.loads(path.read_text())
        if "table" not in suite.get("meta", {}):
            raise ValueError(f"{path}: meta.table (schema.table to validate) is missing")
        suites.append(suite)
    return suites
