"""The benchmark's helpers on tiny data (the benchmark itself is `make bench`; nothing
here times anything or asserts a speed)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from bench import clv_before, dag_run, data, floor, harness, lifetimes, markdown, measuring
from customer_marts.clv.fitting import Fit
from customer_marts.ingest.run import ingest
from tests.conftest import copy_warehouse

AS_OF = date(2025, 12, 31)
# Three customers' completed orders, worked out by hand (day-level BTYD, docs/metrics.md):
# a: days 12-01 (10 + 5), 12-11 (20), 12-21 (30) -> x = 2, t_x = 20, T = 30, m = (20 + 30) / 2
# b: one purchase day, 12-30 -> x = 0, t_x = 0, T = 1, m = 0
# c: days 06-01 (100), 12-31 (50) -> x = 1, t_x = 213, T = 213, m = 50
ORDERS = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "a", "b", "c", "c"],
        "order_date": pd.to_datetime(
            [
                "2025-12-01",
                "2025-12-01",
                "2025-12-11",
                "2025-12-21",
                "2025-12-30",
                "2025-06-01",
                "2025-12-31",
            ]
        ),
        "amount": [10.0, 5.0, 20.0, 30.0, 40.0, 100.0, 50.0],
    }
)
BY_HAND = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "frequency": [2, 0, 1],
        "recency_days": [20, 0, 213],
        "t_days": [30, 1, 213],
        "monetary_value": [25.0, 0.0, 50.0],
    }
)


def test_lifetimes_summary_equals_the_hand_worked_btyd_inputs():
    assert lifetimes.compare_summaries(BY_HAND, lifetimes.lifetimes_summary(ORDERS, AS_OF)) == {
        "customers": 3,
        "monetary_max_rel_diff": 0.0,
    }


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("recency_days", 21, "recency_days differs"), ("monetary_value", 25.01, "monetary_value")],
)
def test_a_summary_that_differs_from_lifetimes_is_refused(column, value, message):
    ours = BY_HAND.copy()
    ours.loc[0, column] = value
    with pytest.raises(AssertionError, match=message):
        lifetimes.compare_summaries(ours, lifetimes.lifetimes_summary(ORDERS, AS_OF))


def test_a_summary_with_other_customers_is_refused():
    with pytest.raises(AssertionError, match="customers differ"):
        lifetimes.compare_summaries(BY_HAND.iloc[:2], lifetimes.lifetimes_summary(ORDERS, AS_OF))


def test_our_fit_and_lifetimes_agree_on_simulated_customers():
    # 2,000 customers drawn from a BG/NBD with known parameters (days): both fits land
    # within 0.1 % of each other, ours converged.
    rng = np.random.default_rng(3)
    n = 2_000
    T = rng.integers(30, 700, n).astype(float)
    rate = rng.gamma(0.8, 1 / 60.0, n)
    dropout = rng.beta(0.6, 3.0, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > T[i]:
                break
            x[i], t_x[i] = x[i] + 1, t
            if rng.uniform() < dropout[i]:
                break
    m = np.where(x > 0, rng.gamma(6.0, 10.0, n), 0.0)
    ours = lifetimes.our_fit(x, t_x, T, m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = lifetimes.lifetimes_fit(x, t_x, T, m)
    assert all(isinstance(fit, Fit) and fit.converged for fit in ours)
    assert lifetimes.compare_fits(ours, theirs) < lifetimes.PARAMETER_RTOL


def test_timed_takes_the_median_of_fast_runs_and_one_slow_run(monkeypatch):
    clock = iter([0.0, 1.0, 1.0, 4.0, 4.0, 6.0, 6.0, 7.0, 7.0, 10.0])  # 1, 3, 2, 1, 3 s
    monkeypatch.setattr(measuring.time, "perf_counter", lambda: next(clock))
    seconds, result, runs = measuring.timed(lambda: "done")
    assert (seconds, result, runs) == (2.0, "done", [1.0, 3.0, 2.0, 1.0, 3.0])
    slow = iter([0.0, 12.0])
    monkeypatch.setattr(measuring.time, "perf_counter", lambda: next(slow))
    assert measuring.timed(lambda: None)[0] == 12.0  # a single run of 12 s


def test_models_come_in_dependency_order(tmp_path):
    def node(name, *parents):
        return {
            "resource_type": "model",
            "name": name,
            "depends_on": {"nodes": [f"model.p.{parent}" for parent in parents]},
        }

    nodes = {
        "model.p.a_mart": node("a_mart", "m_int", "z_stg"),
        "model.p.m_int": node("m_int", "z_stg"),
        "model.p.z_stg": node("z_stg"),
        "test.p.t": {"resource_type": "test", "name": "t"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    assert [model["name"] for model in floor.dbt_models(tmp_path)] == ["z_stg", "m_int", "a_mart"]


def test_the_floor_load_reads_every_landed_row(small_demo, tmp_path):
    # second method: the pipeline's own ingest of the same files
    seconds, rows = floor.floor_load(small_demo, tmp_path / "load.duckdb")
    summary = ingest(tmp_path / "build.duckdb", small_demo, "run")
    assert seconds > 0 and rows == summary.rows_loaded == summary.rows_read


def test_the_next_day_lands_cleanly_after_the_history(small_demo, tmp_path):
    data.link_tree(small_demo, tmp_path / "landing")
    info = json.loads((small_demo / "_demo.json").read_text())
    ingest(tmp_path / "build.duckdb", tmp_path / "landing", "history")
    data.write_next_day(tmp_path / "landing", info, date(2026, 1, 1), 300)
    summary = ingest(tmp_path / "build.duckdb", tmp_path / "landing", "next")
    # only the two new files are read; all 300 orders and ~30 responses load, no
    # duplicate ids with the history, nothing quarantined
    assert (summary.files_loaded, summary.rows_quarantined, summary.rows_duplicate) == (2, 0, 0)
    assert summary.by_source["orders"]["rows_loaded"] == 300
    assert summary.by_source["surveys"]["rows_loaded"] == 30
    with duckdb.connect(str(tmp_path / "build.duckdb"), read_only=True) as con:
        newest = con.execute("select max(ordered_at)::date from raw.orders").fetchone()[0]
    assert newest == date(2026, 1, 1)
    assert not (small_demo / "orders" / "orders_2026-01-01.csv").exists()  # cache untouched


def test_the_report_keeps_its_notes(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(
        f"OLD-GENERATED-TEXT\n{markdown.NOTES_START}\nhand-written finding\n{markdown.NOTES_END}\n"
    )
    run = {
        "seconds": 10.0,
        "peak_rss_mb": 100,
        "peak_process_rss_mb": 50,
        "tasks": {"ingest": 4.0, "dbt_build": 6.0},
        "steps": {"dbt_build_elapsed": 5.0},
        "slowest_dbt_nodes": {"model fct_orders": 1.0},
    }
    size = {
        "orders": 10,
        "customers": 2,
        "survey_responses": 1,
        "survey_sends": 3,
        "files": 4,
        "full": run,
    }
    document = {
        "e2e_seconds_1m": 10.0,
        "e2e_seconds_10m": 130.0,
        "targets": {"e2e_seconds_10m": {"comparison": "<=", "bound": 120.0}},
        "details": {
            "1m": size,
            "10m": {**size, "next_day_orders": 5, "incremental": run},
            "sql_floor": {
                "seconds": 5.0,
                "load_seconds": 1.0,
                "load_rows": 10,
                "sql_models_seconds": 3.0,
                "python_models_seconds": 1.0,
                "models": 3,
                "slowest_models": {"fct_orders": 1.0},
            },
            "btyd_summary_vs_lifetimes": {
                "orders": 10,
                "customers": 2,
                "ours_seconds": 0.1,
                "lifetimes_seconds": 0.5,
                "speedup": 5.0,
                "monetary_max_rel_diff": 0.0,
            },
            "clv_fit_vs_lifetimes": {
                "customers": 2,
                "ours_seconds": 0.1,
                "lifetimes_seconds": 0.4,
                "speedup": 4.0,
                "parameters_max_rel_diff": 1e-7,
            },
            "bench_seconds": 600.0,
        },
        "machine": {"cores": 2, "quiet_at_start": True},
        "scale": "full",
        "date": "2026-01-01 00:00 UTC",
    }
    markdown.render(document, path)
    text = path.read_text()
    assert "hand-written finding" in text and "OLD-GENERATED-TEXT" not in text
    assert "| 130 | <= 120 | **missed** |" in text


def test_clv_models_timing_reports_the_fits_and_intervals(tmp_path):
    # small simulated BTYD inputs in a real DuckDB file, as a run's build database has them
    from tests.unit.clv.test_clv import simulate

    x, t_x, T, m = simulate(3_000, seed=4)
    build_db = tmp_path / "build.duckdb"
    frame = pd.DataFrame({"frequency": x, "recency_days": t_x, "t_days": T, "monetary_value": m})
    with duckdb.connect(str(build_db)) as con:
        con.execute("create schema intermediate")
        con.register("frame", frame)
        con.execute(
            "create table intermediate.int_customers_summarised_for_clv as select * from frame"
        )
    models = lifetimes.clv_models_timing(build_db)
    assert models["customers"] == 3_000 and all(models["converged"].values())
    for key in (
        "single_fit_seconds",
        "three_fits_seconds",
        "customer_intervals_seconds",
        "group_intervals_seconds",
    ):
        assert models[key] > 0, key
    # a run fits every model twice and computes both intervals: more than one fit's work
    assert models["run_over_single_fit"] > 1
    lines = "\n".join(markdown._clv_models_lines(models, "1m"))
    assert "## CLV models" in lines and "BG/NBD, MBG/NBD, Pareto/NBD" in lines


@pytest.mark.dbt_build
def test_the_clv_and_analysis_steps_rerun_exactly_their_models(
    published_demo, small_demo, tmp_path
):
    warehouse = copy_warehouse(published_demo, tmp_path / "warehouse")
    runs = {"warehouse": warehouse, "landing": small_demo, "workdir": tmp_path, "as_of": AS_OF}
    step = harness.clv_step(runs)
    clv_marts = {"customer_clv", "clv_model_fit", "clv_validation", "clv_by_cohort"}
    assert clv_marts <= set(step["models"]) and "dim_customers" not in step["models"]
    assert {"int_btyd_parameters_fitted", "int_customers_summarised_for_clv"} <= set(step["models"])
    assert step["seconds"] > 0
    # the analysis step on the same warehouse: exactly the models the full-run figure sums
    analysis = harness.analysis_step(runs)
    in_full_run = harness.analysis_marts(warehouse / "dbt" / "target")
    assert set(analysis["models"]) == set(in_full_run["models"])
    # built from scratch as the full run built them (two of them are incremental)
    step_results = json.loads((tmp_path / "analysis_step" / "run_results.json").read_text())
    assert step_results["args"]["full_refresh"] is True
    assert analysis["seconds"] > 0


@pytest.mark.dbt_build
def test_the_step_before_runs_that_commit_s_clv_models_on_a_copy_of_the_build(
    published_demo, small_demo, tmp_path
):
    warehouse = copy_warehouse(published_demo, tmp_path / "warehouse")
    runs = {"warehouse": warehouse, "landing": small_demo, "workdir": tmp_path, "as_of": AS_OF}
    before = clv_before.clv_step_before(runs, harness.CLV_MODEL)
    if before is None:
        pytest.skip(f"commit {clv_before.BEFORE_COMMIT[:7]} is not in this copy's history")
    # that commit's CLV models, named by hand: one fit table, no holdout, no intervals
    assert set(before["models"]) == {
        "int_customers_summarised_for_clv",
        "int_btyd_parameters_fitted",
        "int_customers_predicted_by_btyd",
        "customer_clv",
        "clv_model_fit",
        "clv_by_cohort",
        "clv_by_segment",
    }
    assert before["commit"] == clv_before.BEFORE_COMMIT[:7] and before["seconds"] > 0
    # it ran on a copy: the run's build still has today's CLV tables, with their columns
    with duckdb.connect(str(warehouse / "build.duckdb"), read_only=True) as con:
        columns = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns"
                " where table_name = 'int_btyd_parameters_fitted'"
            ).fetchall()
        }
    assert {"is_selected_model", "std_error"} <= columns
    assert not (tmp_path / "clv_before" / "warehouse" / "build.duckdb").exists()


def test_a_commit_that_is_not_at_hand_gives_no_step_before(tmp_path):
    assert not clv_before.checkout("0" * 40, tmp_path / "source")


def test_the_two_clv_steps_alternate_and_each_figure_is_its_fastest(monkeypatch):
    calls = []
    today, before = iter([31.0, 28.0]), iter([15.0, 12.0])

    def step(name, seconds):
        calls.append(name)
        return {"seconds": next(seconds), "models": {}}

    monkeypatch.setattr(harness, "clv_step", lambda runs: step("today", today))
    monkeypatch.setattr(harness, "clv_step_before", lambda runs, pattern: step("before", before))
    steps = harness.clv_steps({})
    assert calls == ["before", "today"] * harness.CLV_STEP_ROUNDS
    assert (steps["seconds"], steps["rounds"]) == (28.0, [31.0, 28.0])
    assert (steps["before"]["seconds"], steps["before"]["rounds"]) == (12.0, [15.0, 12.0])
    # without the commit, no step before (and so no ratio)
    monkeypatch.setattr(harness, "clv_step_before", lambda runs, pattern: None)
    today = iter([30.0, 29.0])
    assert harness.clv_steps({})["before"] is None


@pytest.mark.dbt_build
def test_the_analysis_marts_figure_sums_the_new_models_of_the_full_run(published_demo):
    target = published_demo / "dbt" / "target"
    figure = harness.analysis_marts(target)
    # the customer-analysis models, named by hand (not by the pattern under test)
    new = {
        "stg_raw__order_lines",
        "stg_raw__marketing_spend",
        "fct_order_lines",
        "dim_products",
        "order_reconciliation",
        "cac_by_channel",
        "ltv_cac_by_channel",
        "payback_by_channel",
        "churn_value_by_period",
        "int_customers_lost",
        "int_customer_dimensions",
        "int_channel_cohort_margins",
        "int_periods_retention_counted_by_dimension",
        "retention_by_period",
        "cohort_retention",
    }
    # exactly these: no model that was there before (fct_orders, dim_customers, ...) counts
    assert set(figure["models"]) == new
    results = json.loads((target / "run_results.json").read_text())["results"]
    times = {node["unique_id"].split(".")[-1]: node["execution_time"] for node in results}
    assert figure["seconds"] == pytest.approx(
        sum(times[name] for name in figure["models"]), abs=0.01
    )
    assert 0 < figure["seconds"] < sum(times.values())


def test_a_target_is_met_only_on_its_own_side_of_the_bound():
    targets = {key: {"comparison": op, "bound": 3.0} for key, op in (("lt", "<"), ("ge", ">="))}
    # the CLV step's target is "< 3": 3.08 misses it, 3 itself too
    assert markdown._verdict("lt", 3.08, targets) == ("< 3", "**missed**")
    assert markdown._verdict("lt", 3.0, targets)[1] == "**missed**"
    assert markdown._verdict("lt", 2.9, targets)[1] == "met"
    assert markdown._verdict("ge", 3.0, targets)[1] == "met"
    assert markdown._verdict("ge", 2.9, targets)[1] == "**missed**"


def test_the_report_names_the_analysis_marts_figures():
    assert markdown._figure_name("analysis_marts_share_10m").startswith(
        "Customer-analysis marts / the rest of the full run"
    )
    assert "alone" in markdown._figure_name("analysis_marts_seconds_10m")


def test_a_changed_generator_never_reuses_the_cached_data(tmp_path, monkeypatch):
    from tools.demo import spend

    first, _ = data.dataset(tmp_path, 250)  # 50 customers
    again, _ = data.dataset(tmp_path, 250)
    assert again == first  # the same generator: the cache
    # the generator changes what it writes (here: the spend's day-to-day noise)
    monkeypatch.setattr(spend, "NOISE", 0.5)
    changed, _ = data.dataset(tmp_path, 250)
    assert changed != first
    regenerated = pd.concat(
        pd.read_csv(path) for path in sorted((changed / "marketing_spend").glob("*.csv"))
    )
    cached = pd.concat(
        pd.read_csv(path) for path in sorted((first / "marketing_spend").glob("*.csv"))
    )
    assert not regenerated["amount"].equals(cached["amount"])


def test_dbt_start_up_ends_at_dbt_s_first_node_not_at_the_ingest_s_progress(tmp_path):
    # a run's log as the DAG writes it (shortened): the ingest's "12 of 731 file(s)"
    # comes before dbt starts; dbt's start-up is its call to its first node, 11.5 s
    log = "\n".join(
        [
            "2026-12-02T05:58:45.000000Z [info ] step ingest started (run r)",
            "2026-12-02T06:02:06.000000Z [info ] reading orders: 12 of 731 file(s)",
            "2026-12-02T06:12:01.000000Z [info ] step dbt_build started (run r)",
            "2026-12-02T06:12:01.500000Z [info ] dbt build --project-dir /p (as of 2025-12-31)",
            "2026-12-02T06:12:13.000000Z [info ] dbt | 06:12:13  1 of 407 START sql view model",
            "2026-12-02T06:12:14.000000Z [info ] dbt | 06:12:14  2 of 407 START sql view model",
        ]
    )
    steps = dag_run.step_durations(log, tmp_path)
    assert steps["dbt_startup_before_first_node"] == 11.5
    assert steps["before_dbt"] == 0.5


# A run that starts a grandchild (as `airflow dags test` starts dbt) and then hangs.
HANGING = "import subprocess, sys, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def test_a_run_past_its_timeout_is_killed_with_every_process_it_started(tmp_path):
    import psutil

    with (tmp_path / "run.log").open("w") as output:
        with pytest.raises(subprocess.TimeoutExpired):
            dag_run.run_sampled([sys.executable, "-c", HANGING], {}, output, timeout=2)
    # nothing of it is left (the group is the child's own: its pid is the group id)
    alive = [
        process
        for process in psutil.process_iter(["cmdline", "status"])
        if process.info["cmdline"] in (["sleep", "300"], [sys.executable, "-c", HANGING])
        and process.info["status"] != psutil.STATUS_ZOMBIE
    ]
    assert alive == []


def test_a_run_to_its_end_gives_its_exit_code_and_memory(tmp_path):
    with (tmp_path / "run.log").open("w") as output:
        code, memory = dag_run.run_sampled(
            [sys.executable, "-c", "import time; x = bytearray(50_000_000); time.sleep(1)"],
            {},
            output,
        )
    assert code == 0
    assert memory.peak_total > 50_000_000
