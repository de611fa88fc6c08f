"""`python -m customer_marts.runs.airflow_command ARGS`: the `airflow` command (Airflow's
own CLI, in this process) with less garbage collection.

`airflow dags test` runs every task of the DAG in its own process, so it holds the
objects of Airflow's imports and in-process execution API, of Great Expectations and
of every other import of the tasks. Python's cyclic collector walks them again and
again: 5-6 s of collections in a run of the nightly DAG on the demo data on this
machine (under load), and 4-12 s more at exit, where the interpreter's final
collection walks them only to free memory that the exit frees anyway. So:

- Airflow's imports are frozen once imported (`gc.freeze`: they live until the exit,
  and the collector no longer walks them), and the collector runs less often
  (`GC_THRESHOLDS`, from Python's 700, 10, 10): 1.0-1.7 s of collections in the run;
- everything left at the end is frozen too, so the exit skips the final walk
  (0.2-0.3 s from the DAG run's end to the exit instead of 5-7 s).

The exit code, the atexit handlers and the output are those of `airflow`.
"""

from __future__ import annotations

import gc
import sys

GC_THRESHOLDS = (20_000, 20, 20)


def main() -> None:
    from airflow.__main__ import main as airflow

    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.argv[0] = "airflow"
    try:
        airflow()
    finally:
        gc.freeze()  # the objects left now are not collected again before the exit


if __name__ == "__main__":
    main()
