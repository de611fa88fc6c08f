"""Night after night on one warehouse, the published marts equal a full rebuild from
scratch of the same landing files and as-of date.

Twelve consecutive nightly runs (the pipeline's steps: start_run, ingest, dbt_build,
publish) replay the small demo's last weeks on one warehouse. The history before the first
night arrives on it as monthly exports; then each night brings that day's files, and on
chosen nights what real feeds bring:

- a late file: the orders (and line items) of a day three weeks back;
- a corrected re-delivery under the same name: an order's amount changed, an order
  moved to another customer, an order (and its lines) removed;
- status changes in a later file: a customer's first order, and another customer's
  repeat order, completed -> refunded (on the night that starts a month and a week);
- a night without any delivery: its files come with the next night's;
- a survey answer, delivered now, dated weeks back, for a customer's old order.

Some nights rebuild every model, by request or because what the build is made from
changed (customer_marts/transform/refresh.py): FULL_REFRESH=1 on a night whose model
file changed; the DAG's dbt_build task with its `full_refresh` param on a night whose
sources.yml changed (each such night's reasons must name both); the var
`churn_window_days` set to 150 for two nights (a full night, then an incremental one at
150), then back; and, after the last night, a backfill of an older date. Each night's
build state (audit.build_state) must say whether it rebuilt fully and why, and dbt's
run_results.json that it ran with `--full-refresh` exactly then.

After every incremental night each table of `marts` in `published.duckdb` (what BI
reads: every column but the fit's clock time, every row) must equal the same table
built from scratch: a fresh build database, the real ingest of the landing folder as it
is that night and a real `dbt run --full-refresh` for the same as-of date (with the same
project, configuration and vars). Both leave out what only reads: the quality gates
(they decide whether a build is published) and dbt's data and unit tests (the other
test suites' subject); publish copies the `marts` schema as it is, so the rebuild
compares its build database. A full night builds every model from its raw tables as the
rebuild would, so there the raw tables, ingested night after night, must equal a fresh
ingest's (every column but the loading run's id). A difference fails naming the night,
the table, the row's key and each differing column with both values.

Cost (2 cores, shared): about 30 s of CPU an incremental night (its build and the
rebuild; the CLV fits cost most), half that a full night; the suite runs this file
first (tests/conftest.py LONGEST_FILES).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from customer_marts.config import PROJECT_ROOT, Settings, config_dir
from customer_marts.ingest.run import ingest
from customer_marts.runs import pipeline
from customer_marts.transform.runner import run_dbt
from tests.conftest import DBT_TESTS_LEFT_OUT, airflow_env, write_csv
from tests.e2e.published_tables import (
    declared_keys,
    keyed_differences,
    schema_models,
    table_rows,
)

pytestmark = pytest.mark.dbt_build

FIRST_NIGHT = date(2025, 11, 26)  # the small demo runs to 2025-12-31
NIGHTS = 12  # to 2025-12-07: across a month's end and a week's end
CORRECTED_DAY, CORRECTION_NIGHT = date(2025, 11, 27), date(2025, 11, 30)
LATE_DAY, LATE_NIGHT = date(2025, 11, 7), date(2025, 11, 28)
STATUS_NIGHT = date(2025, 12, 1)  # the first night of a month and of a week
SILENT_NIGHT = date(2025, 12, 2)
SURVEY_NIGHT = date(2025, 12, 3)
# What makes a night rebuild every model (customer_marts/transform/refresh.py), and the
# reasons its build state must give; every other night is incremental. Two reasons share
# a night where both hold, so the build state must name both.
FORCED_NIGHT = date(2025, 11, 29)  # FULL_REFRESH=1, and a model file changed
CODE_NIGHT = FORCED_NIGHT  # (a Jinja comment: the same SQL)
PARAM_NIGHT = date(2025, 12, 4)  # the DAG's dbt_build task with its full_refresh param on,
SOURCES_NIGHT = PARAM_NIGHT  # and sources.yml changed (an explicit delimiter, the same rows)
CHURN_WINDOW_NIGHTS = (date(2025, 12, 5), date(2025, 12, 6))  # churn_window_days: 150
BACKFILL = date(2025, 12, 1)  # after the last night: an older night's date again
FULL_REBUILDS = {
    FIRST_NIGHT: "no earlier successful build in this build database",
    FORCED_NIGHT: (
        "asked for: FULL_REFRESH=1 (customer-marts run --full-refresh); "
        "the dbt project's code changed"
    ),
    PARAM_NIGHT: (
        "asked for: the DAG run's full_refresh param; "
        "the sources configuration changed (sources.yml, presets.yml)"
    ),
    CHURN_WINDOW_NIGHTS[0]: "the dbt vars changed (churn_window_days: 180 -> 150)",
    CHURN_WINDOW_NIGHTS[-1] + timedelta(days=1): (
        "the dbt vars changed (churn_window_days: 150 -> 180)"
    ),
}
# The DAG's dbt_build task as Airflow calls it, in a process of its own (Airflow's imports
# stay out of the test's): argv[1] is the run (start_run's return value).
DAG_TASK = r"""
import json, runpy, sys
dag = runpy.run_path(sys.argv[2])["customer_marts_nightly"]()
dag.get_task("dbt_build").python_callable(json.loads(sys.argv[1]), params={"full_refresh": True})
"""
LATE_ANSWER = "R9000001"
# folder: (file name prefix, date column); the spend is exported by month, the rest by day
SOURCES = {
    "orders": ("orders_", "ordered_at"),
    "order_lines": ("order_lines_", None),
    "surveys": ("responses_", "responded_at"),
    "survey_sends": ("sends_", "sent_at"),
    "marketing_spend": ("spend_", "spent_on"),
}

Files = dict[str, tuple[list[str], list[list[str]]]]  # landing path: header, rows


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def demo_days(demo: Path) -> dict[str, tuple[list[str], dict[date, list[list[str]]]]]:
    """{folder: (header, {day: the rows of that day})} of the demo's exports (a line
    item's day is its order's, the day of its file)."""
    days = {}
    for folder, (prefix, column) in SOURCES.items():
        by_day: dict[date, list[list[str]]] = defaultdict(list)
        header: list[str] = []
        for path in sorted((demo / folder).glob(f"{prefix}*.csv")):
            header, rows = read_csv(path)
            if column is None:
                by_day[date.fromisoformat(path.stem.removeprefix(prefix))] += rows
            for row in rows if column else ():
                by_day[date.fromisoformat(row[header.index(column)][:10])].append(row)
        days[folder] = (header, by_day)
    return days


def deliveries(demo: Path) -> dict[date, Files]:
    """What lands on each night: {night: {landing path: (header, rows)}} (a path already
    delivered is a re-delivery under the same name)."""
    days = demo_days(demo)
    nights = [FIRST_NIGHT + timedelta(days=n) for n in range(NIGHTS)]
    plan: dict[date, Files] = defaultdict(dict)
    for folder, (header, by_day) in days.items():
        prefix = SOURCES[folder][0]
        for day in sorted(by_day):
            late = day == LATE_DAY and folder in ("orders", "order_lines")
            if day < FIRST_NIGHT and not late:
                name, night = f"{folder}/{prefix}{day:%Y-%m}.csv", FIRST_NIGHT
            elif day <= nights[-1]:
                name, night = f"{folder}/{prefix}{day}.csv", LATE_NIGHT if late else day
            else:
                continue  # after the last night
            if night == SILENT_NIGHT:
                night += timedelta(days=1)
            plan[night].setdefault(name, (header, []))[1].extend(by_day[day])
    plan[CORRECTION_NIGHT].update(corrected_delivery(days))
    for night, folder, rows in (
        (STATUS_NIGHT, "orders", refunded_orders(days)),
        (SURVEY_NIGHT, "surveys", [late_answer(days)]),
    ):
        name = f"{folder}/{SOURCES[folder][0]}{night}.csv"
        plan[night].setdefault(name, (days[folder][0], []))[1].extend(rows)
    assert sorted(plan) == [night for night in nights if night != SILENT_NIGHT]
    return plan


def column(header: list[str], name: str):
    position = header.index(name)
    return lambda row: row[position]


def corrected_delivery(days: dict) -> Files:
    """CORRECTED_DAY's orders and lines again, corrected: the first order's amount is
    10.00 more, the second is another customer's, the third (and its lines) is gone."""
    header, by_day = days["orders"]
    orders = [list(row) for row in by_day[CORRECTED_DAY]]
    assert len(orders) >= 4, "the corrected day needs a few orders"
    amount, customer = header.index("amount"), header.index("customer_id")
    orders[0][amount] = str(Decimal(orders[0][amount]) + 10)
    other = next(row for row in history_orders(days) if row[customer] != orders[1][customer])
    orders[1][customer] = other[customer]
    removed = orders.pop(2)[header.index("order_id")]
    lines_header, lines_by_day = days["order_lines"]
    order_of = column(lines_header, "order_id")
    lines = [row for row in lines_by_day[CORRECTED_DAY] if order_of(row) != removed]
    assert len(lines) < len(lines_by_day[CORRECTED_DAY])
    return {
        f"orders/orders_{CORRECTED_DAY}.csv": (header, orders),
        f"order_lines/order_lines_{CORRECTED_DAY}.csv": (lines_header, lines),
    }


def history_orders(days: dict) -> list[list[str]]:
    """The demo's orders before the first night, oldest first."""
    header, by_day = days["orders"]
    return [row for day in sorted(by_day) if day < FIRST_NIGHT for row in by_day[day]]


def refunded_orders(days: dict) -> list[list[str]]:
    """Two October orders again, refunded: the first order of a customer who bought
    again, and a repeat order of another customer."""
    header, _ = days["orders"]
    customer, status = column(header, "customer_id"), column(header, "status")
    completed: dict[str, list[list[str]]] = defaultdict(list)
    for row in history_orders(days):
        if status(row) == "completed":
            completed[customer(row)].append(row)
    october = [
        rows
        for rows in completed.values()
        if len(rows) >= 3 and rows[0][header.index("ordered_at")].startswith("2025-10")
    ]
    assert len(october) >= 2, "the demo needs October customers who bought again"
    first, repeat = october[0][0], october[1][1]
    refunded = header.index("status")
    return [[*row[:refunded], "refunded", *row[refunded + 1 :]] for row in (first, repeat)]


def late_answer(days: dict) -> list[str]:
    """A survey answer two days after an October order, delivered on SURVEY_NIGHT."""
    orders_header, _ = days["orders"]
    ordered_at = column(orders_header, "ordered_at")
    status = column(orders_header, "status")
    order = next(
        row
        for row in history_orders(days)
        if ordered_at(row) >= "2025-10-10" and status(row) == "completed"
    )
    answered = date.fromisoformat(ordered_at(order)[:10]) + timedelta(days=2)
    values = {
        "response_id": LATE_ANSWER,
        "responded_at": f"{answered}T10:00:00Z",
        "customer_id": column(orders_header, "customer_id")(order),
        "nps_score": "3",
        "csat_score": "2",
        "channel": "email",
        "comment": "Answered late.",
    }
    return [values.get(name, "") for name in days["surveys"][0]]


def nightly_run(settings: Settings, night: date, extra_vars: dict | None, airflow: Path) -> str:
    """The pipeline's steps that write: start_run, ingest, dbt_build, publish (on
    PARAM_NIGHT dbt_build is the DAG's task with its full_refresh param, in an Airflow
    environment whose home is `airflow`); return the run's id. The gates only read and
    decide; a failing check would fail the run, not change a mart."""
    run = pipeline.start_run(settings, night)
    pipeline.ingest(settings, run)
    if night == PARAM_NIGHT:
        dag = PROJECT_ROOT / "dags" / "customer_marts_nightly.py"
        task = [sys.executable, "-c", DAG_TASK, json.dumps(run.to_dict()), str(dag)]
        done = subprocess.run(task, env=airflow_env(airflow), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        pipeline.build(settings, run, extra_vars)
    pipeline.publish(settings, run)
    return run.run_id


def changed_inputs(settings: Settings, night: date) -> None:
    """The night's change to the dbt project's code or the sources configuration (both
    copies of the project's own, for this test)."""
    if night == CODE_NIGHT:
        model = settings.dbt_project_dir / "models" / "marts" / "core" / "fct_orders.sql"
        model.write_text(model.read_text() + f"\n{{# changed as of {night} #}}\n")
    if night == SOURCES_NIGHT:
        sources = config_dir() / "sources.yml"
        text = sources.read_text()
        orders = "  orders:\n    folder: orders\n"
        assert text.count(orders) == 1
        sources.write_text(text.replace(orders, orders + '    delimiter: ","\n'))


def build_states(settings: Settings, run_id: str) -> tuple:
    """(full_refresh, refresh_reason) of the run's build state, and whether dbt's
    run_results.json says the build ran with --full-refresh."""
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        state = con.execute(
            "select full_refresh, refresh_reason, status from audit.build_state where run_id = ?",
            [run_id],
        ).fetchall()
    results = json.loads(
        (settings.warehouse_dir / "dbt" / "target" / "run_results.json").read_text()
    )
    return state, results["args"].get("full_refresh", False)


def changed_and_all_customers(settings: Settings) -> tuple[int, int]:
    """How many customers the night's incremental build recomputed, and how many there are."""
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return con.execute(
            "select (select count(*) from intermediate.int_customers_changed), "
            "(select count(distinct customer_id) from marts.fct_orders)"
        ).fetchone()


def ingested_from_scratch(settings: Settings, night: date) -> Path:
    """A fresh build database with the real ingest of the landing folder's files. The
    folder is reused, its database deleted, so that dbt reuses its saved parse
    (dbt/target) instead of parsing the project again."""
    settings.warehouse_dir.mkdir(exist_ok=True)
    for path in settings.warehouse_dir.glob("build.duckdb*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    ingest(settings.build_db, settings.landing_dir, f"rebuild-{night}")
    return settings.build_db


def rebuilt_from_scratch(settings: Settings, night: date, extra_vars: dict | None) -> Path:
    """A fresh build database of the landing folder's files, built by a full `dbt run`
    as of `night`."""
    ingested_from_scratch(settings, night)
    code, _ = run_dbt(settings, "run", night, "--full-refresh", extra_vars=extra_vars)
    assert code == 0, f"the rebuild as of {night} failed: see the dbt log above"
    return settings.build_db


def raw_differences(nightly: Path, ingested: Path) -> dict[str, list[str]]:
    """{raw table: its differences in words} between the night's build database, ingested
    night after night, and a fresh ingest of the same landing folder (every column but
    the run that loaded the row)."""
    with duckdb.connect() as con:
        con.execute(f"attach '{nightly}' as nightly (read_only)")
        con.execute(f"attach '{ingested}' as rebuild (read_only)")
        tables = [
            table_rows(con, name, stored_order=False, schema="raw")
            for name in ("nightly", "rebuild")
        ]
    assert sorted(tables[0]) == sorted(tables[1]) and len(tables[0]) == len(SOURCES)
    differences = {
        table: keyed_differences(tables[0][table], tables[1][table], None, ("nightly", "rebuild"))
        for table in tables[0]
    }
    return {table: lines for table, lines in differences.items() if lines}


def mart_differences(
    published: Path, rebuilt: Path, keys: dict, marts: set[str]
) -> dict[str, list[str]]:
    """{mart: its differences in words} between the published file and the rebuild;
    a mart of the project (`marts`) in neither is a difference too."""
    with duckdb.connect() as con:
        con.execute(f"attach '{published}' as nightly (read_only)")
        con.execute(f"attach '{rebuilt}' as rebuild (read_only)")
        nightly = table_rows(con, "nightly", stored_order=False, schema="marts")
        rebuild = table_rows(con, "rebuild", stored_order=False, schema="marts")
    differences = {
        table: [f"only in the {'rebuild' if table in rebuild else 'nightly build'}"]
        for table in set(nightly) ^ set(rebuild)
    }
    differences |= {table: ["in neither"] for table in marts - set(nightly) - set(rebuild)}
    for table in sorted(set(nightly) & set(rebuild)):
        lines = keyed_differences(
            nightly[table], rebuild[table], keys.get(table), ("nightly", "rebuild")
        )
        if lines:
            differences[table] = lines
    return differences


def scenario_reached(published: Path, night: date, plan: dict[date, Files]) -> None:
    """The night's special delivery is in what it published (the replay does what it says)."""
    with duckdb.connect(str(published), read_only=True) as con:

        def orders(ids) -> dict[str, tuple]:
            rows = con.execute(
                "select order_id, customer_id, amount, status from marts.fct_orders "
                "where list_contains(?, order_id)",
                [list(ids)],
            ).fetchall()
            return {row[0]: row[1:] for row in rows}

        if night == LATE_NIGHT:
            header, rows = plan[LATE_NIGHT][f"orders/orders_{LATE_DAY}.csv"]
            late = orders(row[header.index("order_id")] for row in rows)
            assert len(late) == len(rows) > 0
        if night == CORRECTION_NIGHT:
            name = f"orders/orders_{CORRECTED_DAY}.csv"
            header, rows = plan[CORRECTION_NIGHT][name]
            order_id = column(header, "order_id")
            found = orders(map(order_id, plan[CORRECTED_DAY][name][1]))  # as first delivered
            first, moved = rows[0], rows[1]
            assert found[order_id(first)][1] == Decimal(first[header.index("amount")])
            assert found[order_id(moved)][0] == moved[header.index("customer_id")]
            assert sorted(found) == sorted(map(order_id, rows))  # the removed one is gone
        if night == STATUS_NIGHT:
            header, rows = plan[STATUS_NIGHT][f"orders/orders_{STATUS_NIGHT}.csv"]
            ordered_at = column(header, "ordered_at")
            refunded = [row[0] for row in rows if not ordered_at(row).startswith(str(night))]
            assert [status for *_, status in orders(refunded).values()] == ["refunded"] * 2
        if night == SURVEY_NIGHT:
            (answers,) = con.execute(
                "select count(*) from marts.fct_survey_responses where response_id = ?",
                [LATE_ANSWER],
            ).fetchone()
            assert answers == 1


@pytest.fixture
def nightly(tmp_path, monkeypatch) -> Settings:
    """The settings of the replay, from the environment as the DAG's tasks read it: a
    landing folder and warehouse under tmp_path, copies of the dbt project and of the
    configuration folder (changed on CODE_NIGHT and SOURCES_NIGHT), no Parquet export.
    dbt's data and unit tests check rows and write none: they are left out of every
    build here (DBT_TESTS_LEFT_OUT), which halves the cost of each night."""
    project = tmp_path / "dbt_project"
    shutil.copytree(
        PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copytree(PROJECT_ROOT / "config", tmp_path / "config")
    for name, value in {
        "LANDING_DIR": tmp_path / "landing",
        "WAREHOUSE_DIR": tmp_path / "nightly",
        "DBT_PROJECT_DIR": project,
        "CUSTOMER_MARTS_CONFIG_DIR": tmp_path / "config",
        "EXPORT_PARQUET": "false",
        **DBT_TESTS_LEFT_OUT,
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("FULL_REFRESH", "RUN_DATE", "DBT_TARGET", "CUSTOMER_MARTS_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "landing").mkdir()
    return Settings.from_env()


def test_every_night_publishes_what_a_full_rebuild_from_scratch_builds(
    small_demo, nightly, tmp_path, monkeypatch
):
    plan = deliveries(small_demo)
    rebuild = replace(nightly, warehouse_dir=tmp_path / "rebuild")
    keys: dict[str, list[str]] = {}
    marts: set[str] = set()
    previous = (None, None)  # the last night's as-of date and run
    runs = [(night, False) for night in sorted(plan | {SILENT_NIGHT: {}})] + [(BACKFILL, True)]
    for night, backfill in runs:
        for relative, (header, rows) in ({} if backfill else plan.get(night, {})).items():
            write_csv(nightly.landing_dir / relative, header, rows)
        changed_inputs(nightly, night)
        extra_vars = {"churn_window_days": 150} if night in CHURN_WINDOW_NIGHTS else None
        if night == FORCED_NIGHT:
            monkeypatch.setenv("FULL_REFRESH", "1")
        run_id = nightly_run(nightly, night, extra_vars, tmp_path / "airflow_home")
        monkeypatch.delenv("FULL_REFRESH", raising=False)
        reason = FULL_REBUILDS.get(night)
        if backfill:
            reason = (
                f"the as-of date moved backwards ({previous[0]} -> {night}: the last "
                f"successful build, run {previous[1]}, was as of the later date)"
            )
        full = reason is not None
        if full:  # every model built from the night's raw tables: are they a fresh ingest's?
            differences = raw_differences(nightly.build_db, ingested_from_scratch(rebuild, night))
        else:
            rebuilt = rebuilt_from_scratch(rebuild, night, extra_vars)
            manifest = rebuilt.parent / "dbt" / "target" / "manifest.json"
            keys, marts = keys or declared_keys(manifest), marts or schema_models(manifest)
            differences = mart_differences(nightly.published_db, rebuilt, keys, marts)
        assert not differences, f"as of {night} the nightly build differs from a rebuild:\n" + (
            "\n".join(
                f"  {table} (key {', '.join(keys.get(table, ['the whole row']))}):\n"
                + "\n".join(f"    {line}" for line in lines)
                for table, lines in sorted(differences.items())
            )
        )
        if not backfill:
            scenario_reached(nightly.published_db, night, plan)
        # the build rebuilt fully exactly when it had to, saying why, and dbt did so
        assert build_states(nightly, run_id) == ([(full, reason, "success")], full), night
        if not full:  # recomputed only what the night changed, and something when files came
            changed, customers = changed_and_all_customers(nightly)
            assert changed < customers, (night, changed, customers)
            assert changed > 0 or not plan.get(night), night
        previous = (night, run_id)
