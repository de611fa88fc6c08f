"""BENCHMARKS.md from a results document (its notes section kept)."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import SURVEY_SHARE
from bench.machine import QUIET_LOAD, QUIET_WAIT
from bench.measuring import MEDIAN_BELOW, REPEATS

log = logging.getLogger(__name__)

NOTES_START, NOTES_END = "<!-- notes: kept when the file is regenerated -->", "<!-- /notes -->"
FIGURES = {
    "e2e_seconds": "Full nightly run from an empty warehouse (`airflow dags test`), s",
    "incremental_seconds": "Nightly run after one more day (~15k orders) lands, s",
    "peak_rss_mb": "Peak resident memory of the run, all processes, MiB",
    "sql_floor_seconds": "Same marts straight in DuckDB (the floor), s",
    "ratio_to_sql_floor": "Full run / floor",
    "btyd_summary_speedup_vs_lifetimes": "BTYD inputs: our SQL vs lifetimes' summary, x faster",
    "clv_fit_speedup_vs_lifetimes": "BG/NBD + Gamma-Gamma fit: ours vs lifetimes, x faster",
    "clv_three_fits_seconds": "CLV: BG/NBD, MBG/NBD, Pareto/NBD + Gamma-Gamma fits, s",
    "clv_intervals_seconds": "CLV: 90 % intervals (customers and groups), s",
    "clv_models_over_single_fit": "CLV: a run's fits and intervals / the single BG/NBD fit",
    "clv_step_seconds": "CLV step alone (`dbt run` of its models on the full run's build), s",
    "clv_step_before_seconds": "CLV step of commit 900ada8 (one BG/NBD + Gamma-Gamma fit, no holdout, no intervals), timed alternately with today's step on the same build, s",
    "clv_step_over_before": "CLV step / the same step before the holdout, models and intervals",
    "analysis_marts_seconds": "Customer-analysis marts alone (`dbt run` of their models on the full run's build), s",
    "analysis_marts_share": "Customer-analysis marts / the rest of the full run",
    "spark_seconds": "The dbt project on Spark in local mode (`spark/build.py`: raw tables in, every model, the CLV step, Parquet out) on the full run's build, s",
    "spark_over_duckdb_build": "That Spark build / DuckDB's `dbt_build` task of the same run",
    "ingest_rows_per_second": "CSV ingest throughput (ingest task), rows/s",
    "e2e_scaling": "Scaling of the full run (time ratio)",
    "orders_ratio": "Orders ratio of the two sizes",
}


def _clv_models_lines(models: dict[str, Any] | None, size: str) -> list[str]:
    if not models:
        return []
    return [
        "## CLV models",
        "",
        f"On the {size} run's BTYD inputs ({models['customers']:,} customers), "
        f"{models['draws']} parameter draws; figures under {MEDIAN_BELOW:g} s are medians.",
        "",
        "| | s |",
        "| --- | ---: |",
        f"| BG/NBD + Gamma-Gamma fit (one model) | {_number(models['single_fit_seconds'])} |",
        f"| BG/NBD, MBG/NBD, Pareto/NBD + Gamma-Gamma fits | "
        f"{_number(models['three_fits_seconds'])} |",
        f"| intervals of every customer | {_number(models['customer_intervals_seconds'])} |",
        f"| intervals of group sums | {_number(models['group_intervals_seconds'])} |",
        f"| a run (fits twice: all history and calibration; both intervals) / one fit | "
        f"{models['run_over_single_fit']:.1f}x |",
        "",
    ]


def _figure_name(key: str) -> str:
    for prefix, text in FIGURES.items():
        if key.startswith(prefix):
            suffix = key[len(prefix) :].lstrip("_")
            return f"{text}" + (f" ({suffix.replace('_', ' ')})" if suffix else "")
    return key


COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _verdict(key: str, value: float, targets: dict) -> tuple[str, str]:
    if key not in targets:
        return "", ""
    op, bound = targets[key]["comparison"], targets[key]["bound"]
    met = COMPARISONS[op](value, bound)
    return f"{op} {bound:g}", "met" if met else "**missed**"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _shares(tasks: dict[str, float], total: float) -> str:
    ranked = sorted(tasks.items(), key=lambda item: -item[1])
    return ", ".join(
        f"`{name}` {seconds:.0f} s ({100 * seconds / total:.0f} %)" for name, seconds in ranked
    )


def render(document: dict[str, Any], path: Path) -> None:
    """Write BENCHMARKS.md from a results document, keeping the hand-written notes."""
    notes = "Findings and fixes: none recorded yet."
    if path.exists():
        text = path.read_text()
        if NOTES_START in text and NOTES_END in text:
            notes = text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0].strip()
    details, machine, targets = document["details"], document["machine"], document["targets"]
    sizes = [key for key in details if key[0].isdigit()]
    small, large = sizes
    lines = [
        "# Benchmarks",
        "",
        f"Measured {document['date']} by `make bench` (scale `{document['scale']}`); "
        "figures from `bench/results.json`. This file is regenerated by every run; the notes "
        "section is kept.",
        "",
        "## Figures",
        "",
        "| figure | value | target | |",
        "| --- | ---: | ---: | --- |",
    ]
    for key, value in document.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            target, verdict = _verdict(key, float(value), targets)
            lines.append(
                f"| {_figure_name(key)} `{key}` | {_number(value)} | {target} | {verdict} |"
            )
    lines += ["", "## Data", "", "| | " + " | ".join(sizes) + " |", "| --- | ---: | ---: |"]
    for key in ("orders", "customers", "survey_responses", "survey_sends", "files"):
        lines.append(
            f"| {key.replace('_', ' ')} | "
            + " | ".join(_number(details[s][key]) for s in sizes)
            + " |"
        )
    lines.append(
        f"| next day's orders (incremental run) | | {_number(details[large]['next_day_orders'])} |"
    )
    runs = {
        f"full {small}": details[small]["full"],
        f"full {large}": details[large]["full"],
        f"incremental {large}": details[large]["incremental"],
    }
    lines += [
        "",
        "## Where the time goes",
        "",
        "Seconds per task (Airflow's task-instance durations; the wall time also holds "
        "`airflow dags test`'s own start-up and scheduling between tasks), then the "
        "`dbt_build` task split up (dbt's run_results.json and the task log's timestamps).",
        "",
        "| | " + " | ".join(runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
        "| **wall time** | " + " | ".join(_number(run["seconds"]) for run in runs.values()) + " |",
    ]

    def row(label: str, pick: Callable[[dict[str, Any]], Any]) -> str:
        return f"| {label} | " + " | ".join(_number(pick(run)) for run in runs.values()) + " |"

    full = runs[f"full {large}"]
    lines += [row(task, lambda run, t=task: run["tasks"].get(t, 0.0)) for task in full["tasks"]]
    lines += [
        row(f"dbt: {step.replace('_', ' ')}", lambda run, s=step: run["steps"].get(s, 0.0))
        for step in full["steps"]
    ]
    lines.append(row("peak RSS, MiB (tree)", lambda run: run["peak_rss_mb"]))
    lines.append(row("peak RSS, MiB (largest process)", lambda run: run["peak_process_rss_mb"]))
    lines += [
        row(
            f"peak RSS during {task}, MiB", lambda run, t=task: run["peak_rss_mb_by_task"].get(t, 0)
        )
        for task in full.get("peak_rss_mb_by_task", {})
    ]
    lines += [
        "",
        f"**What dominates** the full {large} run ({full['seconds']:.0f} s): "
        + _shares(full["tasks"], full["seconds"])
        + ".",
        "",
        f"Slowest dbt nodes of the full {large} run (seconds, each on one of dbt's 2 threads):",
        "",
    ]
    lines += [f"- {name}: {seconds:.1f}" for name, seconds in full["slowest_dbt_nodes"].items()]
    floor = details["sql_floor"]
    lines += [
        "",
        "## The SQL floor",
        "",
        f"The {large} run's compiled models ({floor['models']}) executed in dependency order in one "
        "DuckDB connection, without Airflow, dbt or Great Expectations, on a copy of the run's "
        "raw tables: SQL models as `create view` / `create table as` their compiled SQL, the "
        "two Python models (the CLV fit and predictions) by running their compiled code. Every "
        "table's row count is checked against the pipeline's. Added to it: the typed CSV load "
        "of the same files with one `read_csv` per source (the floor of ingestion).",
        "",
        "| part | seconds |",
        "| --- | ---: |",
        f"| CSV load (`read_csv`, {floor['load_rows']:,} rows) | {_number(floor['load_seconds'])} |",
        f"| SQL models | {_number(floor['sql_models_seconds'])} |",
        f"| Python models (CLV fit, predictions) | {_number(floor['python_models_seconds'])} |",
        f"| **floor** | {_number(floor['seconds'])} |",
        "",
        "Slowest models in the floor: "
        + ", ".join(
            f"`{name}` {seconds:.1f} s" for name, seconds in floor["slowest_models"].items()
        )
        + ".",
    ]
    btyd, fit = details["btyd_summary_vs_lifetimes"], details["clv_fit_vs_lifetimes"]
    lines += [
        "",
        "## Against lifetimes",
        "",
        f"On the {small} run's data. Figures under {MEDIAN_BELOW:g} s are medians of up to "
        f"{REPEATS} runs.",
        "",
        "| | ours, s | lifetimes 0.11.3, s | speed-up | agreement |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| BTYD inputs from {btyd['orders']:,} completed orders ({btyd['customers']:,} "
        f"customers) | {_number(btyd['ours_seconds'])} | {_number(btyd['lifetimes_seconds'])} "
        f"| {btyd['speedup']:.1f}x | frequency, recency, T equal; monetary value within "
        f"{btyd['monetary_max_rel_diff']:.0e} |",
        f"| BG/NBD + Gamma-Gamma fit ({fit['customers']:,} customers) "
        f"| {_number(fit['ours_seconds'])} | {_number(fit['lifetimes_seconds'])} "
        f"| {fit['speedup']:.1f}x | parameters within {fit['parameters_max_rel_diff']:.0e} "
        "(relative) |",
        "",
        "Ours: `int_customers_summarised_for_clv`'s compiled SQL in DuckDB on the run's "
        "`int_orders_numbered` (2 threads), asked for the columns lifetimes computes and "
        "fetched as a DataFrame; `customer_marts.clv.fitting.fit_bg_nbd` + `fit_gamma_gamma`. "
        "lifetimes (one thread): `summary_data_from_transaction_data(freq='D')` on the same "
        "completed orders already in a DataFrame; `BetaGeoFitter().fit` + "
        "`GammaGammaFitter().fit` on the same day-level inputs (its Gamma-Gamma fit gets the "
        "amounts divided by their mean: on the raw amounts it stops with a ConvergenceError "
        "at this size; v is scaled back).",
        "",
        *_clv_models_lines(details.get("clv_models"), small),
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in machine.items()]
    if machine.get("quiet_at_start") is False:
        lines += [
            "",
            f"**The machine was not quiet**: the 1-minute load average was still "
            f"{machine['load_average_1m_at_start']} after waiting "
            f"{machine['waited_for_quiet_seconds']} s; other work shared the 2 cores, so "
            "the times are longer than on an idle machine.",
        ]
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        "make run        # optional: the demo pipeline once (installs the venv)",
        f"make bench      # {details['bench_seconds'] / 60:.0f} min of measuring here, plus about 2 "
        "min of data generation on the first run",
        'make bench BENCH_ARGS="--scale small --no-wait"   # 50k / 200k orders: try it out',
        "```",
        "",
        "The data (generated by `tools.demo`, seed 42, two years of daily files, "
        "five orders per customer, survey responses to "
        f"{SURVEY_SHARE:.1%} of completed orders) is cached under `bench/data/` (git-ignored) "
        "and reused; delete it to regenerate. Each DAG run gets a fresh warehouse and a fresh "
        "`AIRFLOW_HOME` with SQLite metadata (`airflow db migrate` is not timed). `make bench` "
        f"waits up to {QUIET_WAIT // 60} minutes for the 1-minute load average to fall under "
        f"{QUIET_LOAD} before measuring (`--no-wait` skips that) and records it. Peak memory: "
        f"{machine.get('memory_sampling', '')}; the figure is the higher of the full and the "
        "incremental run.",
        "",
        "## Notes",
        "",
        NOTES_START,
        notes,
        NOTES_END,
        "",
    ]
    path.write_text("\n".join(lines))
