"""The DAG folder parses cleanly, follows the house rules and imports fast."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

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
    "timezone_aware": bool(dag and dag.start_date.tzinfo),
    "retries": dag.default_args.get("retries") if dag else None,
}}))
"""


def probe(tmp_path) -> dict:
    code = PROBE.format(path=str(DAG_FILE), folder=str(DAG_FILE.parent))
    env = airflow_env(tmp_path, CUSTOMER_MARTS_RETRIES="2")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dagbag_has_no_import_errors_and_the_expected_shape(tmp_path):
    result = probe(tmp_path)
    assert result["errors"] == {}
    assert result["dag_ids"] == ["customer_marts_nightly"]
    chain = ["start_run", "ingest", "validate_raw", "dbt_build", "validate_marts", "publish"]
    assert result["edges"] == sorted([a, b] for a, b in zip(chain, chain[1:], strict=False))
    assert result["max_active_runs"] == 1
    assert result["catchup"] is False
    assert result["has_doc"] and result["timezone_aware"]
    assert result["retries"] == 2


def test_dag_file_imports_in_under_a_second(tmp_path):
    assert probe(tmp_path)["import_seconds"] < 1.0


def test_dag_module_imports_nothing_heavy_at_parse_time():
    """dbt, Great Expectations, pandas, DuckDB and the pipeline load inside tasks only."""
    tree = ast.parse(DAG_FILE.read_text())
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            top_level.add((node.module or "").split(".")[0])
    assert top_level <= {"__future__", "os", "datetime", "pendulum", "airflow"}
