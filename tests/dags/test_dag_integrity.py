"""The DAG folder parses cleanly, follows the house rules and imports fast."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from customer_marts.config import PROJECT_ROOT
from tests.conftest import airflow_env

DAG_FILE = PROJECT_ROOT / "dags" / "customer_marts_nightly.py"

PROBE = """
import json, time
import airflow.sdk, pendulum  # the framework's own import cost is not the DAG's
started = time.perf_counter()
import runpy
runpy.run_path({path!r})
elapsed = time.perf_counter() - started
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={folder!r})
dag = bag.dags.get("customer_marts_nightly")
print(json.dumps({{
    "import_seconds": elapsed,
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "dag_ids": sorted(bag.dag_ids),
    "edges": sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids) if dag else [],
    "max_active_runs": dag.max_active_runs if dag else None,
    "catchup": dag.catchup if dag else None,
    "has_doc": bool(dag and dag.doc_md),
    "start_dates": sorted({{str(t.start_date) for t in dag.tasks}} | {{str(dag.start_date)}})
    if dag else [],
    "retries": dag.default_args.get("retries") if dag else None,
    "timeouts_minutes": {{
        t.task_id: t.execution_timeout.total_seconds() / 60 for t in dag.tasks
    }} if dag else {{}},
    "failure_callbacks": {{
        t.task_id: [type(cb).__name__ for cb in t.on_failure_callback] for t in dag.tasks
    }} if dag else {{}},
    "schedule": dag.timetable.expression if dag else None,
    "params": {{
        name: [dag.params[name], dag.params.get_param(name).schema.get("type")]
        for name in dag.params
    }} if dag else {{}},
}}))
"""


def probe(tmp_path, **extra: str) -> dict:
    code = PROBE.format(path=str(DAG_FILE), folder=str(DAG_FILE.parent))
    env = airflow_env(tmp_path, CUSTOMER_MARTS_RETRIES="2")
    env.pop("CUSTOMER_MARTS_SCHEDULE", None)  # the default, unless a test sets it
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def default(tmp_path_factory) -> dict:
    """The DAG as parsed with the default environment (one parse shared by the tests)."""
    return probe(tmp_path_factory.mktemp("dag_probe"))


def test_dagbag_has_no_import_errors_and_the_expected_shape(default):
    result = default
    assert result["errors"] == {}
    assert result["dag_ids"] == ["customer_marts_nightly"]
    chain = ["start_run", "ingest", "validate_raw", "dbt_build", "validate_marts", "publish"]
    assert result["edges"] == sorted([a, b] for a, b in zip(chain, chain[1:], strict=False))
    assert result["max_active_runs"] == 1
    assert result["catchup"] is False
    assert result["has_doc"]
    assert result["retries"] == 2


def test_no_start_date_keeps_any_as_of_date_from_running(default):
    """A run whose logical date is before a task's start_date gets no instance of that
    task, and Airflow marks the empty run successful: with no start_date anywhere,
    every as-of date (1997 history included) runs every task."""
    assert default["start_dates"] == ["None"]


def doc_table() -> dict[str, dict[str, str]]:
    """The task table of the DAG's doc_md (its module docstring), by task id."""
    rows = [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in ast.get_docstring(ast.parse(DAG_FILE.read_text())).splitlines()
        if line.startswith("| `")
    ]
    return {row[0]: {"timeout": row[2], "retries": row[3]} for row in rows}


def test_every_task_has_the_timeout_and_retries_its_documentation_states(default):
    """doc_md is what operators read in the UI: it must match what the scheduler enforces."""
    result = default
    documented = doc_table()
    assert set(documented) == set(result["timeouts_minutes"])
    for task_id, minutes in result["timeouts_minutes"].items():
        assert documented[task_id]["timeout"] == f"{minutes:.0f} min", task_id
        assert documented[task_id]["retries"].startswith(str(result["retries"])), task_id
    # every task alerts on failure (customer_marts.runs.alerts' notifier)
    assert result["failure_callbacks"] == {task_id: ["FailureNotifier"] for task_id in documented}


def test_a_run_has_a_full_refresh_param_off_by_default(default):
    # the UI's trigger form shows it as a check box; the replay test
    # (tests/e2e/test_incremental_replay.py) runs dbt_build with it on
    assert default["params"] == {"full_refresh": [False, "boolean"]}


def test_schedule_defaults_to_daily_and_is_overridable_by_env(default, tmp_path):
    assert default["schedule"] == "0 0 * * *"  # @daily
    nightly_at_two = probe(tmp_path, CUSTOMER_MARTS_SCHEDULE="0 2 * * *")
    assert nightly_at_two["schedule"] == "0 2 * * *"
    assert nightly_at_two["errors"] == {}


def test_dag_file_imports_in_under_a_second(default):
    assert default["import_seconds"] < 1.0


def test_dag_module_imports_nothing_heavy_at_parse_time():
    """dbt, Great Expectations, pandas, DuckDB and the pipeline load inside tasks only."""
    tree = ast.parse(DAG_FILE.read_text())
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            # the notifiers' module: standard library and airflow.sdk only (tests/unit/runs)
            top_level.add(
                module if module == "customer_marts.runs.alerts" else module.split(".")[0]
            )
    allowed = {"__future__", "os", "datetime", "pendulum", "airflow", "customer_marts.runs.alerts"}
    assert top_level <= allowed


def test_ruff_with_airflow_3_rules_passes_on_the_project():
    """`ruff check` with the project's rules (AIR3, Airflow 3 migration rules, among them)
    passes on dags/ and the rest of the code, and the code is ruff-formatted."""
    ruff = [sys.executable, "-m", "ruff"]
    select = subprocess.run(
        [*ruff, "check", "--no-cache", "--select", "AIR3", "dags"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert select.returncode == 0, select.stdout + select.stderr
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run([*ruff, *command], cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
