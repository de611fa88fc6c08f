"""The quality gate: Great Expectations suites on the build database (the ingest
manifest's quarantine share included), recorded in `audit.check_results`.

Suites are authored as JSON in `expectations/<layer>/<table>.json` (checked in).
Each run loads them into a file-backed GE context under `$WAREHOUSE_DIR/gx`,
validates the tables in DuckDB (see `gx_duckdb`), and builds GE Data Docs into
`$WAREHOUSE_DIR/quality/`. An expectation's `severity` decides what a failure
means: `critical` (the default; an *error*) blocks publish, `warning` (a *warn*)
is recorded and shown.

Suites may use run parameters, written `${name}` in any string of the suite (a
string that is exactly `${name}` takes the parameter's type): `as_of_date`,
`as_of_end` (the day after), `fresh_since` (the as-of date minus `FRESHNESS_DAYS`),
`freshness_days`, `run_id`, `max_quarantine_pct` (`MAX_QUARANTINE_PCT`),
`volume_tolerance_pct` (`VOLUME_TOLERANCE_PCT`), the dbt project's published precision
(`money_decimals`, `pct_decimals`, `quantity_decimals`) and, per suite,
`volume_previous` (the previous successful run's row count of the table) and
`volume_min` / `volume_max` (that count -/+ `VOLUME_TOLERANCE_PCT`; none on a first run).
A check may be named by `meta.check`; otherwise it is named `<expectation type>(<column>)`.
A check that does not pass is explained by `meta.message`, when it has one: a sentence
whose `{name}` placeholders take the values of the check's first failing row (a query
check) or `{observed}`, the observed value (a metric check such as a row count).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

from customer_marts.config import Settings
from customer_marts.logs import quiet_noisy_loggers
from customer_marts.runs.checks import CheckResult, record_checks
from customer_marts.warehouse import connect, failing_rows

log = logging.getLogger(__name__)

LAYERS = ("raw", "marts")
DETAIL_VALUES = 5
PARAMETER = re.compile(r"\$\{(\w+)\}")
VOLUME_CHECK = "volume_vs_previous_run"


class GateFailed(Exception):
    """A check of severity error failed: the run must not publish."""


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


# ---------------------------------------------------------------- GE suites


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def explain(template: str, values: dict[str, Any]) -> str:
    """A check's meta.message with its `{name}` placeholders filled from `values`."""
    shown = {name: "none" if value is None else value for name, value in values.items()}
    return template.format_map(_KeepMissing(shown))


def first_failing_row(path: Path, sql: str) -> dict[str, Any]:
    """The first row a failed query check returns (empty if it cannot be read)."""
    try:
        with connect(path, read_only=True) as con:
            rows = con.sql(f"select * from ({sql}) limit 1").to_dicts()
    except duckdb.Error:
        return {}
    return rows[0] if rows else {}


def _describe_result(result: Any) -> tuple[str, str | None, str | None]:
    """(check name, observed value, details) for one GE expectation result."""
    config = result.expectation_config
    column = config.kwargs.get("column")
    check = (config.meta or {}).get("check") or (
        f"{config.type}({column})" if column else config.type
    )
    body = result.result or {}
    error = _exception_message(result.exception_info)
    if error:
        return check, None, f"error: {error}"
    if "observed_value" in body:
        return check, json.dumps(body["observed_value"], default=str), None
    if "unexpected_count" in body:
        observed = f"{body['unexpected_count']} of {body.get('element_count')} rows unexpected"
        values = body.get("partial_unexpected_list") or []
        details = (
            f"failing values: {json.dumps(values[:DETAIL_VALUES], default=str)}"
            if (values and not result.success)
            else None
        )
        return check, observed, details
    return check, None, None


def run_suites(settings: Settings, layer: str, as_of: date, run_id: str) -> list[CheckResult]:
    """Validate every suite of a layer against the build database."""
    suites = load_suites(settings.expectations_dir, layer)
    if not suites:
        return []
    parameters = run_parameters(settings, run_id, as_of)
    with connect(settings.build_db, read_only=True) as con:
        suites = [
            substitute(
                spec,
                parameters | volume_parameters(con, spec["name"], settings.volume_tolerance_pct),
            )
            for spec in suites
        ]
    quiet_noisy_loggers()
    import great_expectations as gx  # heavy: imported only when the gate runs

    from customer_marts import gx_duckdb

    gx_duckdb.install()
    context = gx.get_context(mode="file", project_root_dir=str(settings.warehouse_dir))
    _ensure_docs_site(context, settings.warehouse_dir / "quality")
    context.variables.progress_bars = {"globally": False}
    datasource = context.data_sources.add_or_update_sql(
        name="build",
        connection_string=f"duckdb:///{settings.build_db}",
    )
    definitions = []
    for spec in suites:
        table = spec["meta"]["table"]
        # A query asset, not a table asset: GE's column reflection drops the schema
        # of a table asset on DuckDB and then looks for `orders` in `main`.
        try:
            asset = datasource.get_asset(table)
        except LookupError:
            asset = datasource.add_query_asset(table, query=f"select * from {table}")
        batch = next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_table(
            "whole_table"
        )
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(
                name=spec["name"],
                expectations=spec["expectations"],
                meta=spec.get("meta", {}),
            )
        )
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=spec["name"], data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{layer}_gate",
            validation_definitions=definitions,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["quality"])],
            result_format={"result_format": "SUMMARY"},
        )
    )
    try:
        outcome = checkpoint.run()
    finally:
        gx_duckdb.close_all(datasource)
    tables = {spec["name"]: spec["meta"]["table"] for spec in suites}
    results: list[CheckResult] = []
    for run_result in outcome.run_results.values():
        suite_name = run_result.suite_name
        for result in run_result.results:
            check, observed, details = _describe_result(result)
            severity = getattr(result.expectation_config, "severity", None)
            severity = str(getattr(severity, "value", severity) or "critical").lower()
            message = None
            if result.success:
                status = "passed"
            else:
                status = "warned" if "warning" in severity or "info" in severity else "failed"
                template = (result.expectation_config.meta or {}).get("message")
                query = result.expectation_config.kwargs.get("unexpected_rows_query")
                batch = f"(select * from {tables[suite_name]})"
                if template and details is None:
                    values = (
                        first_failing_row(settings.build_db, query.replace("{batch}", batch))
                        if query
                        else {"observed": None if observed is None else json.loads(observed)}
                    )
                    message = explain(template, values)
                elif query and details is None:
                    # GE's SUMMARY result leaves the rows out (COMPLETE would return every
                    # failing value of every check): query the first few
                    details = failing_rows(settings.build_db, query.replace("{batch}", batch))
            results.append(
                CheckResult(layer, suite_name, check, status, observed, details, message)
            )
    return results


def _exception_message(info: dict | None) -> str | None:
    """The error of a check that could not be evaluated. GE reports it either flat
    ({"raised_exception": True, "exception_message": ...}) or, when a metric failed,
    keyed by the metric's id."""
    if not info:
        return None
    if "exception_message" in info or "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    for value in info.values():
        if isinstance(value, dict) and value.get("exception_message"):
            return value["exception_message"]
    return None


def _ensure_docs_site(context: Any, directory: Path) -> None:
    """Data Docs go to `directory`, also when the context was made for a warehouse
    folder that has since been moved or copied."""
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(directory),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    existing = (context.get_config().data_docs_sites or {}).get("quality")
    if existing is None:
        context.add_data_docs_site(site_name="quality", site_config=site)
    elif existing.get("store_backend", {}).get("base_directory") != str(directory):
        context.update_data_docs_site(site_name="quality", site_config=site)


# ---------------------------------------------------------------- the gate


def enforce(layer: str, results: list[CheckResult]) -> None:
    """Raise GateFailed naming every failed check; log the warnings."""
    for result in results:
        if result.status == "warned":
            log.warning("quality warning: %s", result.describe())
    failed = [result for result in results if result.status == "failed"]
    if failed:
        lines = "\n".join(f"  - {result.describe()}" for result in failed)
        raise GateFailed(f"quality gate ({layer}) failed {len(failed)} check(s):\n{lines}")
    log.info("quality gate (%s): %d checks passed", layer, len(results))


def validate(settings: Settings, run_id: str, layer: str) -> list[CheckResult]:
    """Run a layer's checks, record them in audit.check_results, and enforce them."""
    with connect(settings.build_db, read_only=True) as con:
        as_of = run_as_of(con, run_id)
    results = run_suites(settings, layer, as_of, run_id)
    record_checks(settings.build_db, run_id, layer, results)
    enforce(layer, results)
    return results
