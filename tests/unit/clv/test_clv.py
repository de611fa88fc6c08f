"""BG/NBD and Gamma-Gamma in customer_marts.clv against an independent implementation
(lifetimes 0.11.3, a test-only dependency) on the same day-level inputs, against data
simulated from known parameters, and against the properties the models must have."""

from __future__ import annotations

import warnings
from datetime import date, datetime

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from customer_marts.clv.fitting import Fit, fit_bg_nbd, fit_gamma_gamma
from customer_marts.clv.gamma_gamma import (
    GammaGammaData,
    expected_average_order_value,
    gamma_gamma_objective,
)
from customer_marts.clv.models import (
    BG_NBD,
    GAMMA_GAMMA,
    PARAMETERS,
    Counts,
    ParetoData,
    bg_nbd_log_likelihood,
    bg_nbd_objective,
    mbg_nbd_objective,
    pareto_nbd_objective,
)
from customer_marts.clv.predictions import (
    expected_purchases,
    expected_purchases_if_alive,
    p_alive,
    predict,
)
from customer_marts.clv.selection import fit_rows, parameters_in_use

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports the deprecated pkg_resources
    from lifetimes import BetaGeoFitter, GammaGammaFitter

TRUE_BG_NBD = (0.8, 60.0, 0.6, 3.0)  # r, alpha (days), a, b
TRUE_GAMMA_GAMMA = (6.0, 4.0, 50.0)  # p, q, gamma (currency)
RTOL = 1e-3  # 0.1 %


def simulate(n: int, seed: int, max_days: int = 730, whole_days: bool = True):
    """(x, t_x, T, m) drawn from BG/NBD + Gamma-Gamma with the TRUE_* parameters.

    BG/NBD: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); purchases are a Poisson
    process; after each repeat purchase the customer drops out with probability p (so the
    number of repeat purchases until dropout is Geometric(p)). Given N events in (0, T],
    the x-th event time is T times the x-th of N uniform order statistics,
    ~ T Beta(x, N - x + 1). Gamma-Gamma: nu ~ Gamma(q, rate gamma); the mean of x spends
    ~ Gamma(p, rate nu) is Gamma(p x, rate nu x). With whole_days, t_x and T are floored
    to whole days, as the SQL inputs are.
    """
    r, alpha, a, b = TRUE_BG_NBD
    p, q, gamma = TRUE_GAMMA_GAMMA
    rng = np.random.default_rng(seed)
    T = rng.uniform(0, max_days, n)
    rate = rng.gamma(r, 1 / alpha, n)
    dropout = rng.beta(a, b, n)
    events = rng.poisson(rate * T)
    x = np.minimum(events, rng.geometric(dropout))
    t_x = np.zeros(n)
    repeat = x > 0
    t_x[repeat] = T[repeat] * rng.beta(x[repeat], events[repeat] - x[repeat] + 1)
    nu = rng.gamma(q, 1 / gamma, n)
    m = np.zeros(n)
    m[repeat] = rng.gamma(p * x[repeat], 1 / (nu[repeat] * x[repeat]))
    if whole_days:
        t_x, T = np.floor(t_x), np.floor(T)
    return x.astype(float), t_x, T, m


@pytest.fixture(scope="module")
def days():
    return simulate(20_000, seed=11)


@pytest.fixture(scope="module")
def ours(days):
    x, t_x, T, m = days
    return fit_bg_nbd(x, t_x, T), fit_gamma_gamma(x, m)


@pytest.fixture(scope="module")
def theirs(days):
    """lifetimes on the same day-level values (not its freq='W' summaries)."""
    x, t_x, T, m = days
    bg = BetaGeoFitter().fit(x, t_x, T)
    repeat = x > 0
    gg = GammaGammaFitter().fit(x[repeat], m[repeat])
    return bg, gg


def test_bg_nbd_parameters_match_lifetimes(ours, theirs):
    bg, _ = ours
    assert bg.converged and bg.n_customers == 20_000
    np.testing.assert_allclose(bg.values(), theirs[0].params_.values, rtol=RTOL)


def test_gamma_gamma_parameters_match_lifetimes(ours, theirs, days):
    _, gg = ours
    assert gg.converged and gg.n_customers == int((days[0] > 0).sum())
    np.testing.assert_allclose(gg.values(), theirs[1].params_.values, rtol=RTOL)


def test_log_likelihoods_equal_lifetimes_formulas(ours, days):
    # lifetimes' negative log-likelihoods (mean over customers, written independently)
    # evaluated at our parameters on the unscaled day-level data.
    x, t_x, T, m = days
    bg, gg = ours
    theirs_bg = BetaGeoFitter._negative_log_likelihood(
        np.log(bg.values()), x, t_x, T, np.ones_like(x), 0.0
    )
    assert bg.log_likelihood == pytest.approx(-theirs_bg * len(x), rel=1e-10)
    repeat = x > 0
    theirs_gg = GammaGammaFitter._negative_log_likelihood(
        np.log(gg.values()), x[repeat], m[repeat], np.ones(repeat.sum()), 0.0
    )
    assert gg.log_likelihood == pytest.approx(-theirs_gg * repeat.sum(), rel=1e-10)


def test_our_maximum_is_at_least_lifetimes(ours, theirs, days):
    x, t_x, T, _ = days
    at_theirs = bg_nbd_log_likelihood(tuple(theirs[0].params_.values), x, t_x, T).sum()
    assert ours[0].log_likelihood >= at_theirs - 1e-6


@pytest.mark.parametrize("horizon", [30, 90, 365])
def test_predictions_match_lifetimes(ours, theirs, days, horizon):
    x, t_x, T, m = days
    bg, gg = ours
    np.testing.assert_allclose(
        p_alive(bg.values(), x, t_x, T),
        theirs[0].conditional_probability_alive(x, t_x, T),
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        expected_purchases(bg.values(), horizon, x, t_x, T),
        theirs[0].conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T),
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        expected_average_order_value(gg.values(), x, m),
        theirs[1].conditional_expected_average_profit(x, m),
        rtol=RTOL,
    )


def test_clv_12m_equals_a_sum_built_from_lifetimes_predictions(ours, theirs, days):
    # Second method: lifetimes' cumulative expected purchases at each month end
    # (m * 365 / 12 days), differenced, discounted monthly, times lifetimes' expected AOV.
    x, t_x, T, m = days
    bg, gg = ours
    margin, rate = 0.3, 0.10
    predicted = predict(bg.values(), gg.values(), x, t_x, T, m, margin, rate)
    model_bg, model_gg = theirs
    expected = np.zeros_like(x)
    previous = np.zeros_like(x)
    for month in range(1, 13):
        cumulative = model_bg.conditional_expected_number_of_purchases_up_to_time(
            month * 365 / 12, x, t_x, T
        )
        expected += (cumulative - previous) / (1 + rate / 12) ** month
        previous = cumulative
    expected *= np.asarray(model_gg.conditional_expected_average_profit(x, m)) * margin
    np.testing.assert_allclose(predicted["clv_12m"], expected, rtol=RTOL)
    np.testing.assert_allclose(
        predicted["expected_purchases_365d"],
        model_bg.conditional_expected_number_of_purchases_up_to_time(365, x, t_x, T),
        rtol=RTOL,
    )


def test_recovers_the_simulated_parameters():
    # 200k customers in continuous time: the estimates land near the truth (sampling
    # error of a few per cent at this size, so 10 % is a safe but meaningful bound).
    x, t_x, T, m = simulate(200_000, seed=3, whole_days=False)
    bg, gg = fit_bg_nbd(x, t_x, T), fit_gamma_gamma(x, m)
    np.testing.assert_allclose(bg.values(), TRUE_BG_NBD, rtol=0.10)
    np.testing.assert_allclose(gg.values(), TRUE_GAMMA_GAMMA, rtol=0.10)


@pytest.mark.parametrize(
    ("objective", "data", "point"),
    [
        (
            bg_nbd_objective,
            lambda x, t_x, T, m: Counts.build(x, t_x / 100, T / 100, None),
            [0.3, -0.5, 0.2, 1.1],
        ),
        (
            mbg_nbd_objective,
            lambda x, t_x, T, m: Counts.build(x, t_x / 100, T / 100, None),
            [0.3, -0.5, 0.2, 1.1],
        ),
        (
            pareto_nbd_objective,
            lambda x, t_x, T, m: ParetoData.build(Counts.build(x, t_x / 100, T / 100, None)),
            [0.3, -0.5, 0.2, 1.1],
        ),
        (
            gamma_gamma_objective,
            lambda x, t_x, T, m: GammaGammaData.build(x[x > 0], m[x > 0] / 50),
            [1.5, 1.2, 0.1],
        ),
    ],
)
def test_analytic_gradients_match_finite_differences(days, objective, data, point):
    prepared = data(*days)
    point = np.array(point)
    _, gradient = objective(point, prepared)
    numeric = approx_fprime(point, lambda theta: objective(theta, prepared)[0], 1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------- properties

GRID_X = np.repeat(np.arange(0, 40, 3.0), 60)
GRID_T = np.tile(np.linspace(0, 1500, 60), len(np.arange(0, 40, 3.0)))


@pytest.mark.parametrize(
    "params", [TRUE_BG_NBD, (0.05, 2.0, 0.01, 50.0), (20.0, 500.0, 30.0, 0.2), (1.0, 1.0, 1.2, 1.0)]
)
def test_p_alive_is_a_probability_and_rises_with_recency(params):
    x = np.where(GRID_T == 0, 0, GRID_X)
    for share in (0.0, 0.3, 0.7, 1.0):
        alive = p_alive(params, x, np.where(x > 0, share * GRID_T, 0), GRID_T)
        assert np.all((alive >= 0) & (alive <= 1))
    # same x and T, a later last purchase (t_x closer to T): strictly higher p_alive
    repeat = (GRID_X > 0) & (GRID_T > 0)
    x, T = GRID_X[repeat], GRID_T[repeat]
    earlier = p_alive(params, x, 0.2 * T, T)
    later = p_alive(params, x, 0.8 * T, T)
    assert np.all(later > earlier)
    assert np.all(p_alive(params, x, T, T) >= later)


@pytest.mark.parametrize(
    "params", [TRUE_BG_NBD, (0.05, 2.0, 0.01, 50.0), (20.0, 500.0, 30.0, 0.2), (1.0, 1.0, 1.2, 1.0)]
)
def test_clv_12m_is_non_negative_and_purchases_grow_with_the_horizon(params):
    x = np.where(GRID_T == 0, 0, GRID_X)
    t_x = np.where(x > 0, 0.5 * GRID_T, 0)
    m = np.where(x > 0, 80.0, 0.0)
    predicted = predict(params, TRUE_GAMMA_GAMMA, x, t_x, GRID_T, m)
    assert np.all(predicted["clv_12m"] >= 0)
    assert np.all(np.isfinite(predicted["clv_12m"]))
    assert np.all(predicted["expected_purchases_30d"] >= 0)
    assert np.all(predicted["expected_purchases_90d"] >= predicted["expected_purchases_30d"])
    assert np.all(predicted["expected_purchases_365d"] >= predicted["expected_purchases_90d"])


def test_expected_purchases_are_continuous_through_a_equals_one():
    # (a + b + x - 1) / (a - 1) x [...] is 0/0 at a = 1; the values on either side agree
    x, T = np.arange(0, 40.0), np.full(40, 300.0)
    at = {
        a: expected_purchases_if_alive((0.8, 60.0, a, 3.0), 365, x, T) for a in (0.999, 1.0, 1.001)
    }
    assert np.all(np.isfinite(at[1.0]))
    np.testing.assert_allclose(at[1.0], (at[0.999] + at[1.001]) / 2, rtol=1e-6)


def test_clv_12m_scales_with_margin_and_falls_with_the_discount_rate(ours, days):
    x, t_x, T, m = days
    bg, gg = ours
    base = predict(bg.values(), gg.values(), x, t_x, T, m, 1.0, 0.0)["clv_12m"]
    half = predict(bg.values(), gg.values(), x, t_x, T, m, 0.5, 0.0)["clv_12m"]
    discounted = predict(bg.values(), gg.values(), x, t_x, T, m, 1.0, 0.10)["clv_12m"]
    np.testing.assert_allclose(half, base / 2)
    assert np.all(discounted <= base)
    # undiscounted, clv_12m is the 365-day purchases times the expected order value
    np.testing.assert_allclose(
        base,
        expected_purchases(bg.values(), 365, x, t_x, T)
        * expected_average_order_value(gg.values(), x, m),
        rtol=1e-9,
    )


# ---------------------------------------------------------------- failure modes


def test_iteration_limit_is_reported_as_not_converged(days):
    x, t_x, T, m = days
    assert not fit_bg_nbd(x, t_x, T, max_iterations=1).converged
    assert not fit_gamma_gamma(x, m, max_iterations=1).converged


def test_an_unidentified_maximum_is_not_converged():
    # three customers (test_core_marts' A, B, C): the likelihood keeps rising as a -> 0
    # and b grows (nobody ever drops out), so there is no interior maximum to report
    fit = fit_bg_nbd(np.array([2.0, 0, 0]), np.array([87.0, 0, 0]), np.array([100.0, 85, 54]))
    assert not fit.converged
    assert "edge of its bounds" in fit.message or "not at a maximum" in fit.message


def test_no_repeat_purchases_gives_an_unfitted_result_not_an_error():
    fit = fit_bg_nbd(np.zeros(5), np.zeros(5), np.arange(5.0))
    assert not fit.converged and np.isnan(fit.values()).all() and fit.n_customers == 5
    assert "repeat purchases" in fit.message
    spend = fit_gamma_gamma(np.array([0.0, 1.0]), np.array([0.0, 10.0]))
    assert not spend.converged and spend.n_customers == 1


def test_invalid_inputs_are_named():
    with pytest.raises(ValueError, match=r"recency outside \[0, T\]"):
        fit_bg_nbd(np.array([1.0]), np.array([5.0]), np.array([3.0]))
    with pytest.raises(ValueError, match="frequency < 0"):
        fit_bg_nbd(np.array([-1.0]), np.array([0.0]), np.array([3.0]))


# ---------------------------------------------------------------- the published fit

AS_OF = date(2025, 6, 30)
FITTED_AT = datetime(2025, 7, 1, 2, 0)


def a_fit(model: str, converged: bool, scale: float = 1.0) -> Fit:
    names = PARAMETERS[model]
    return Fit(
        model=model,
        params={name: scale * (i + 1) for i, name in enumerate(names)},
        log_likelihood=-100.0 * scale,
        n_customers=10,
        converged=converged,
    )


def used(rows: list[dict], model: str) -> tuple[float, ...] | None:
    return parameters_in_use(rows, model)


def test_a_converged_fit_is_published_and_used():
    rows = fit_rows([a_fit(BG_NBD, True), a_fit(GAMMA_GAMMA, True)], [], AS_OF, FITTED_AT)
    assert len(rows) == 7 and all(row["is_used_for_predictions"] for row in rows)
    assert {row["time_unit"] for row in rows} == {"day"}
    assert used(rows, BG_NBD) == (1.0, 2.0, 3.0, 4.0)
    assert used(rows, GAMMA_GAMMA) == (1.0, 2.0, 3.0)


def test_non_convergence_falls_back_per_model_to_the_previous_converged_rows():
    previous = fit_rows(
        [a_fit(BG_NBD, True), a_fit(GAMMA_GAMMA, True)],
        [],
        date(2025, 6, 29),
        datetime(2025, 6, 30, 2, 0),
    )
    rows = fit_rows(
        [a_fit(BG_NBD, False, scale=7.0), a_fit(GAMMA_GAMMA, True, scale=3.0)],
        previous,
        AS_OF,
        FITTED_AT,
    )
    assert len(rows) == 4 + 4 + 3
    assert used(rows, BG_NBD) == (1.0, 2.0, 3.0, 4.0)  # yesterday's converged values
    assert used(rows, GAMMA_GAMMA) == (3.0, 6.0, 9.0)  # today's converged values
    failed = [row for row in rows if not row["converged"]]
    assert len(failed) == 4 and not any(row["is_used_for_predictions"] for row in failed)
    kept = [row for row in rows if row["model"] == BG_NBD and row["converged"]]
    assert {row["as_of_date"] for row in kept} == {date(2025, 6, 29)}
    # a second failure the next day still finds the converged rows (carried over again)
    again = fit_rows(
        [a_fit(BG_NBD, False, scale=5.0), a_fit(GAMMA_GAMMA, True)],
        rows,
        date(2025, 7, 1),
        FITTED_AT,
    )
    assert used(again, BG_NBD) == (1.0, 2.0, 3.0, 4.0) and len(again) == 11


def test_no_fallback_to_parameters_fitted_on_later_data():
    # a backfill for an earlier as-of date must not use a fit that saw later orders
    later = fit_rows([a_fit(BG_NBD, True)], [], date(2025, 12, 31), FITTED_AT)
    rows = fit_rows([a_fit(BG_NBD, False, scale=2.0)], later, AS_OF, FITTED_AT)
    assert len(rows) == 4 and used(rows, BG_NBD) == (2.0, 4.0, 6.0, 8.0)
    assert not any(row["converged"] for row in rows)


def test_an_unfitted_model_publishes_nulls_and_predicts_nothing():
    fit = fit_bg_nbd(np.zeros(3), np.zeros(3), np.array([1.0, 2.0, 3.0]))
    rows = fit_rows([fit], [], AS_OF, FITTED_AT)
    assert [row["value"] for row in rows] == [None] * 4
    assert rows[0]["log_likelihood"] is None and used(rows, BG_NBD) is None
