"""Build the dbt project on Spark in one process, around the CLV step (docs/engines.md):

1. the raw tables, copied from a DuckDB build database (spark/tables.py), until ingest
   lands them in Spark itself;
2. `dbt run` of every model that does not need the CLV models, then each CLV model
   (spark/clv.py: customer_marts.clv.steps on the Spark tables), each followed by a
   `dbt run` of the SQL models that were waiting for it (`waves`);
3. the marts written out as Parquet, `<out>/<table>.parquet`.

dbt runs in this process (dbt's programmatic runner), and dbt-spark's session mode takes
the Spark session this process opened: one Spark start-up for the whole build, and one
process on the embedded metastore. It runs in the Spark environment (`make spark-venv`):

    CUSTOMER_MARTS_ENGINE=spark .venv-spark/bin/python -m spark.build \\
        --build-db data/warehouse/build.duckdb --out data/warehouse/spark/marts
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from customer_marts.clv.steps import STEPS
from spark.clv import model_nodes, run_step
from spark.tables import export, load, spark_session

PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


class BuildFailed(RuntimeError):
    pass


def dbt(target_path: Path, log_path: Path, command: str, *selection: str) -> None:
    """A dbt command on the `spark` target, in this process."""
    from dbt.cli.main import dbtRunner

    arguments = [
        command,
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
        *selection,
    ]
    result = dbtRunner().invoke(arguments)
    if not result.success:
        raise BuildFailed(f"dbt {' '.join(arguments)} failed: {result.exception or 'see above'}")


def waves(models: dict[str, dict]) -> list[list[str]]:
    """The SQL models in the order the CLV step lets them build: wave 0 needs no CLV
    model, wave k needs the first k of STEPS (and no later one). Wave k runs after the
    k-th CLV model (int_clv_sums_by_group, the last, reads dim_customers, which is
    built on the predictions). `models`: spark.clv.model_nodes."""
    by_id = {node["unique_id"]: name for name, node in models.items()}
    steps = [*STEPS]
    needs: dict[str, int] = {}

    def last_step(name: str) -> int:
        """1 + the position in STEPS of the last CLV model `name` is built on (0: none)."""
        if name not in needs:
            parents = [by_id[p] for p in models[name]["depends_on"]["nodes"] if p in by_id]
            own = steps.index(name) + 1 if name in STEPS else 0
            needs[name] = max([own, *(last_step(parent) for parent in parents)])
        return needs[name]

    out: list[list[str]] = [[] for _ in range(len(steps) + 1)]
    for name, node in sorted(models.items()):
        if node["language"] == "sql":
            out[last_step(name)].append(name)
    return out


def build(build_db: Path, out: Path, target_path: Path, log_path: Path) -> dict[str, float]:
    """The steps above; returns each step's seconds."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    spark = spark_session()
    seconds["spark_start"] = time.monotonic() - started

    def timed(step: str, work) -> None:
        began = time.monotonic()
        work()
        seconds[step] = seconds.get(step, 0.0) + time.monotonic() - began

    timed("load_raw", lambda: load(build_db, ["raw.*"]))
    timed("dbt", lambda: dbt(target_path, log_path, "parse"))
    nodes = model_nodes(json.loads((target_path / "manifest.json").read_text()))
    for position, wave in enumerate(waves(nodes)):
        if position:
            step = [*STEPS][position - 1]
            timed("clv", lambda step=step: run_step(spark, nodes, step))
        if wave:
            timed("dbt", lambda wave=wave: dbt(target_path, log_path, "run", "--select", *wave))
    timed("export", lambda: export("marts", out))
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spark.build", description=__doc__)
    parser.add_argument("--build-db", type=Path, required=True, help="the raw tables' DuckDB")
    parser.add_argument("--out", type=Path, required=True, help="folder of the marts' Parquet")
    parser.add_argument("--target-path", type=Path, default=PROJECT / "target")
    parser.add_argument("--log-path", type=Path, default=PROJECT / "logs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    seconds = build(args.build_db, args.out, args.target_path, args.log_path)
    print(json.dumps({step: round(value, 1) for step, value in seconds.items()}))


if __name__ == "__main__":
    main()
