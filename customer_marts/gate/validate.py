"""The quality gate: Great Expectations suites on the build database (the ingest
manifest's quarantine share included), recorded in `audit.check_results`.

Suites are authored as JSON in `expectations/<layer>/<table>.json` (checked in).
Each run loads them into a file-backed GE context under `$WAREHOUSE_DIR/gx`,
validates the tables in DuckDB (see `gx_duckdb`), and builds GE Data Docs into
`$WAREHOUSE_DIR/quality/`. An expectation's `severity` decides what a failure
means: `critical` (the default; an *error*) blocks publish, `warning` (a *warn*)
is recorded and shown.

The suites and their run parameters: gate/suites.py; how a check that did not pass
is explained: gate/messages.py.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from customer_marts.config import Settings
from customer_marts.gate.messages import describe_result, explain, first_failing_row
from customer_marts.gate.suites import (
    load_suites,
    run_as_of,
    run_parameters,
    substitute,
    volume_parameters,
)
from customer_marts.logs import quiet_noisy_loggers
from customer_marts.runs.checks import CheckResult, record_checks
from customer_marts.warehouse import connect, failing_rows

log = logging.getLogger(__name__)


class GateFailed(Exception):
    """A check of severity error failed: the run must not publish."""


# ---------------------------------------------------------------- GE suites


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

    from customer_marts.gate import gx_duckdb, retention

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
    retention.prune(settings.warehouse_dir, settings.keep_quality_runs - 1)
    try:
        outcome = checkpoint.run()
    finally:
        gx_duckdb.close_all(datasource)
    tables = {spec["name"]: spec["meta"]["table"] for spec in suites}
    results: list[CheckResult] = []
    for run_result in outcome.run_results.values():
        suite_name = run_result.suite_name
        for result in run_result.results:
            check, observed, details = describe_result(result)
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
