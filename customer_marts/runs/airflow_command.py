"""`python -m customer_marts.runs.airflow_command ARGS`: the `airflow` command (Airflow's
own CLI, in this process) without the interpreter's last garbage collection.

`airflow dags test` runs every task of the DAG in its own process, so by its end it
holds the objects of Airflow's in-process execution API, Great Expectations and every
other import of the tasks. At exit the interpreter's final collection walks all of
them (4-12 s measured for the nightly DAG on this machine) only to free memory that
the exit frees anyway. Freezing them first (`gc.freeze`) skips that walk; the exit
code, the atexit handlers and the output are those of `airflow`.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    from airflow.__main__ import main as airflow

    sys.argv[0] = "airflow"
    try:
        airflow()
    finally:
        gc.freeze()  # the objects left now are not collected again before the exit


if __name__ == "__main__":
    main()
