"""Run the nightly DAG once (`airflow dags test`), show its steps as they run, verify
that everything ran, and say truly what happened (`make run`; `make demo`: --demo).

1. Takes the warehouse lock ($WAREHOUSE_DIR/.lock) for the whole run, or refuses at
   once: two runs on one warehouse, whatever their AIRFLOW_HOME, would write the same
   build.duckdb.
2. Fills LANDING_DIR with the demo data only if it is the default folder and empty,
   or with --demo; anywhere else an empty or missing folder is an error.
3. Runs `airflow dags test customer_marts_nightly AS_OF_DATE` (in
   customer_marts/runs/airflow_command.py: less garbage collection), its output in a log
   file of its own ($WAREHOUSE_DIR/logs/), and shows each step as it starts and ends
   with its elapsed time and figures (customer_marts/cli/progress.py). On this
   machine Airflow's metadata is SQLite in AIRFLOW_HOME (initialised on first use);
   where the environment names another metadata database (the docker-compose
   containers), that one.
4. Verifies from Airflow's task instances (read from its metadata database in this
   process: customer_marts/runs/summary.py) and from the run record that every task ran
   and succeeded and that the run's version is what is published, then prints this
   run's outcome and the published marts. Exits 1, saying what did not run, unless
   all of that holds (3: another run holds the warehouse).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime
from pathlib import Path

from customer_marts.cli.options import add_landing_dir, add_warehouse_dir, apply_folders

WAREHOUSE_LOCK = ".lock"
# `airflow` with less garbage collection (seconds of a run of `airflow dags test`, and
# of its exit): customer_marts/runs/airflow_command.py
AIRFLOW_COMMAND = (sys.executable, "-m", "customer_marts.runs.airflow_command")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of-date",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the run's as-of date (default: $RUN_DATE, else the demo data's last day, "
        "else yesterday in UTC)",
    )
    add_landing_dir(parser)
    add_warehouse_dir(parser)
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every model from scratch (dbt build --full-refresh; FULL_REFRESH=1)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="write the demo data into LANDING_DIR first (an empty folder only)",
    )


def airflow_env(settings) -> dict[str, str]:
    """The environment of the `airflow` commands: the deployment's own when it names a
    metadata database other than SQLite (the containers), else the local SQLite home."""
    connection = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    folders = {
        "LANDING_DIR": str(settings.landing_dir),
        "WAREHOUSE_DIR": str(settings.warehouse_dir),
    }
    if connection and not connection.startswith("sqlite"):
        return {**os.environ, **folders}
    from customer_marts.config import PROJECT_ROOT
    from tools.local_airflow import local_airflow_env

    home = Path(os.environ.get("AIRFLOW_HOME") or PROJECT_ROOT / "airflow_home")
    return local_airflow_env(home, **folders)


def prepare_landing(settings, demo: bool) -> None:
    """Write the demo data into an empty LANDING_DIR if that is allowed, else stop
    (SystemExit naming the folder) when it has no export files."""
    from customer_marts.config import DEMO_MARKER
    from tools.demo.generator import DemoSpec, write_landing

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
            print(f"writing the demo data into LANDING_DIR {landing}", flush=True)
            write_landing(landing, DemoSpec())
        return
    if any(landing.glob("*/*")):
        return
    if settings.landing_is_default:
        print(f"LANDING_DIR {landing} is empty: writing the demo data", flush=True)
        write_landing(landing, DemoSpec())
        return
    state = "is empty (no export files in its source folders)" if landing.is_dir() else None
    raise SystemExit(
        f"LANDING_DIR {landing} {state or 'does not exist'}: nothing to run on. Check the "
        "path; to try the pipeline on the demo data there, run `make demo` "
        "(customer-marts run --demo)."
    )


def open_log(settings, run_date: date, launched: datetime):
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


def main(args: argparse.Namespace) -> int:
    import logging
    from datetime import UTC

    from customer_marts.config import Settings
    from customer_marts.runs.locks import LockHeld, exclusive_lock

    apply_folders(args)
    if args.as_of_date:
        os.environ["RUN_DATE"] = args.as_of_date.isoformat()
    if args.full_refresh:
        os.environ["FULL_REFRESH"] = "1"
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    lock_path = settings.warehouse_dir / WAREHOUSE_LOCK
    launched = datetime.now(UTC)
    holder = f"`customer-marts run` pid {os.getpid()}, started {launched:%Y-%m-%d %H:%M:%S} UTC"
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


def run(settings, demo: bool, lock_fd: int) -> int:
    import subprocess
    from datetime import UTC

    from customer_marts.cli.progress import Progress, follow
    from customer_marts.runs.summary import (
        DAG_ID,
        describe_published,
        find_airflow_run,
        recorded_airflow_runs,
        verify_run,
    )
    from tools.demo.marker import run_date as demo_aware_run_date

    prepare_landing(settings, demo)
    run_date = demo_aware_run_date(settings)
    env = airflow_env(settings)
    airflow = str(Path(sys.executable).parent / "airflow")
    home = Path(env.get("AIRFLOW_HOME") or "")
    local = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "").startswith("sqlite")
    if local and not (home / "airflow.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        print(f"initialising the Airflow home {home} (SQLite metadata)", flush=True)
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    refresh = " with a full refresh" if env.get("FULL_REFRESH") == "1" else ""
    launched = datetime.now(UTC)
    log_path, log_file = open_log(settings, run_date, launched)
    print(
        f"running {DAG_ID} for as-of date {run_date}{refresh} "
        f"(landing {settings.landing_dir}, warehouse {settings.warehouse_dir}; "
        f"log {log_path})",
        flush=True,
    )
    with log_file:
        child = subprocess.Popen(
            [*AIRFLOW_COMMAND, "dags", "test", DAG_ID, run_date.isoformat()],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(lock_fd,),  # the Airflow run holds the warehouse lock too
        )
        try:
            returncode = follow(log_path, child, Progress(sys.stdout))
        except BaseException:  # Ctrl-C reaches the child too: let it stop first
            child.wait()
            raise
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
    print()
    print(describe_published(settings, airflow_run_id))
    if returncode != 0 or problems:
        print(f"\nThe run FAILED (airflow exit {returncode}); the full log is {log_path}.")
        for problem in problems:
            print(f"  - {problem}")
        if returncode != 0 and not problems:  # every task ran and published: Airflow failed after
            print(
                "  - every task succeeded and published, but `airflow dags test` failed after them"
            )
        elif returncode != 0:
            print("published.duckdb was left as it was.")
        return 1
    print(f"\nThe run succeeded (Airflow run {airflow_run_id}); the full log is {log_path}.")
    return 0
