"""The CLV suites of the Great Expectations gate on real DuckDB tables: values out of
range fail the gate, a fit that did not converge only warns."""

from __future__ import annotations

from datetime import date

from customer_marts.gate.validate import run_suites
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import connect

CLV_SUITES = ("marts.customer_clv", "marts.clv_model_fit")


def test_clv_values_out_of_range_fail_and_non_convergence_warns(settings):
    with connect(settings.build_db) as con:
        ensure_schema(con)
        con.execute("create schema marts")
        # p_alive 1.5 and clv_12m -1 are impossible; the rest is in range
        con.execute(
            """
            create table marts.customer_clv as
            select *, 0.0 as annual_value, 0 as purchases_per_year,
                1.0 as expected_lifetime_years, 0.1 as expected_purchases_30d,
                0.2 as expected_purchases_90d, 20.0 as expected_avg_order_value,
                0.0 as expected_purchases_365d_low, 0.0 as clv_12m_low,
                50.0 as clv_percentile
            from (values
                ('a', 0.5, 10.0, 0.0, 100.0, 1.0),
                ('b', 1.5, -1.0, 5.0, 50.0, 0.2)
            ) as t(customer_id, p_alive, clv_12m, clv_simple, historic_clv,
                expected_purchases_365d)
            """
        )
        con.execute(
            """
            create table marts.clv_model_fit as
            select
                'bg_nbd' as model,
                unnest(['r', 'alpha', 'a', 'b', 'p', 'q', 'gamma']) as parameter,
                1.0 as value,
                0.1 as std_error,
                'lowest holdout error' as selection_reason,
                false as converged
            """
        )
    results = [
        r for r in run_suites(settings, "marts", date(2025, 1, 1), "test") if r.suite in CLV_SUITES
    ]
    statuses = {(r.suite, r.check): r.status for r in results}
    expected = {
        ("marts.customer_clv", "expect_column_values_to_be_between(p_alive)"): "failed",
        ("marts.customer_clv", "expect_column_values_to_be_between(clv_12m)"): "failed",
        ("marts.clv_model_fit", "expect_column_values_to_be_in_set(converged)"): "warned",
    }
    assert {key: statuses.pop(key) for key in expected} == expected
    assert statuses and set(statuses.values()) == {"passed"}, statuses
