"""`customer-marts run` end to end: a real Airflow run of the small demo through the
command line, its live progress (plain lines, stdout is not a terminal), the options
it passes on, and `customer-marts status` on the warehouse it leaves.

The expected figures come from elsewhere than the progress reads them: the files and
CSV rows of the landing folder, the dbt project's model files and dbt's
run_results.json, and the tables of published.duckdb.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import duckdb
import pytest

from customer_marts.config import PROJECT_ROOT
from tests.conftest import DEMO_AS_OF, airflow_env

STEPS = ["start_run", "ingest", "validate_raw", "dbt_build", "validate_marts", "publish"]
ENDED = re.compile(r"^  (\w+) +ok +(\d+\.\ds|\d+m\d\ds)  (.*)$")


@pytest.mark.slow
@pytest.mark.dbt_build
def test_customer_marts_run_shows_every_step_with_its_time_and_figures(
    small_demo, airflow_home, tmp_path
):
    warehouse = tmp_path / "warehouse"
    env = airflow_env(airflow_home)  # LANDING_DIR and WAREHOUSE_DIR come as options
    for name in ("LANDING_DIR", "WAREHOUSE_DIR", "RUN_DATE", "FULL_REFRESH"):
        env.pop(name, None)
    command = [sys.executable, "-m", "customer_marts", "run", "--landing-dir", str(small_demo)]
    command += ["--warehouse-dir", str(warehouse), "--as-of-date", DEMO_AS_OF.isoformat()]
    result = subprocess.run(
        [*command, "--full-refresh"], env=env, capture_output=True, text=True, timeout=1200
    )
    output = result.stdout
    assert result.returncode == 0, output[-4000:] + result.stderr[-2000:]
    assert "The run succeeded" in output
    assert "\r" not in output  # not a terminal: no in-place updates

    # one "started" and one "ok" line per step, in the DAG's order
    progress = [line for line in output.splitlines() if line.startswith("  ") and " " in line]
    started = [line.split()[0] for line in progress if line.split()[1:] == ["started"]]
    ended = {m.group(1): (m.group(2), m.group(3)) for line in progress if (m := ENDED.match(line))}
    assert started == STEPS
    assert list(ended) == STEPS
    order = [line.split()[0] + ("+" if line.split()[1] == "ok" else "") for line in progress]
    assert order[: 2 * len(STEPS)] == [name + end for name in STEPS for end in ("", "+")]

    # ingest: the landing folder's export files and their CSV rows (headers excluded)
    files = [path for path in small_demo.rglob("*.csv")]
    rows = 0
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            rows += sum(1 for _ in csv.reader(handle)) - 1
    assert ended["ingest"][1] == f"{len(files):,} file(s), {rows:,} rows ingested, 0 quarantined"
    # dbt: every model file of the project built, every test passed (run_results.json)
    results = json.loads((warehouse / "dbt" / "target" / "run_results.json").read_text())
    kinds = [(r["unique_id"].split(".")[0], r["status"]) for r in results["results"]]
    models = [
        path
        for suffix in ("*.sql", "*.py")
        for path in (PROJECT_ROOT / "dbt_project" / "models").rglob(suffix)
    ]
    assert kinds.count(("model", "success")) == len(models)
    tests = sum(kind in ("test", "unit_test") and status == "pass" for kind, status in kinds)
    assert ended["dbt_build"][1] == (
        f"{len(kinds)}/{len(kinds)} nodes: {len(models)} models built, {tests} tests passed; "
        "full rebuild: asked for: FULL_REFRESH=1 (customer-marts run --full-refresh); "
        "no earlier successful build in this build database"
    )
    # publish: the tables copied into the published file (all of it but
    # audit.published_tables, which publish writes there afterwards to record the copy)
    with duckdb.connect(str(warehouse / "published.duckdb"), read_only=True) as con:
        [(tables,)] = con.execute(
            "select count(*) from duckdb_tables() where schema_name in ('marts', 'audit') "
            "and (schema_name, table_name) != ('audit', 'published_tables')"
        ).fetchall()
    assert ended["publish"][1].startswith(f"{tables} tables published (published-")
    assert all(
        ended[name][1].endswith("checks passed") or "warning" in ended[name][1]
        for name in ("validate_raw", "validate_marts")
    )

    # --full-refresh reached dbt; the full log is in the log file the output names
    [log] = (warehouse / "logs").glob("run_*.log")
    assert f"the full log is {log}" in output
    [build_line] = [line for line in log.read_text().splitlines() if " dbt build --project" in line]
    assert "--full-refresh" in build_line

    # and status lists that run as published
    status = subprocess.run(
        [sys.executable, "-m", "customer_marts", "status", "--warehouse-dir", str(warehouse)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    [version] = re.findall(r"published-\w+\.duckdb", ended["publish"][1])
    [row] = [line for line in status.stdout.splitlines() if line.rstrip().endswith(version)]
    assert row.split()[1:3] == [DEMO_AS_OF.isoformat(), "success"]
