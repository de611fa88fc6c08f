"""`make run` (and `make demo`): run the nightly DAG once, in process, and say truly
what happened.

1. Takes the warehouse lock ($WAREHOUSE_DIR/.lock) for the whole run, or refuses at
   once: two runs on one warehouse, whatever their AIRFLOW_HOME, would write the same
   build.duckdb.
2. Fills LANDING_DIR with the demo data only if it is the default folder and empty,
   or with `--demo` (`make demo`); anywhere else an empty or missing folder is an error.
3. Initialises the Airflow home (SQLite metadata) on first use and runs `airflow dags
   test customer_marts_nightly RUN_DATE`, its output in a log file of its own.
4. Verifies from Airflow's task instances and from the run record that every task ran
   and succeeded and that the run's version is what is published
   (customer_marts.runs.summary.verify_run), then prints this run's outcome and the
   published marts. Exits non-zero, saying what did not run, unless all of that holds.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from customer_marts.config import DEMO_MARKER, PROJECT_ROOT, Settings
from customer_marts.runs.locks import LockHeld, exclusive_lock
from customer_marts.runs.summary import (
    DAG_ID,
    describe_published,
    find_airflow_run,
    recorded_airflow_runs,
    verify_run,
)
from tools.demo.generator import DemoSpec, write_landing
from tools.demo.marker import run_date as demo_aware_run_date
from tools.local_airflow import local_airflow_env

WAREHOUSE_LOCK = ".lock"


def airflow_env(settings: Settings) -> dict[str, str]:
    home = Path(os.environ.get("AIRFLOW_HOME") or PROJECT_ROOT / "airflow_home")
    return local_airflow_env(
        home, LANDING_DIR=str(settings.landing_dir), WAREHOUSE_DIR=str(settings.warehouse_dir)
    )


def prepare_landing(settings: Settings, demo: bool) -> None:
    """Write the demo data into an empty LANDING_DIR if that is allowed, else stop
    (SystemExit naming the folder) when it has no export files."""
    landing = settings.landing_dir
    holds_files = landing.is_dir() and any(path.is_file() for path in landing.rglob("*"))
    if demo:
        if holds_files and not (landing / DEMO_MARKER).exists():
            raise SystemExit(
                f"LANDING_DIR {landing} already holds other files: the demo data is only "
                "written into an empty folder, never beside real exports. Choose an empty "
                "LANDING_DIR for the demo."
            )
        if not holds_files:
            print(f"writing the demo data into LANDING_DIR {landing}")
            write_landing(landing, DemoSpec())
        return
    if any(landing.glob("*/*")):
        return
    if settings.landing_is_default:
        print(f"LANDING_DIR {landing} is empty: writing the demo data")
        write_landing(landing, DemoSpec())
        return
    state = "is empty (no export files in its source folders)" if landing.is_dir() else None
    raise SystemExit(
        f"LANDING_DIR {landing} {state or 'does not exist'}: nothing to run on. Check the "
        "path; to try the pipeline on the demo data there, run `make demo`."
    )


def open_log(settings: Settings, run_date, launched: datetime):
    """A new log file for this run: never another run's (opened exclusively)."""
    folder = settings.warehouse_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"run_{run_date}_{launched:%Y%m%dT%H%M%SZ}"
    for suffix in ("", *(f"_{n}" for n in range(2, 100))):
        path = folder / f"{stem}{suffix}.log"
        try:
            return path, path.open("x")
        except FileExistsError:
            continue
    raise SystemExit(f"no free log file name {stem}_<n>.log in {folder}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the nightly DAG once and publish.")
    parser.add_argument(
        "--demo", action="store_true", help="write the demo data into LANDING_DIR first"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    lock_path = settings.warehouse_dir / WAREHOUSE_LOCK
    launched = datetime.now(UTC)
    holder = f"`make run` pid {os.getpid()}, started {launched:%Y-%m-%d %H:%M:%S} UTC"
    try:
        with exclusive_lock(lock_path, holder) as lock_fd:
            return run(settings, args.demo, lock_fd)
    except LockHeld as busy:
        print(
            f"Refused: another run is using the warehouse {settings.warehouse_dir} "
            f"({busy.holder or 'its note is missing'}; lock {lock_path}). Two runs on one "
            "warehouse would write the same build.duckdb: wait until it has finished, "
            "then run again. Nothing was done."
        )
        return 3


def run(settings: Settings, demo: bool, lock_fd: int) -> int:
    prepare_landing(settings, demo)
    run_date = demo_aware_run_date(settings)
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
    launched = datetime.now(UTC)
    log_path, log_file = open_log(settings, run_date, launched)
    with log_file:
        result = subprocess.run(
            [airflow, "dags", "test", DAG_ID, run_date.isoformat()],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(lock_fd,),  # the Airflow run holds the warehouse lock too
        )
    try:
        ours = recorded_airflow_runs(settings)
        airflow_run_id = find_airflow_run(env, run_date, launched, ours)
        problems = (
            verify_run(settings, env, airflow_run_id)
            if airflow_run_id
            else [f"Airflow recorded no run of {DAG_ID} for {run_date}"]
        )
    except RuntimeError as exc:
        airflow_run_id, problems = None, [f"the run could not be verified: {exc}"]
    print(describe_published(settings, airflow_run_id))
    if result.returncode != 0 or problems:
        print(f"\nThe run FAILED (airflow exit {result.returncode}); the full log is {log_path}.")
        for problem in problems:
            print(f"  - {problem}")
        if result.returncode != 0:
            print("published.duckdb was left as it was.")
        return 1
    print(f"\nThe run succeeded (Airflow run {airflow_run_id}); the full log is {log_path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
