"""Our BTYD inputs, fits and CLV models against lifetimes on the same data (agreement
checked before timing), and the timing of the CLV models a run fits."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from bench.floor import compiled_code, dbt_models
from bench.measuring import timed
from customer_marts.clv import uncertainty as clv_uncertainty
from customer_marts.clv.fitting import Fit, fit_bg_nbd, fit_gamma_gamma, fit_purchase_models
from customer_marts.clv.models import BG_NBD, INPUT_COLUMNS, PURCHASE_MODELS

log = logging.getLogger(__name__)

PARAMETER_RTOL = 1e-3  # our fit and lifetimes' agree within 0.1 %


@contextmanager
def _quiet_lifetimes() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources, pandas deprecations
        yield


def completed_orders(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The completed orders the BTYD inputs are computed from, as lifetimes takes them."""
    return con.execute(
        "select customer_id, order_date::timestamp as order_date, amount::double as amount "
        "from intermediate.int_orders_numbered where is_completed"
    ).df()


def lifetimes_summary(orders: pd.DataFrame, as_of: date) -> pd.DataFrame:
    with _quiet_lifetimes():
        from lifetimes.utils import summary_data_from_transaction_data

        return summary_data_from_transaction_data(
            orders,
            "customer_id",
            "order_date",
            monetary_value_col="amount",
            observation_period_end=pd.Timestamp(as_of),
            freq="D",
        )


def compare_summaries(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, float]:
    """Raise unless our BTYD inputs equal lifetimes' summary: the same customers,
    frequency, recency and T exactly, monetary value within 1e-9 (relative)."""
    ours = ours.set_index("customer_id").sort_index()
    theirs = theirs.sort_index()
    if list(ours.index) != list(theirs.index):
        raise AssertionError(f"customers differ: {len(ours)} ours, {len(theirs)} lifetimes")
    for mine, other in (("frequency", "frequency"), ("recency_days", "recency"), ("t_days", "T")):
        differ = int((ours[mine].to_numpy(float) != theirs[other].to_numpy(float)).sum())
        if differ:
            raise AssertionError(f"{mine} differs from lifetimes' {other} for {differ} customers")
    money = ours["monetary_value"].to_numpy(float)
    expected = theirs["monetary_value"].to_numpy(float)
    worst = float(np.max(np.abs(money - expected) / np.maximum(np.abs(expected), 1e-12)))
    if worst > 1e-9:
        raise AssertionError(f"monetary_value differs from lifetimes' by up to {worst:.2e}")
    return {"customers": len(ours), "monetary_max_rel_diff": worst}


BTYD_COLUMNS = ", ".join(("customer_id", *INPUT_COLUMNS))


def btyd_summary_vs_lifetimes(build_db: Path, target: Path, as_of: date) -> dict[str, Any]:
    """Our SQL BTYD inputs against lifetimes' summary_data_from_transaction_data, both from
    the same completed orders held in memory (a DuckDB table; a DataFrame), compared
    before they are timed.

    Ours is `int_customers_summarised_for_clv`'s compiled SQL, asked for the columns
    lifetimes computes (customer, frequency, recency, T, monetary value; DuckDB drops
    the model's other aggregates), fetched as a DataFrame as lifetimes returns one.
    """
    node = next(n for n in dbt_models(target) if n["name"] == "int_customers_summarised_for_clv")
    sql = f"select {BTYD_COLUMNS} from ({compiled_code(target, node)})"
    with duckdb.connect(str(build_db), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        orders = completed_orders(con)
        seconds_ours, summary, runs_ours = timed(lambda: con.execute(sql).df())
    seconds_theirs, expected, runs_theirs = timed(lambda: lifetimes_summary(orders, as_of))
    agreement = compare_summaries(summary, expected)
    return {
        "orders": len(orders),
        **agreement,
        "ours_seconds": seconds_ours,
        "lifetimes_seconds": seconds_theirs,
        "speedup": seconds_theirs / seconds_ours,
        "ours_runs": len(runs_ours),
        "lifetimes_runs": len(runs_theirs),
    }


def btyd_inputs(build_db: Path) -> tuple[np.ndarray, ...]:
    """(frequency, recency, T, monetary value) of the run's customers, as floats."""
    with duckdb.connect(str(build_db), read_only=True) as con:
        data = con.execute(
            "select frequency, recency_days, t_days, monetary_value "
            "from intermediate.int_customers_summarised_for_clv"
        ).fetchnumpy()
    return tuple(np.asarray(data[name], float) for name in data)


def lifetimes_fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m: np.ndarray):
    """lifetimes' BetaGeoFitter and GammaGammaFitter on the same day-level inputs.

    On the raw amounts (a mean spend of ~60) lifetimes' Gamma-Gamma fit stops with a
    ConvergenceError (BFGS precision loss, as docs/clv.md notes), so it
    gets the amounts divided by their mean, as ours rescales internally; p and q do not
    change with the unit of money and its scale v is multiplied back.
    """
    with _quiet_lifetimes():
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        repeat = x > 0
        unit = float(m[repeat].mean())
        spend = GammaGammaFitter().fit(x[repeat], m[repeat] / unit)
        spend.params_["v"] *= unit
        return BetaGeoFitter().fit(x, t_x, T), spend


def our_fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m: np.ndarray) -> tuple[Fit, ...]:
    return fit_bg_nbd(x, t_x, T), fit_gamma_gamma(x, m)


def compare_fits(ours: tuple[Fit, ...], theirs: tuple) -> float:
    """The largest relative difference between our parameters and lifetimes'; raise if
    it exceeds PARAMETER_RTOL (or a fit did not converge)."""
    worst = 0.0
    for fit, fitter in zip(ours, theirs, strict=True):
        if not fit.converged:
            raise AssertionError(f"our {fit.model} fit did not converge: {fit.message}")
        mine = np.array(fit.values())
        other = fitter.params_.to_numpy(float)
        worst = max(worst, float(np.max(np.abs(mine - other) / np.abs(other))))
    if worst > PARAMETER_RTOL:
        raise AssertionError(f"parameters differ from lifetimes' by up to {worst:.2e}")
    return worst


def clv_fit_vs_lifetimes(build_db: Path) -> dict[str, Any]:
    """Our BG/NBD + Gamma-Gamma fit against lifetimes' fitters on the same inputs."""
    x, t_x, T, m = btyd_inputs(build_db)
    seconds_ours, fits, runs_ours = timed(lambda: our_fit(x, t_x, T, m))
    seconds_theirs, fitters, runs_theirs = timed(lambda: lifetimes_fit(x, t_x, T, m), repeats=3)
    worst = compare_fits(fits, fitters)
    return {
        "customers": len(x),
        "parameters_max_rel_diff": worst,
        "ours_seconds": seconds_ours,
        "lifetimes_seconds": seconds_theirs,
        "speedup": seconds_theirs / seconds_ours,
        "ours_runs": len(runs_ours),
        "lifetimes_runs": len(runs_theirs),
    }


def clv_models_timing(build_db: Path) -> dict[str, Any]:
    """The CLV models a run fits and propagates, timed on one run's inputs (each figure
    the median of several runs when short): the single BG/NBD + Gamma-Gamma fit (what a
    run fitted before there were three models), the three purchase models + Gamma-Gamma
    (a run fits them twice: on all history and on the calibration window), and the 90 %
    intervals of the customers and of groups (every customer in one of eight groups)."""
    x, t_x, T, m = btyd_inputs(build_db)
    single, _, _ = timed(lambda: our_fit(x, t_x, T, m))
    three, fits, _ = timed(
        lambda: fit_purchase_models(PURCHASE_MODELS, x, t_x, T) + [fit_gamma_gamma(x, m)]
    )
    bg, spend = fits[0], fits[-1]
    if not (bg.converged and spend.converged):
        raise AssertionError("the BG/NBD or Gamma-Gamma fit did not converge")
    arguments = (
        BG_NBD,
        (bg.values(), bg.log_covariance),
        (spend.values(), spend.log_covariance),
        x,
        t_x,
        T,
        m,
    )
    customers, _, _ = timed(lambda: clv_uncertainty.propagate(*arguments))
    groups, _, _ = timed(
        lambda: clv_uncertainty.propagate(
            *arguments, groups={"group": (np.arange(len(x)) % 8)}, customers=False
        )
    )
    return {
        "customers": len(x),
        "draws": clv_uncertainty.DRAWS,
        "single_fit_seconds": single,
        "three_fits_seconds": three,
        "customer_intervals_seconds": customers,
        "group_intervals_seconds": groups,
        "converged": {fit.model: fit.converged for fit in fits},
        # a run: both fits of every model (all history, calibration) and both intervals
        "run_over_single_fit": (2 * three + customers + groups) / single,
    }
