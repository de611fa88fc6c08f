"""Benchmarks: what a nightly run costs at 1M and 10M orders, and where the time goes.

`make bench` (`python -m bench`, bench/__main__.py) calls `run`. One invocation
1. generates the scaled demo data with the project's generator (`tools.demo`)
   and caches it under `bench/data/`;
2. runs the real DAG (`airflow dags test customer_marts_nightly <date>`, SQLite
   metadata in a fresh AIRFLOW_HOME, a fresh warehouse) at both sizes, sampling the
   resident memory of the whole process tree; then lands one more day of orders on top
   of the large history and runs the next date (the incremental run);
3. runs the same marts' SQL straight in DuckDB, without Airflow, dbt or Great
   Expectations (the floor);
4. compares our BTYD inputs (SQL) and fit with lifetimes on the same data, checking the
   results agree before timing them, and times the CLV models of a run on the small
   run's inputs: the three purchase-model fits (BG/NBD, MBG/NBD, Pareto/NBD) + Gamma-Gamma
   and the parameter-draw intervals, against the single BG/NBD + Gamma-Gamma fit; and
   builds the small run's dbt project on Spark in local mode (bench/spark.py), where
   Java 17 and `.venv-spark` are at hand;
5. writes `bench/results.json` and `BENCHMARKS.md`.

Figures under MEDIAN_BELOW seconds are medians of several runs. Benchmarks report; they
never fail a build, except when the two implementations compared disagree (a timing of
different results would be meaningless).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.clv_before import clv_step_before, step_figures
from bench.dag_run import dag_test, migrate
from bench.data import dataset, link_tree, write_next_day
from bench.floor import dbt_models, sql_floor
from bench.lifetimes import btyd_summary_vs_lifetimes, clv_fit_vs_lifetimes, clv_models_timing
from bench.machine import load_average, machine_info, wait_for_quiet
from bench.markdown import render
from bench.measuring import SAMPLE_EVERY
from bench.spark import spark_build
from customer_marts.config import Settings
from customer_marts.transform.runner import run_dbt

log = logging.getLogger(__name__)


# The CLV step: every dbt model between the orders and the CLV marts (the BTYD inputs, the
# fits, the holdout check, the predictions with their intervals, the CLV marts).
CLV_MODEL = re.compile(r"clv|btyd")
# The customer-analysis marts and what they need: line items and products, marketing spend,
# CAC, LTV:CAC, payback and the value lost to churn, and the retention marts by dimension
# (counted whole: their overall rows were there before, so the share is an upper bound).
ANALYSIS_MODEL = re.compile(
    r"order_lines|marketing_spend|products|order_reconciliation|cac|payback|churn_value"
    r"|customers_lost|customer_dimensions|channel_cohort_margins|retention_by_period"
    r"|cohort_retention|retention_counted_by_dimension"
)
# The CLV step and the step before the holdout check, the models and the intervals
# (bench.clv_before) are timed this many times each, alternately; each figure is its
# fastest time (the machine's noise only adds time).
CLV_STEP_ROUNDS = 2

# target: (figure, comparison, bound)
TARGETS = {
    "e2e_seconds_10m": ("<=", 120.0),
    "peak_rss_mb_10m": ("<=", 6144.0),
    "incremental_seconds_10m": ("<=", 30.0),
    "ratio_to_sql_floor_10m": ("<=", 3.0),
    "btyd_summary_speedup_vs_lifetimes": (">=", 5.0),
    "clv_fit_speedup_vs_lifetimes": (">=", 3.0),
    "clv_step_over_before_10m": ("<", 3.0),
    "analysis_marts_share_10m": ("<=", 0.30),
}


@dataclass(frozen=True)
class Scale:
    """The sizes of one benchmark invocation."""

    name: str
    small_orders: int
    large_orders: int
    next_day_orders: int

    @property
    def labels(self) -> tuple[str, str]:
        return _label(self.small_orders), _label(self.large_orders)


SCALES = {
    "full": Scale("full", 1_000_000, 10_000_000, 15_000),
    "small": Scale("small", 50_000, 200_000, 1_500),  # to develop the benchmark itself
}


def _label(orders: int) -> str:
    return f"{orders // 1_000_000}m" if orders % 1_000_000 == 0 else f"{orders // 1_000}k"


# ---------------------------------------------------------------- the whole benchmark


@dataclass
class Context:
    root: Path  # bench/
    data_dir: Path  # bench/data (cached datasets, run folders)
    results_path: Path
    markdown_path: Path
    scale: Scale
    wait: bool = True
    keep_runs: bool = False  # keep the run folders (logs, warehouses) for profiling


# The demo summary's file counts, one per source (bench/data.py, tools/demo/generator.py).
FILE_KINDS = ("order_files", "survey_files", "send_files", "order_line_files", "spend_files")


def _full_run(context: Context, orders: int) -> dict[str, Any]:
    """The full run from an empty warehouse and a fresh Airflow home."""
    label = _label(orders)
    cached, info = dataset(context.data_dir, orders)
    workdir = context.data_dir / "runs" / label
    landing, warehouse, home = workdir / "landing", workdir / "warehouse", workdir / "airflow"
    shutil.rmtree(warehouse, ignore_errors=True)
    link_tree(cached, landing)
    migrate_seconds = migrate(home, landing, warehouse)
    as_of = date.fromisoformat(info["last_date"])
    full = dag_test(home, landing, warehouse, as_of, workdir / f"dag-{as_of}.log")
    return {
        "orders": int(info["orders"]),
        "customers": int(info["customers"]),
        "survey_responses": int(info["survey_responses"]),
        "survey_sends": int(info["survey_sends"]),
        "files": int(sum(info[kind] for kind in FILE_KINDS)),
        "airflow_db_migrate_seconds": round(migrate_seconds, 2),
        "full": full.figures(),
        "ingest_rows_per_second": full.rows_read / full.tasks["ingest"],
        "info": info,
        "workdir": workdir,
        "home": home,
        "warehouse": warehouse,
        "landing": landing,
        "as_of": as_of,
    }


def _dbt_step(runs: dict[str, Any], pattern: re.Pattern, name: str, *flags: str) -> dict:
    """`dbt run` of the models `pattern` names on a full run's build database as of its
    as-of date, alone on the machine: dbt's own elapsed time (without its start-up) and
    each model's seconds."""
    warehouse = runs["warehouse"]
    target = warehouse / "dbt" / "target"
    names = [node["name"] for node in dbt_models(target) if pattern.search(node["name"])]
    settings = Settings.from_env()
    settings = replace(settings, landing_dir=runs["landing"], warehouse_dir=warehouse)
    step_target = runs["workdir"] / f"{name}_step"
    code, results = run_dbt(
        settings, "run", runs["as_of"], *flags, "--select", *names, target_path=step_target
    )
    if code != 0:
        raise RuntimeError(f"dbt run of the {name} step failed (exit {code}); see the log")
    return step_figures(results)


def clv_step(runs: dict[str, Any]) -> dict[str, Any]:
    """The CLV step alone: the models CLV_MODEL names (`_dbt_step`)."""
    return _dbt_step(runs, CLV_MODEL, "clv")


def clv_steps(runs: dict[str, Any]) -> dict[str, Any]:
    """Today's CLV step (`clv_step`) and the step before (bench.clv_before), alternately
    CLV_STEP_ROUNDS times on the same build database: the fastest of each, with every
    round's seconds. The step before is None where its commit is not at hand."""
    today, before = [], []
    for _ in range(CLV_STEP_ROUNDS):
        step = clv_step_before(runs, CLV_MODEL)
        if step is not None:
            before.append(step)
        today.append(clv_step(runs))
    fastest = min(today, key=lambda step: step["seconds"])
    return {
        **fastest,
        "rounds": [step["seconds"] for step in today],
        "before": {
            **min(before, key=lambda step: step["seconds"]),
            "rounds": [step["seconds"] for step in before],
        }
        if before
        else None,
    }


def analysis_step(runs: dict[str, Any]) -> dict[str, Any]:
    """What the customer-analysis models (ANALYSIS_MODEL) add to a full run: the wall
    time of building them alone (`_dbt_step`), from scratch as the full run did
    (`--full-refresh`: two of them are incremental). Their execution times in the full
    run's build (`analysis_marts`) add up to more: there dbt runs two models at once on
    the two cores, so each model's time includes the other's share of the machine."""
    return _dbt_step(runs, ANALYSIS_MODEL, "analysis", "--full-refresh")


def analysis_marts(target: Path) -> dict[str, Any]:
    """The customer-analysis models' (ANALYSIS_MODEL) execution times in a full run's
    dbt build (its run_results.json in `target`), and their sum."""
    run_results = json.loads((target / "run_results.json").read_text())
    models = {
        node["unique_id"].split(".")[-1]: float(node["execution_time"])
        for node in run_results["results"]
        if node["unique_id"].startswith("model.")
        and ANALYSIS_MODEL.search(node["unique_id"].split(".")[-1])
    }
    return {"seconds": round(sum(models.values()), 2), "models": _rounded(models)}


def _incremental_run(runs: dict[str, Any], orders: int) -> None:
    """One more day of orders landed on top of a full run's history, then its run."""
    day = runs["as_of"] + timedelta(days=1)
    write_next_day(runs["landing"], runs["info"], day, orders)
    runs["next_day_orders"] = orders
    log_path = runs["workdir"] / f"dag-{day}.log"
    runs["incremental"] = dag_test(
        runs["home"], runs["landing"], runs["warehouse"], day, log_path
    ).figures()


def run(context: Context) -> dict[str, Any]:
    """Run every measurement of `context.scale`; write results.json and BENCHMARKS.md."""
    started = datetime.now(UTC)
    small, large = context.scale.labels
    load_before = load_average()
    quiet = None
    if context.wait:
        # generate first (it does not need a quiet machine), then wait
        dataset(context.data_dir, context.scale.small_orders)
        dataset(context.data_dir, context.scale.large_orders)
        load_at_start, quiet, waited = wait_for_quiet()
    else:
        load_at_start, waited = load_before, 0.0
    machine = {
        **machine_info(),
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m_before_wait": round(load_before, 2),
        "waited_for_quiet_seconds": round(waited),
        "quiet_at_start": quiet,
        "memory_sampling": f"psutil, process tree RSS summed, every {SAMPLE_EVERY} s",
    }
    clock = time.perf_counter()

    small_runs = _full_run(context, context.scale.small_orders)
    target = small_runs["warehouse"] / "dbt" / "target"
    build_db = small_runs["warehouse"] / "build.duckdb"
    btyd = btyd_summary_vs_lifetimes(build_db, target, small_runs["as_of"])
    fit = clv_fit_vs_lifetimes(build_db)
    models = clv_models_timing(build_db)
    small_runs["spark"] = spark_build(
        build_db, small_runs["workdir"] / "spark", small_runs["as_of"]
    )
    if not context.keep_runs:
        shutil.rmtree(small_runs["workdir"], ignore_errors=True)

    large_runs = _full_run(context, context.scale.large_orders)
    floor = sql_floor(  # on the full run's raw tables and manifest
        large_runs["warehouse"] / "build.duckdb",
        large_runs["warehouse"] / "dbt" / "target",
        large_runs["landing"],
        large_runs["workdir"] / "floor",
    )
    large_runs["analysis_marts"] = {
        **analysis_step(large_runs),
        "in_full_run": analysis_marts(large_runs["warehouse"] / "dbt" / "target"),
    }
    large_runs["clv_step"] = clv_steps(large_runs)
    _incremental_run(large_runs, context.scale.next_day_orders)
    if not context.keep_runs:
        shutil.rmtree(large_runs["workdir"], ignore_errors=True)

    full_large, full_small = large_runs["full"], small_runs["full"]
    peak = max(full_large["peak_rss_mb"], large_runs["incremental"]["peak_rss_mb"])
    results = {
        f"e2e_seconds_{small}": full_small["seconds"],
        f"e2e_seconds_{large}": full_large["seconds"],
        f"incremental_seconds_{large}": large_runs["incremental"]["seconds"],
        f"peak_rss_mb_{large}": peak,
        f"sql_floor_seconds_{large}": round(floor["seconds"], 2),
        f"ratio_to_sql_floor_{large}": round(full_large["seconds"] / floor["seconds"], 2),
        "btyd_summary_speedup_vs_lifetimes": round(btyd["speedup"], 2),
        "clv_fit_speedup_vs_lifetimes": round(fit["speedup"], 2),
        f"clv_three_fits_seconds_{small}": round(models["three_fits_seconds"], 2),
        f"clv_intervals_seconds_{small}": round(
            models["customer_intervals_seconds"] + models["group_intervals_seconds"], 2
        ),
        f"clv_models_over_single_fit_{small}": round(models["run_over_single_fit"], 2),
        f"clv_step_seconds_{large}": large_runs["clv_step"]["seconds"],
        f"analysis_marts_seconds_{large}": large_runs["analysis_marts"]["seconds"],
        f"analysis_marts_share_{large}": round(
            large_runs["analysis_marts"]["seconds"]
            / max(full_large["seconds"] - large_runs["analysis_marts"]["seconds"], 1e-9),
            3,
        ),
        "ingest_rows_per_second": round(large_runs["ingest_rows_per_second"]),
        f"e2e_scaling_{large}_over_{small}": round(
            full_large["seconds"] / full_small["seconds"], 2
        ),
        f"orders_ratio_{large}_over_{small}": round(large_runs["orders"] / small_runs["orders"], 2),
    }
    before = large_runs["clv_step"]["before"]
    if before is not None:
        results[f"clv_step_before_seconds_{large}"] = before["seconds"]
        results[f"clv_step_over_before_{large}"] = round(
            large_runs["clv_step"]["seconds"] / before["seconds"], 2
        )
    on_spark = small_runs["spark"]
    if on_spark is not None:
        results[f"spark_seconds_{small}"] = on_spark["seconds"]
        results[f"spark_over_duckdb_build_{small}"] = round(
            on_spark["seconds"] / full_small["tasks"]["dbt_build"], 2
        )
    details = {
        small: _public(small_runs),
        large: _public(large_runs),
        "sql_floor": _rounded(floor),
        "btyd_summary_vs_lifetimes": _rounded(btyd),
        "clv_fit_vs_lifetimes": _rounded(fit),
        "clv_models": _rounded(models),
        "bench_seconds": round(time.perf_counter() - clock, 1),
    }
    document = {
        **results,
        "targets": {key: {"comparison": op, "bound": bound} for key, (op, bound) in TARGETS.items()}
        if context.scale.name == "full"
        else {},
        "details": details,
        "machine": machine,
        "scale": context.scale.name,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
    }
    context.results_path.parent.mkdir(parents=True, exist_ok=True)
    context.results_path.write_text(json.dumps(document, indent=2) + "\n")
    render(document, context.markdown_path)
    log.info("results in %s and %s", context.results_path, context.markdown_path)
    return document


def _public(figures: dict[str, Any]) -> dict[str, Any]:
    hidden = {"workdir", "home", "warehouse", "landing", "as_of", "info"}
    return _rounded({key: value for key, value in figures.items() if key not in hidden})


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, float):
        return float(f"{value:.3g}") if abs(value) < 1 else round(value, 2)
    return value
