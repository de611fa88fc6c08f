"""The quality gate: Great Expectations suites on the build database (the ingest
manifest's quarantine share included), recorded in `audit.check_results`.

Suites are authored as JSON in `expectations/<layer>/<table>.json` (checked in).
Each gate stores them and its validation results in files under `$WAREHOUSE_DIR/gx`
(the rest of its GE context lives in memory), validates the tables in DuckDB (see
`gx_duckdb`), and updates the GE Data Docs in `$WAREHOUSE_DIR/quality/` once: the
pages of its validations, of the suites that changed, and the index. An
expectation's `severity` decides what a failure means: `critical` (the default; an
*error*) blocks publish, `warning` (a *warn*) is recorded and shown.

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
from customer_marts.gate.retention import RESULTS_DIR
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
    context = _context(settings.warehouse_dir)
    datasource = context.data_sources.add_sql(
        name="build", connection_string=f"duckdb:///{settings.build_db}"
    )
    definitions, changed_suites, batches = [], [], {}
    for spec in suites:
        table = spec["meta"]["table"]
        # A query asset, not a table asset: GE's column reflection drops the schema
        # of a table asset on DuckDB and then looks for `orders` in `main`.
        if table not in batches:
            asset = datasource.add_query_asset(table, query=f"select * from {table}")
            batches[table] = asset.add_batch_definition_whole_table("whole_table")
        batch = batches[table]
        suite = gx.ExpectationSuite(
            name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta", {})
        )
        if _suite_changed(context, suite):
            changed_suites.append(suite.name)
        # Saved with the checkpoint below (it saves each definition, and its suite, once).
        definitions.append(gx.ValidationDefinition(name=spec["name"], data=batch, suite=suite))
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{layer}_gate",
            validation_definitions=definitions,
            result_format={"result_format": "SUMMARY"},
        )
    )
    retention.prune(settings.warehouse_dir, settings.keep_quality_runs - 1)
    try:
        outcome = checkpoint.run()
    finally:
        gx_duckdb.close_all(datasource)
    _update_data_docs(context, settings.warehouse_dir / "quality", outcome, changed_suites)
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


def _suite_changed(context: Any, suite: Any) -> bool:
    """Whether the suite differs from the one the last gate stored (or is new): its meta
    or any expectation, in order (GE's own equality also compares the ids it assigns)."""
    from great_expectations.exceptions import DataContextError

    def content(suite: Any) -> list:
        expectations = [e.configuration.to_json_dict() for e in suite.expectations]
        return [suite.meta, [{k: v for k, v in e.items() if k != "id"} for e in expectations]]

    try:
        return content(context.suites.get(suite.name)) != content(suite)
    except DataContextError:
        return True


def _update_data_docs(
    context: Any, directory: Path, outcome: Any, changed_suites: list[str]
) -> None:
    """Render this gate's validation pages, the page of each suite that changed or has
    none, and the index, once for the whole gate (GE's UpdateDataDocsAction renders
    the index after every suite's validation, each time reading every stored result)."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    pages = directory / "expectations"
    suites = [
        ExpectationSuiteIdentifier(name=result.suite_name)
        for result in outcome.run_results.values()
        if result.suite_name in changed_suites
        or not (pages / Path(*result.suite_name.split("."))).with_suffix(".html").exists()
    ]
    context.build_data_docs(
        site_names=["quality"], resource_identifiers=[*outcome.run_results, *suites]
    )


def _context(warehouse_dir: Path) -> Any:
    """A Great Expectations context for one gate: the suites and the validation results
    in files under `warehouse_dir/gx` (Data Docs' history, kept by retention.py), the
    Data Docs site in `warehouse_dir/quality`; the data source, the validation
    definitions and the checkpoint only in memory, made again by every gate (a file
    context rewrote its whole configuration file for each of them)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig

    def files(store: str, folder: Path) -> dict:
        backend = {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)}
        return {"class_name": store, "store_backend": backend}

    def memory(store: str) -> dict:
        return {"class_name": store, "store_backend": {"class_name": "InMemoryStoreBackend"}}

    gx_dir = warehouse_dir / "gx"
    config = DataContextConfig(
        stores={
            "expectations_store": files("ExpectationsStore", gx_dir / "expectations"),
            "validation_results_store": files(
                "ValidationResultsStore", warehouse_dir / RESULTS_DIR
            ),
            "checkpoint_store": memory("CheckpointStore"),
            "validation_definition_store": memory("ValidationDefinitionStore"),
        },
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        data_docs_sites={
            "quality": {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(warehouse_dir / "quality"),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        analytics_enabled=False,
        progress_bars={"globally": False},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


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
