"""`make run`: run the nightly DAG once, in process, and say where the results are.

Fills LANDING_DIR with the demo data if it is empty, initialises the project's
Airflow home (SQLite metadata) on first use, runs `airflow dags test
customer_marts_nightly RUN_DATE`, then prints the published file, each mart's
row count and the quality verdict. Exits non-zero when the run fails.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from customer_marts.config import PROJECT_ROOT, Settings, local_airflow_env
from customer_marts.demo import DemoSpec, write_landing
from customer_marts.summary import describe_published

DAG_ID = "customer_marts_nightly"


def airflow_env(settings: Settings) -> dict[str, str]:
    home = Path(os.environ.get("AIRFLOW_HOME") or PROJECT_ROOT / "airflow_home")
    return local_airflow_env(
        home, LANDING_DIR=str(settings.landing_dir), WAREHOUSE_DIR=str(settings.warehouse_dir)
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    if not any(settings.landing_dir.glob("*/*")):
        print(f"LANDING_DIR {settings.landing_dir} is empty: writing the demo data")
        write_landing(settings.landing_dir, DemoSpec())
    run_date = settings.default_run_date()
    env = airflow_env(settings)
    airflow = str(Path(sys.executable).parent / "airflow")
    home = Path(env["AIRFLOW_HOME"])
    if not (home / "airflow.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        print(f"initialising the Airflow home {home} (SQLite metadata)")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    print(
        f"running {DAG_ID} for as-of date {run_date} "
        f"(landing {settings.landing_dir}, warehouse {settings.warehouse_dir})"
    )
    log_path = settings.warehouse_dir / "logs" / f"run_{run_date}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log_file:
        result = subprocess.run(
            [airflow, "dags", "test", DAG_ID, run_date.isoformat()],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    print(describe_published(settings))
    if result.returncode != 0:
        print(f"\nThe run FAILED (exit {result.returncode}); the full log is {log_path}.")
        print("published.duckdb was left as it was.")
        return 1
    print(f"\nThe run succeeded; the full log is {log_path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
