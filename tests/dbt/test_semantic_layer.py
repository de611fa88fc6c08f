"""The semantic layer as an analyst uses it (docs/semantic-layer.md): `dbt parse` and
`mf query` with DBT_TARGET=published on a copy of the small demo's warehouse whose
build database is gone, so every number comes from published.duckdb. Each metric
equals the marts' own number (their KPI columns) and the same figure computed here
with SQL from the marts' rows."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from datetime import date

import duckdb
import pytest

from customer_marts.config import Settings
from tests.conftest import BIN, copy_warehouse

pytestmark = pytest.mark.dbt_build  # dbt and MetricFlow on a built warehouse: make test only
MONTHLY = ["revenue", "orders", "aov", "nps", "csat", "ces", "churn_rate", "retention_rate"]


@pytest.fixture(scope="module")
def analyst(published_demo, tmp_path_factory):
    """(the project copy, its environment, the published marts as a connection)."""
    root = tmp_path_factory.mktemp("semantic_layer")
    warehouse = copy_warehouse(published_demo, root / "warehouse")
    (warehouse / "build.duckdb").unlink()  # only the published file is left to read
    project = root / "dbt_project"
    shutil.copytree(
        Settings.from_env().dbt_project_dir,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    env = {
        **os.environ,
        "WAREHOUSE_DIR": str(warehouse),
        "DBT_TARGET": "published",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    subprocess.run(
        [str(BIN / "dbt"), "parse", "--profiles-dir", "."], cwd=project, env=env, check=True
    )
    assert (project / "target" / "semantic_manifest.json").exists()
    con = duckdb.connect(str(warehouse / "published.duckdb"), read_only=True)
    yield project, env, con
    con.close()


def mf_query(analyst, *args: str) -> list[dict[str, str]]:
    """`mf query <args>` in the project copy; its rows as written to --csv."""
    project, env, _ = analyst
    out = project / f"query-{len(list(project.glob('query-*.csv')))}.csv"
    result = subprocess.run(
        [str(BIN / "mf"), "query", *args, "--csv", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and out.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


def number(text: str) -> float | None:
    return None if text == "" else float(text)


@pytest.fixture(scope="module")
def monthly(analyst) -> dict[date, dict[str, float | None]]:
    """The monthly metrics of one `mf query`, by month."""
    rows = mf_query(analyst, "--metrics", ",".join(MONTHLY), "--group-by", "metric_time__month")
    return {
        date.fromisoformat(row["metric_time__month"][:10]): {
            name: number(row[name]) for name in MONTHLY
        }
        for row in rows
    }


def by_month(con, sql: str) -> dict[date, float | None]:
    return {
        month: None if value is None else float(value)
        for month, value in con.execute(sql).fetchall()
    }


def assert_equal(metric: dict[date, float | None], expected: dict[date, float | None], digits: int):
    """Equal month by month at the marts' published precision (`digits` decimals)."""
    assert expected, "no months to compare"
    for month, value in expected.items():
        got = metric.get(month)
        if value is None:
            assert got is None, month
        else:
            assert got is not None and round(got, digits) == pytest.approx(
                round(value, digits), abs=1e-9
            ), (
                month,
                got,
                value,
            )


def test_revenue_orders_and_aov_by_month(analyst, monthly):
    *_, con = analyst
    metric = {month: values["revenue"] for month, values in monthly.items()}
    # the marts' own numbers: kpis_by_period's monthly revenue, every month with an order
    assert_equal(
        metric,
        by_month(
            con,
            "select period_start, revenue from marts.kpis_by_period "
            "where grain = 'month' and orders > 0",
        ),
        2,
    )
    # a second method: completed orders' amounts summed by calendar month of order_date
    assert_equal(
        metric,
        by_month(
            con,
            "select date_trunc('month', order_date)::date, sum(amount) "
            "from marts.fct_orders where status = 'completed' group by 1",
        ),
        2,
    )
    assert_equal(
        {month: values["orders"] for month, values in monthly.items()},
        by_month(
            con,
            "select period_start, orders from marts.kpis_by_period "
            "where grain = 'month' and orders > 0",
        ),
        0,
    )
    assert_equal(
        {month: values["aov"] for month, values in monthly.items()},
        by_month(
            con,
            "select period_start, aov from marts.kpis_by_period "
            "where grain = 'month' and orders > 0",
        ),
        2,
    )
    assert sum(values["revenue"] or 0 for values in monthly.values()) == pytest.approx(
        float(
            con.execute(
                "select sum(amount) from marts.fct_orders where status = 'completed'"
            ).fetchone()[0]
        )
    )


def test_customers_and_clv(analyst):
    *_, con = analyst
    (row,) = mf_query(analyst, "--metrics", "customers,purchasing_customers,clv_12m")
    customers, mean_clv = con.execute(
        "select count(*), avg(clv_12m) from marts.dim_customers"
    ).fetchone()
    assert int(float(row["customers"])) == customers == 400  # the small demo's 400 customers
    assert int(float(row["purchasing_customers"])) == customers  # each has a completed order
    assert float(row["clv_12m"]) == pytest.approx(float(mean_clv), abs=1e-9)


def test_nps_csat_and_ces_by_month(analyst, monthly):
    *_, con = analyst
    overall = "from marts.nps_by_period where grain = 'month' and dimension = 'overall'"
    nps = {month: values["nps"] for month, values in monthly.items()}
    assert_equal(nps, by_month(con, f"select period_start, nps {overall}"), 4)
    # a second method: % promoters - % detractors of the responses, by response month
    assert_equal(
        nps,
        by_month(
            con,
            "select date_trunc('month', response_date)::date, "
            "100.0 * (count(*) filter (nps_score >= 9) - count(*) filter (nps_score <= 6)) "
            "/ count(nps_score) from marts.fct_survey_responses "
            "where nps_score is not null group by 1",
        ),
        4,
    )
    csat = {month: values["csat"] for month, values in monthly.items()}
    assert_equal(csat, by_month(con, f"select period_start, csat_pct {overall}"), 4)
    ces = {month: values["ces"] for month, values in monthly.items()}
    assert_equal(ces, by_month(con, f"select period_start, ces_avg {overall}"), 4)


def test_churn_and_retention_rate_by_month(analyst, monthly):
    *_, con = analyst
    months = "from marts.retention_by_period where grain = 'month' and dimension = 'overall'"
    churn = {month: values["churn_rate"] for month, values in monthly.items()}
    retention = {month: values["retention_rate"] for month, values in monthly.items()}
    assert_equal(churn, by_month(con, f"select period_start, churn_rate_pct {months}"), 4)
    assert_equal(retention, by_month(con, f"select period_start, retention_rate_pct {months}"), 4)
    # a second method: lost / customers at the start x 100 (NULL with nobody at the start)
    assert_equal(
        churn,
        by_month(
            con,
            f"select period_start, 100.0 * lost_customers / nullif(customers_start, 0) {months}",
        ),
        4,
    )
    assert any(value for value in churn.values())  # the demo does lose customers


def test_the_time_spine_is_not_published(analyst):
    *_, con = analyst
    schemas = {row[0] for row in con.execute("select schema_name from duckdb_tables()").fetchall()}
    assert schemas == {"marts", "audit"}
