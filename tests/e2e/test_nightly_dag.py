"""Real `airflow dags test` runs of customer_marts_nightly on generated data.

The published marts of a run on the small demo (the session's `published_demo`, run
in process) are checked against a monthly cohort triangle recomputed here with pandas
straight from the landing CSV files (a second method, written separately from the
SQL). The DAG then runs through Airflow on a copy of that warehouse (the session's
`dag_rerun`): the rerun publishes the same marts. A bad new file failing the run while
published.duckdb stays as it was is tests/e2e/test_scheduler.py's, under the real
scheduler."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from tests.conftest import (
    DEMO_AS_OF,
)

pytestmark = [pytest.mark.slow, pytest.mark.dbt_build]
AS_OF = DEMO_AS_OF.isoformat()
MARTS = ("marts.fct_orders", "marts.dim_customers", "marts.cohort_retention")


# Columns that record when a run happened rather than what the data says.
RUN_METADATA_COLUMNS = {"fitted_at"}


def mart_contents(path):
    """Every published mart's rows (without run-time metadata columns)."""
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_name, list(column_name order by column_index) from duckdb_columns() "
            "where schema_name = 'marts' group by table_name"
        ).fetchall()
        contents = {}
        for table, names in columns:
            kept = ", ".join(f'"{name}"' for name in names if name not in RUN_METADATA_COLUMNS)
            contents[table] = con.execute(
                f"select {kept} from marts.{table} order by all"
            ).fetchall()
        return contents


def pandas_monthly_triangle(landing) -> pd.DataFrame:
    orders = pd.concat(pd.read_csv(path) for path in sorted((landing / "orders").glob("*.csv")))
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], utc=True)
    orders = orders[
        (orders["status"] == "completed")
        & (orders["ordered_at"] < pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=1))
    ]
    orders["month"] = orders["ordered_at"].dt.tz_localize(None).dt.to_period("M")
    cohort = orders.groupby("customer_id")["month"].min().rename("cohort")
    orders = orders.join(cohort, on="customer_id")
    sizes = cohort.value_counts().rename("cohort_size")
    cells = (
        orders.groupby(["cohort", "month"])
        .agg(active_customers=("customer_id", "nunique"), revenue=("amount", "sum"))
        .reset_index()
        .join(sizes, on="cohort")
    )
    cells["period_number"] = (cells["month"] - cells["cohort"]).apply(lambda offset: offset.n)
    cells["retention_pct"] = 100.0 * cells["active_customers"] / cells["cohort_size"]
    cells["cohort_start"] = cells["cohort"].dt.start_time.dt.date
    return cells.set_index(["cohort_start", "period_number"]).sort_index()


def completed_orders(landing) -> pd.DataFrame:
    """The completed orders of the order files up to AS_OF, with their time `at` (UTC,
    naive) and `day`."""
    orders = pd.concat(pd.read_csv(path) for path in sorted((landing / "orders").glob("*.csv")))
    orders = orders[orders["status"] == "completed"].copy()
    orders["at"] = pd.to_datetime(orders["ordered_at"], utc=True).dt.tz_localize(None)
    orders["day"] = orders["at"].dt.normalize()
    return orders[orders["day"] <= pd.Timestamp(AS_OF)]


def pandas_monthly_retention(landing, window_days: int = 180, segment_of=None) -> pd.DataFrame:
    """Period retention by brute force: the set of active customers at every month
    boundary, straight from the order files (no spells, no boundary arithmetic).

    With `segment_of` (completed orders -> a Series of each customer's segment), one row
    per month and segment (column dimension_value); otherwise one row per month."""
    orders = completed_orders(landing)
    as_of = pd.Timestamp(AS_OF)
    first = orders.groupby("customer_id")["day"].min()
    if segment_of is None:
        segments = {"all": set(first.index)}
    else:
        segment = segment_of(orders)
        segments = {name: set(segment.index[segment == name]) for name in sorted(set(segment))}

    def active_at(boundary):
        # active at the start of `boundary`: a purchase on one of the W days before it
        bought = (orders["day"] >= boundary - pd.Timedelta(days=window_days)) & (
            orders["day"] < boundary
        )
        return set(orders.loc[bought, "customer_id"])

    rows = []
    for start in pd.date_range(orders["day"].min().replace(day=1), as_of, freq="MS"):
        end = min(start + pd.offsets.MonthBegin(1), as_of + pd.Timedelta(days=1))
        active_start, active_end = active_at(start), active_at(end)
        for name, members in segments.items():
            at_start, at_end = active_start & members, active_end & members
            arrived = at_end - at_start
            new = {customer for customer in arrived if start <= first[customer] < end}
            retained = len(at_start & at_end)
            rows.append(
                {
                    "period_start": start.date(),
                    "dimension_value": name,
                    "customers_start": len(at_start),
                    "customers_end": len(at_end),
                    "new_customers": len(new),
                    "reactivated_customers": len(arrived) - len(new),
                    "retained_customers": retained,
                    "lost_customers": len(at_start - at_end),
                    "retention_rate_pct": 100.0 * retained / len(at_start) if at_start else None,
                }
            )
    frame = pd.DataFrame(rows)
    if segment_of is None:
        return frame.drop(columns="dimension_value").set_index("period_start")
    return frame


def pandas_monthly_survey_scores(landing) -> pd.DataFrame:
    """Monthly NPS, CSAT and CES straight from the survey export files."""
    surveys = pd.concat(pd.read_csv(path) for path in sorted((landing / "surveys").glob("*.csv")))
    at = pd.to_datetime(surveys["responded_at"], utc=True).dt.tz_localize(None)
    surveys = surveys[at < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)]
    surveys["month"] = at.dt.to_period("M").dt.start_time.dt.date
    scores = surveys.groupby("month").agg(
        responses=("nps_score", "count"),
        promoters=("nps_score", lambda s: (s >= 9).sum()),
        detractors=("nps_score", lambda s: (s <= 6).sum()),
        csat_responses=("csat_score", "count"),
        csat_satisfied=("csat_score", lambda s: (s >= 4).sum()),
        ces_avg=("ces_score", "mean"),
    )
    p = scores["promoters"] / scores["responses"]
    d = scores["detractors"] / scores["responses"]
    scores["nps"] = 100 * (p - d)
    scores["nps_margin_of_error"] = (
        1.96 * ((p + d - (p - d) ** 2) / scores["responses"]) ** 0.5 * 100
    )
    scores["csat_pct"] = 100 * scores["csat_satisfied"] / scores["csat_responses"]
    return scores


def published_by_month(warehouse, sql: str) -> pd.DataFrame:
    """A query on the published file, indexed by its period_start as a date."""
    with duckdb.connect(str(warehouse / "published.duckdb"), read_only=True) as con:
        mart = con.execute(sql).df()
    mart["period_start"] = pd.to_datetime(mart["period_start"]).dt.date
    return mart.set_index("period_start")


@pytest.fixture(scope="module")
def first_run(published_demo):
    """The small demo's published warehouse (read only: the DAG runs below on copies)."""
    return published_demo


def test_published_triangle_matches_an_independent_pandas_computation(first_run, small_demo):
    expected = pandas_monthly_triangle(small_demo)
    with duckdb.connect(str(first_run / "published.duckdb"), read_only=True) as con:
        mart = con.execute(
            "select cohort_start, period_number, cohort_size, active_customers, retention_pct, "
            "revenue::double as revenue from marts.cohort_retention "
            "where grain = 'month' and dimension = 'overall'"
        ).df()
    mart["cohort_start"] = pd.to_datetime(mart["cohort_start"]).dt.date
    mart = mart.set_index(["cohort_start", "period_number"]).sort_index()
    active = mart[mart["active_customers"] > 0]
    assert len(active) == len(expected)
    assert (active.index == expected.index).all()
    assert (active["cohort_size"].to_numpy() == expected["cohort_size"].to_numpy()).all()
    assert (active["active_customers"].to_numpy() == expected["active_customers"].to_numpy()).all()
    # percentages are published to pct_decimals (4) places: off by at most 5e-5
    assert active["retention_pct"].to_numpy() == pytest.approx(
        expected["retention_pct"].to_numpy(), abs=5e-5
    )
    assert active["revenue"].to_numpy() == pytest.approx(expected["revenue"].to_numpy())
    # every cohort has a cell for each month up to December 2025, zero or not
    months = {
        cohort: 12 * (2025 - cohort.year) + 12 - cohort.month + 1
        for cohort in mart.index.get_level_values(0).unique()
    }
    assert mart.groupby(level=0).size().to_dict() == months


def test_published_monthly_retention_matches_a_brute_force_pandas_computation(
    first_run, small_demo
):
    expected = pandas_monthly_retention(small_demo)
    mart = published_by_month(
        first_run,
        "select period_start, customers_start, customers_end, new_customers, "
        "reactivated_customers, retained_customers, lost_customers, retention_rate_pct "
        "from marts.retention_by_period where grain = 'month' and dimension = 'overall' "
        "order by period_start",
    )
    assert list(mart.index) == list(expected.index)
    counts = [column for column in expected.columns if column != "retention_rate_pct"]
    assert (mart[counts].to_numpy() == expected[counts].to_numpy()).all()
    assert expected["reactivated_customers"].sum() > 0  # the demo data has comebacks
    rates = mart["retention_rate_pct"].to_numpy(dtype=float)
    # published to pct_decimals (4) places: off by at most 5e-5
    assert rates == pytest.approx(
        expected["retention_rate_pct"].to_numpy(dtype=float), nan_ok=True, abs=5e-5
    )


def test_published_monthly_nps_csat_ces_match_a_pandas_computation(first_run, small_demo):
    expected = pandas_monthly_survey_scores(small_demo)
    mart = published_by_month(
        first_run,
        "select period_start, responses, promoters, detractors, csat_responses, nps, "
        "nps_margin_of_error, csat_pct, ces_avg from marts.nps_by_period "
        "where grain = 'month' and dimension = 'overall' order by period_start",
    )
    assert list(mart.index) == list(expected.index)
    for column in ("responses", "promoters", "detractors", "csat_responses"):
        assert (mart[column].to_numpy() == expected[column].to_numpy()).all(), column
    # published to pct_decimals (4) places, ces_avg to quantity_decimals (6): off by at
    # most half of the last place
    rounding = {"nps": 5e-5, "nps_margin_of_error": 5e-5, "csat_pct": 5e-5, "ces_avg": 5e-7}
    for column, half_unit in rounding.items():
        assert mart[column].to_numpy(dtype=float) == pytest.approx(
            expected[column].to_numpy(dtype=float), nan_ok=True, abs=half_unit
        ), column


def test_detractors_churn_more_than_promoters_in_the_demo_data(first_run):
    with duckdb.connect(str(first_run / "published.duckdb"), read_only=True) as con:
        rows = dict(
            con.execute(
                "select nps_category, churn_rate_pct from marts.survey_vs_behaviour"
            ).fetchall()
        )
    assert rows["detractor"] > rows["passive"] > rows["promoter"]


def test_published_file_has_marts_and_run_record(first_run, small_demo):
    with duckdb.connect(str(first_run / "published.duckdb"), read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in MARTS}
        runs = con.execute(
            "select status, logical_date::varchar from audit.pipeline_runs"
        ).fetchall()
        checks = dict(
            con.execute(
                "select layer, count(*) filter (status = 'failed') from audit.check_results "
                "group by layer"
            ).fetchall()
        )
        all_marts = {
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        }
    landed = sum(len(pd.read_csv(p)) for p in (small_demo / "orders").glob("*.csv"))
    assert counts["marts.fct_orders"] == landed
    assert counts["marts.dim_customers"] == 400  # every demo customer completes a first order
    assert counts["marts.cohort_retention"] > 0
    assert runs == [("success", AS_OF)]
    # the raw suites, dbt's data and unit tests and the mart suites all ran and passed
    assert checks == {"raw": 0, "dbt": 0, "marts": 0}
    # every mart of the BI contract is published
    assert {
        "fct_orders",
        "dim_customers",
        "segment_summary",
        "cohort_retention",
        "retention_by_period",
        "kpis_by_period",
        "customer_clv",
        "clv_model_fit",
        "clv_by_cohort",
        "clv_by_segment",
        "clv_validation",
        "fct_survey_responses",
        "nps_by_period",
        "nps_rolling_30d",
        "survey_vs_behaviour",
        "cac_by_channel",
        "ltv_cac_by_channel",
        "payback_by_channel",
        "churn_value_by_period",
        "fct_order_lines",
        "dim_products",
        "order_reconciliation",
    } == all_marts


def test_every_model_and_published_column_is_described_in_the_dbt_docs(first_run):
    """The published docs site: every model of the project has a description that
    states its grain, and every column of every built model and seed (the catalog: what
    is really in the database) has a description."""
    docs = first_run / "docs"
    manifest = json.loads((docs / "manifest.json").read_text())
    catalog = json.loads((docs / "catalog.json").read_text())
    nodes = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["package_name"] == "customer_marts" and node["resource_type"] in ("model", "seed")
    }
    assert len(nodes) >= 20
    undocumented = [uid for uid, node in nodes.items() if len(node["description"].strip()) < 20]
    assert undocumented == []
    missing = [
        f"{uid}.{column.lower()}"
        for uid, entry in catalog["nodes"].items()
        if uid in nodes
        for column in entry["columns"]
        if not nodes[uid]["columns"].get(column.lower(), {}).get("description", "").strip()
    ]
    assert missing == []
    marts = [uid for uid in nodes if nodes[uid]["schema"] == "marts"]
    assert marts and all(uid in catalog["nodes"] for uid in marts)
    grains = [uid for uid in marts if "one row per" not in nodes[uid]["description"].lower()]
    assert grains == []


def test_rerun_is_idempotent(first_run, dag_rerun):
    # the DAG ran on a copy of first_run: the same landing files and as-of date again
    warehouse = dag_rerun["warehouse"]
    assert dag_rerun["returncode"] == 0, dag_rerun["log"]
    assert mart_contents(warehouse / "published.duckdb") == mart_contents(
        first_run / "published.duckdb"
    )
    # the DAG's run published them, and its record names the Airflow run and as-of date
    with duckdb.connect(str(warehouse / "published.duckdb"), read_only=True) as con:
        runs = con.execute(
            "select status, logical_date::varchar, airflow_run_id is not null "
            "from audit.pipeline_runs order by started_at"
        ).fetchall()
        suites = con.execute(
            "select distinct runs.airflow_run_id is not null, checks.suite "
            "from audit.check_results as checks join audit.pipeline_runs as runs using (run_id) "
            "where checks.layer = 'dbt' order by all"
        ).fetchall()
    assert runs == [("success", AS_OF, False), ("success", AS_OF, True)]
    # dbt's unit tests ran in the first build (a full one) and not in the rerun's: its
    # code is the code the first build tested (its data tests ran in both)
    assert suites == [
        (False, "dbt data tests"),
        (False, "dbt unit tests"),
        (True, "dbt data tests"),
    ]
