"""Run dbt in a child process against the build database: `dbt build` and its test results
(the dbt docs site: docs_site)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from customer_marts.config import Settings
from customer_marts.runs.checks import CheckResult, record_checks
from customer_marts.transform.refresh import FULL_REFRESH_ENV
from customer_marts.warehouse import failing_rows

log = logging.getLogger(__name__)


class DbtFailure(Exception):
    """dbt build failed: a model errored or a test of severity error failed."""


@dataclass
class DbtOutcome:
    success: bool
    nodes: int = 0
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


# How the run's as-of date reaches dbt (macros/calendar.sql, as_of_date()): in the
# environment, read only when models run. In --vars it would change dbt's saved parse
# state every night, and dbt would parse the whole project again instead of reusing
# partial_parse.msgpack; a var `as_of_date` given by hand still wins.
AS_OF_ENV = "CUSTOMER_MARTS_AS_OF_DATE"
# The build database's file name for the profile (dbt_project/profiles.yml), relative to
# the warehouse folder dbt runs in.
BUILD_DATABASE_ENV = "CUSTOMER_MARTS_BUILD_DATABASE"
# OpenBLAS's threads in the dbt process (unless set): one. dbt already runs models side by
# side and the CLV models share their NumPy work out over the cores themselves; OpenBLAS's
# own threads only spin while they wait, which measured cost the CLV fits half as much
# CPU again as their work (a Pareto/NBD fit at 10M orders: 4.5 s of CPU in 3.1 s, 2.9 s of both
# with one thread),
# taken from the model running beside them.
BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"


def dbt_args(
    settings: Settings,
    command: str,
    extra_vars: dict | None = None,
    target_path: Path | None = None,
) -> list[str]:
    """CLI arguments for a dbt command (e.g. "build", "docs generate") with `extra_vars`
    (the same vars every night keep dbt's partial parsing valid)."""
    dbt_dir = settings.warehouse_dir / "dbt"
    return [
        *command.split(),
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target-path",
        str(target_path or dbt_dir / "target"),
        "--log-path",
        str(dbt_dir / "logs"),
        *(("--vars", json.dumps(extra_vars, sort_keys=True)) if extra_vars else ()),
    ]


def dbt_process_defaults() -> dict[str, str]:
    """What every dbt child process runs with, unless the environment sets it: no usage
    stats, no colours in the log, one OpenBLAS thread (BLAS_THREADS_ENV)."""
    return {
        "DBT_SEND_ANONYMOUS_USAGE_STATS": os.environ.get("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
        "DBT_USE_COLORS": "false",
        BLAS_THREADS_ENV: os.environ.get(BLAS_THREADS_ENV, "1"),
    }


def dbt_executable() -> str:
    """The `dbt` command of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    settings: Settings,
    command: str,
    as_of: date,
    *args: str,
    extra_vars: dict | None = None,
    target_path: Path | None = None,
) -> tuple[int, Path]:
    """Run a dbt command in a child process; return (exit code, run_results.json path).

    A child process, not dbt's in-process runner: dbt-duckdb keeps its DuckDB
    connection open for the life of the process, which would lock the build
    database for the steps that follow when Airflow runs tasks in one process
    (`airflow dags test`). dbt's output is logged line by line as it comes.

    It works in the warehouse folder and the profile names the build database
    relatively (BUILD_DATABASE_ENV): dbt's saved parse depends on the profile, which so
    does not change when the warehouse is moved, restored or copied.
    """
    target = target_path or settings.warehouse_dir / "dbt" / "target"
    arguments = [*dbt_args(settings, command, extra_vars, target), *args]
    env = {
        **os.environ,
        "WAREHOUSE_DIR": str(settings.warehouse_dir),
        BUILD_DATABASE_ENV: settings.build_db.name,
        AS_OF_ENV: as_of.isoformat(),
        **dbt_process_defaults(),
    }
    log.info("dbt %s (%s=%s)", " ".join(arguments), AS_OF_ENV, as_of.isoformat())
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)  # dbt works in it
    with subprocess.Popen(
        [dbt_executable(), *arguments],
        env=env,
        cwd=settings.warehouse_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        for line in child.stdout:
            log.info("dbt | %s", line.rstrip())
    return child.returncode, target / "run_results.json"


# dbt test statuses as quality-check statuses; a test severity `warn` fails as `warn`.
CHECK_STATUS = {"pass": "passed", "warn": "warned", "fail": "failed", "error": "failed"}


def check_results(outcome: DbtOutcome) -> list[CheckResult]:
    """The outcome's data and unit tests as quality checks (layer `dbt`), for
    audit.check_results: dbt tests gate the transformations as GE gates the edges."""
    checks = []
    for result in outcome.results:
        kind, _, name = result["unique_id"].split(".", 2)
        if kind not in ("test", "unit_test") or result["status"] not in CHECK_STATUS:
            continue
        status = CHECK_STATUS[result["status"]]
        checks.append(
            CheckResult(
                layer="dbt",
                suite="dbt unit tests" if kind == "unit_test" else "dbt data tests",
                check=name.rsplit(".", 1)[0] if kind == "test" else name,
                status=status,
                observed_value=None if result["failures"] is None else str(result["failures"]),
                details=result.get("details") if status != "passed" else None,
            )
        )
    return checks


def build(
    settings: Settings,
    as_of: date,
    extra_vars: dict | None = None,
    run_id: str | None = None,
    full_refresh: bool | None = None,
    unit_tests: bool = True,
) -> DbtOutcome:
    """`dbt build` (models and their tests), with `--full-refresh` if `full_refresh` (None:
    if FULL_REFRESH=1; the pipeline decides it: customer_marts/transform/refresh.py). With
    a run id the tests' results are recorded in audit.check_results. Raises DbtFailure
    naming what failed. Without `unit_tests` dbt's unit tests are left out (they test the
    code, not the data)."""
    results_path = settings.warehouse_dir / "dbt" / "target" / "run_results.json"
    results_path.unlink(missing_ok=True)
    if full_refresh is None:
        full_refresh = os.environ.get(FULL_REFRESH_ENV) == "1"
    arguments = ["--full-refresh"] if full_refresh else []
    if not unit_tests:  # added to what DBT_EXCLUDE_RESOURCE_TYPES leaves out (flags replace it)
        excluded = set(os.environ.get("DBT_EXCLUDE_RESOURCE_TYPES", "").split()) | {"unit_test"}
        arguments += ["--exclude-resource-type", *sorted(excluded)]
    returncode, results_path = run_dbt(settings, "build", as_of, *arguments, extra_vars=extra_vars)
    if not results_path.exists():
        raise DbtFailure(f"dbt build could not run (exit code {returncode}); see the dbt log above")
    outcome = DbtOutcome(success=returncode == 0)
    for node_result in json.loads(results_path.read_text())["results"]:
        name = node_result["unique_id"].split(".")[2]
        status = node_result["status"]
        outcome.nodes += 1
        outcome.results.append(
            {
                "unique_id": node_result["unique_id"],
                "status": status,
                "failures": node_result["failures"],
                "message": node_result["message"],
            }
        )
        if status in ("error", "fail"):
            details = node_result["message"] or status
            if status == "fail" and node_result.get("compiled_code"):
                details += "; " + failing_rows(settings.build_db, node_result["compiled_code"])
            outcome.results[-1]["details"] = details
            outcome.failures.append(f"{name}: {details}")
        elif status == "warn":
            outcome.results[-1]["details"] = node_result["message"]
            outcome.warnings.append(f"{name}: {node_result['message']}")
    if run_id is not None:
        record_checks(settings.build_db, run_id, "dbt", check_results(outcome))
    if not outcome.success:
        details = "\n".join(f"  - {failure}" for failure in outcome.failures) or "  (see dbt log)"
        raise DbtFailure(f"dbt build failed ({len(outcome.failures)} node(s)):\n{details}")
    log.info("dbt build: %d nodes, %d warnings", outcome.nodes, len(outcome.warnings))
    return outcome
