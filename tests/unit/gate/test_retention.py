"""The gate keeps the newest KEEP_QUALITY_RUNS validation results and Data Docs pages of
each suite: real GE validations on a real DuckDB table, counted on disk."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import date

from customer_marts.gate.retention import PAGES_DIR, RESULTS_DIR, prune
from customer_marts.gate.validate import run_suites
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import connect

AS_OF = date(2025, 6, 30)
SUITE = {
    "name": "marts.tiny",
    "meta": {"table": "marts.tiny"},
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ],
}


def run_times(suite, suffix: str) -> list[str]:
    """The run-time folders holding a suite's results (or pages), oldest first."""
    return sorted(path.parent.name for path in suite.glob(f"*/*/*{suffix}"))


def test_n_plus_k_gates_leave_the_newest_n_results_and_pages(settings, tmp_path):
    keep, extra = 2, 2
    (tmp_path / "expectations" / "marts").mkdir(parents=True)
    (tmp_path / "expectations" / "marts" / "tiny.json").write_text(json.dumps(SUITE))
    settings = replace(settings, expectations_dir=tmp_path / "expectations", keep_quality_runs=keep)
    with connect(settings.build_db) as con:
        ensure_schema(con)  # the audit tables the gate reads (previous volumes)
        con.execute("create schema marts")
        con.execute("create table marts.tiny as select 1 as id")
    results = settings.warehouse_dir / RESULTS_DIR / "marts" / "tiny"
    pages = settings.warehouse_dir / PAGES_DIR / "marts" / "tiny"
    made = []  # each gate's own run time, in the order the gates ran
    for number in range(keep + extra):
        before = set(run_times(results, ".json"))
        run_suites(settings, "marts", AS_OF, f"r{number}")
        (new,) = set(run_times(results, ".json")) - before
        made.append(new)
        assert len(run_times(results, ".json")) == min(number + 1, keep)
    assert run_times(results, ".json") == made[-keep:]  # the newest N, nothing older
    assert run_times(pages, ".html") == made[-keep:]
    index = (settings.warehouse_dir / "quality" / "index.html").read_text()
    linked = set(re.findall(r"validations/marts/tiny/__none__/([0-9T.Z]+)/", index))
    assert linked == set(made[-keep:])  # the index links no deleted page

    # A result dated after the gate (another machine's clock, say) does not push the
    # gate's own result out: the gate keeps its own and the newest other.
    future = results / "__none__" / "20991231T000000.000000Z"
    shutil.copytree(results / "__none__" / made[-1], future)
    run_suites(settings, "marts", AS_OF, "r-last")
    kept = run_times(results, ".json")
    assert len(kept) == keep and future.name in kept
    (own,) = set(kept) - {future.name}
    assert own not in made  # the last gate's own result
    assert own in run_times(pages, ".html")


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")


def test_prune_keeps_each_suites_newest_runs(tmp_path):
    results, pages = tmp_path / RESULTS_DIR, tmp_path / PAGES_DIR
    times = [f"2025010{day}T010000.000000Z" for day in range(1, 6)]  # 5 runs, oldest first
    for run_time in times:
        touch(results / "raw" / "orders" / "__none__" / run_time / "build-raw.orders.json")
        touch(pages / "raw" / "orders" / "__none__" / run_time / "build-raw.orders.html")
    # another suite with fewer runs than kept, under a named run
    touch(results / "marts" / "fct_orders" / "nightly" / times[0] / "b.json")
    assert prune(tmp_path, 3) == 2  # two runs of raw.orders deleted, fct_orders untouched
    assert run_times(results / "raw" / "orders", ".json") == times[2:]
    assert run_times(pages / "raw" / "orders", ".html") == times[2:]
    assert run_times(results / "marts" / "fct_orders", ".json") == times[:1]
    assert prune(tmp_path, 0) == 4  # keep 0: everything goes, empty run folders too
    assert not (results / "raw" / "orders" / "__none__").exists()
    assert not (results / "marts" / "fct_orders" / "nightly").exists()
