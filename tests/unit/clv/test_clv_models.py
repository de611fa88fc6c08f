"""BG/NBD, MBG/NBD and Pareto/NBD in customer_marts.clv on the CDNOW 1/10 sample against
the published estimates and lifetimes 0.11.3 (a test-only dependency, written
independently), their standard errors against a finite-difference Hessian of lifetimes'
likelihoods, and the 95 % intervals' coverage on data simulated from known parameters."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from customer_marts.clv.fitting import LOG_LIKELIHOODS, Z_95, fit_purchase_model
from customer_marts.clv.models import (
    BG_NBD,
    MBG_NBD,
    PARETO_NBD,
    PURCHASE_MODELS,
    Counts,
    _in_order,
    distinct,
    pareto_nbd_log_likelihood,
)
from customer_marts.clv.predictions import expected_purchases, p_alive

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports the deprecated pkg_resources
    import lifetimes
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

DATASETS = Path(lifetimes.__file__).parent / "datasets"
CALIBRATION_END = pd.Timestamp("1997-09-30")
HOLDOUT_END = pd.Timestamp("1998-06-30")
# Fader, Hardie & Lee (2005), "Counting your customers the easy way", and the Pareto/NBD
# estimates they report for the same data, as published (to 2 decimals, or 3 s.f.).
PUBLISHED = {
    BG_NBD: {"r": "0.243", "alpha": "4.41", "a": "0.793", "b": "2.43"},
    PARETO_NBD: {"r": "0.55", "alpha": "10.58", "s": "0.61", "beta": "11.67"},
}
FITTERS = {
    BG_NBD: BetaGeoFitter,
    MBG_NBD: ModifiedBetaGeoFitter,
    PARETO_NBD: ParetoNBDFitter,
}


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    """The calibration/holdout summary of the raw CDNOW sample, built here (lifetimes'
    calibration_and_holdout_data breaks on current pandas): purchases per distinct day,
    weeks, calibration to 1997-09-30 and holdout to 1998-06-30 (39 weeks each)."""
    raw = pd.read_csv(
        DATASETS / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer", "id", "date", "cds", "amount"],
        dtype={"date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"])
    days = raw.groupby(["id", "date"], as_index=False)["amount"].sum()
    calibration = days[days["date"] <= CALIBRATION_END].groupby("id")["date"]
    first, last, count = calibration.min(), calibration.max(), calibration.size()
    holdout = days[(days["date"] > CALIBRATION_END) & (days["date"] <= HOLDOUT_END)]
    x_star = holdout.groupby("id").size().reindex(first.index, fill_value=0)
    return {
        "customer": first.index.to_numpy(),
        "x": (count - 1).to_numpy(float),
        "t_x": ((last - first).dt.days / 7).to_numpy(),
        "T": ((CALIBRATION_END - first).dt.days / 7).to_numpy(),
        "x_star": x_star.to_numpy(float),
    }


@pytest.fixture(scope="module")
def fits(cdnow):
    return {
        model: fit_purchase_model(model, cdnow["x"], cdnow["t_x"], cdnow["T"])
        for model in PURCHASE_MODELS
    }


def test_our_summary_equals_the_shipped_cdnow_summary(cdnow):
    # lifetimes ships FHL's summary (t_x and T rounded to 2 decimals)
    shipped = pd.read_csv(DATASETS / "cdnow_customers_summary.csv")
    assert len(cdnow["x"]) == len(shipped) == 2357
    np.testing.assert_array_equal(cdnow["x"], shipped["frequency"])
    np.testing.assert_allclose(cdnow["t_x"], shipped["recency"], atol=0.005)
    np.testing.assert_allclose(cdnow["T"], shipped["T"], atol=0.005)


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_cdnow_fit_reproduces_the_published_estimates(fits, model):
    fit = fits[model]
    assert fit.converged, fit.message
    for name, published in PUBLISHED[model].items():
        digits = len(published.split(".")[1])
        significant = len(published.replace(".", "").lstrip("0"))
        # as many digits as published: 3 s.f., or the 2 decimals the Pareto/NBD values have
        shown = f"{fit.params[name]:.{significant}g}" if significant >= 3 else None
        assert shown == published or round(fit.params[name], digits) == float(published), (
            name,
            fit.params[name],
        )


@pytest.mark.parametrize("model", PURCHASE_MODELS)
def test_log_likelihoods_equal_lifetimes_formulas(fits, cdnow, model):
    x, t_x, T = cdnow["x"], cdnow["t_x"], cdnow["T"]
    fit = fits[model]
    params = np.array(fit.values())
    ones = np.ones_like(x)
    if model == PARETO_NBD:  # a sum over customers, natural parameters
        theirs = -ParetoNBDFitter._negative_log_likelihood(params, x, t_x, T, ones, 0.0)
    else:  # a mean over customers, log-parameters
        theirs = -FITTERS[model]._negative_log_likelihood(np.log(params), x, t_x, T, ones, 0.0)
        theirs *= len(x)
    assert fit.log_likelihood == pytest.approx(theirs, rel=1e-10)


def test_mbg_nbd_matches_lifetimes_fit_on_the_same_inputs(fits, cdnow):
    theirs = ModifiedBetaGeoFitter().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fits[MBG_NBD].converged
    np.testing.assert_allclose(fits[MBG_NBD].values(), theirs.params_.to_numpy(), rtol=1e-3)


def test_pareto_nbd_maximum_is_at_least_lifetimes(fits, cdnow):
    x, t_x, T = cdnow["x"], cdnow["t_x"], cdnow["T"]
    theirs = ParetoNBDFitter().fit(x, t_x, T)
    at_theirs = pareto_nbd_log_likelihood(tuple(theirs.params_), x, t_x, T).sum()
    assert fits[PARETO_NBD].log_likelihood >= at_theirs - 1e-6
    np.testing.assert_allclose(fits[PARETO_NBD].values(), theirs.params_.to_numpy(), rtol=1e-2)


@pytest.mark.parametrize("model", PURCHASE_MODELS)
def test_holdout_predictions_equal_lifetimes_on_the_same_inputs(fits, cdnow, model):
    x, t_x, T = cdnow["x"], cdnow["t_x"], cdnow["T"]
    fit = fits[model]
    theirs = FITTERS[model]()
    theirs.params_ = pd.Series(dict(fit.params))
    for weeks in (1.0, 13.0, 39.0):
        np.testing.assert_allclose(
            expected_purchases(fit.values(), weeks, x, t_x, T, model),
            theirs.conditional_expected_number_of_purchases_up_to_time(weeks, x, t_x, T),
            rtol=1e-6,
        )
    ours_alive = p_alive(fit.values(), x, t_x, T, model)
    np.testing.assert_allclose(
        ours_alive, theirs.conditional_probability_alive(x, t_x, T), rtol=1e-6, atol=1e-12
    )


def _lifetimes_total_log_likelihood(model: str, x, t_x, T):
    ones = np.ones_like(x)
    if model == PARETO_NBD:
        return lambda theta: -ParetoNBDFitter._negative_log_likelihood(theta, x, t_x, T, ones, 0)
    fitter = FITTERS[model]
    return lambda theta: (
        -fitter._negative_log_likelihood(np.log(theta), x, t_x, T, ones, 0) * len(x)
    )


@pytest.mark.parametrize("model", PURCHASE_MODELS)
def test_standard_errors_match_a_finite_difference_hessian(fits, cdnow, model):
    # second method: the Hessian of lifetimes' log-likelihood in the natural parameters by
    # central second differences (relative steps), inverted
    fit = fits[model]
    theta = np.array(fit.values())
    total = _lifetimes_total_log_likelihood(model, cdnow["x"], cdnow["t_x"], cdnow["T"])
    k = len(theta)
    h = 1e-3 * theta
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            hessian[i, j] = (
                total(theta + ei + ej)
                - total(theta + ei - ej)
                - total(theta - ei + ej)
                + total(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    expected = np.sqrt(np.diag(np.linalg.inv(-hessian)))
    np.testing.assert_allclose(list(fit.std_errors().values()), expected, rtol=1e-2)
    # and the 95 % intervals bracket the estimate, on the log scale
    for name, (low, high) in fit.intervals().items():
        assert 0 < low < fit.params[name] < high
        assert np.log(high / low) / 2 == pytest.approx(
            Z_95 * fit.std_errors()[name] / fit.params[name], rel=1e-9
        )


def test_aic_and_bic_by_hand(fits):
    fit = fits[BG_NBD]
    assert fit.aic == pytest.approx(2 * 4 - 2 * fit.log_likelihood)
    assert fit.bic == pytest.approx(4 * np.log(2357) - 2 * fit.log_likelihood)


# ---------------------------------------------------------------- simulation


def simulate(model: str, params: tuple[float, ...], n: int, rng) -> tuple[np.ndarray, ...]:
    """(x, t_x, T) drawn from `model` with known parameters, in continuous time.

    Purchases are a Poisson process with rate lambda ~ Gamma(r, rate alpha); given N events
    in (0, L], the x-th event is at L times the x-th of N uniform order statistics
    ~ L Beta(x, N - x + 1). BG/NBD: after each repeat purchase the customer drops out with
    probability p ~ Beta(a, b) (repeat purchases before dropping out ~ Geometric(p) on
    1, 2, ...); MBG/NBD: also right after the first (Geometric(p) - 1). Pareto/NBD:
    a lifetime ~ Exponential(mu), mu ~ Gamma(s, rate beta); purchases until min(lifetime, T).
    """
    T = rng.uniform(1.0, 52.0, n)
    r, alpha = params[:2]
    rate = rng.gamma(r, 1 / alpha, n)
    if model == PARETO_NBD:
        s, beta = params[2:]
        lifetime = rng.exponential(1 / rng.gamma(s, 1 / beta, n))
        observed = np.minimum(lifetime, T)
        x = rng.poisson(rate * observed)
        t_x = np.where(x > 0, observed * rng.beta(np.maximum(x, 1), 1), 0.0)
        return x.astype(float), t_x, T
    a, b = params[2:]
    events = rng.poisson(rate * T)
    limit = rng.geometric(rng.beta(a, b, n)) - (1 if model == MBG_NBD else 0)
    x = np.minimum(events, limit)
    t_x = np.zeros(n)
    repeat = x > 0
    t_x[repeat] = T[repeat] * rng.beta(x[repeat], events[repeat] - x[repeat] + 1)
    return x.astype(float), t_x, T


TRUTH = {
    BG_NBD: (0.8, 6.0, 0.6, 3.0),
    MBG_NBD: (0.8, 6.0, 0.6, 3.0),
    PARETO_NBD: (0.8, 6.0, 0.7, 20.0),
}


def coverage(model: str, datasets: int, customers: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    covered = np.zeros(4)
    for _ in range(datasets):
        x, t_x, T = simulate(model, TRUTH[model], customers, rng)
        fit = fit_purchase_model(model, x, t_x, T)
        assert fit.converged, fit.message
        intervals = fit.intervals()
        covered += [
            low <= true <= high
            for (low, high), true in zip(intervals.values(), TRUTH[model], strict=True)
        ]
    return covered


def coverage_bounds(datasets: int) -> tuple[int, int]:
    # 95 % intervals: the count covering the truth is Binomial(datasets, 0.95) when they
    # are right; accept its central 99.9 % (a 1-in-1000 false alarm per parameter)
    return int(binom.ppf(0.0005, datasets, 0.95)), int(binom.ppf(0.9995, datasets, 0.95))


def test_bg_nbd_intervals_cover_the_truth_in_95_percent_of_200_simulated_fits():
    low, high = coverage_bounds(200)
    covered = coverage(BG_NBD, datasets=200, customers=2_000, seed=7)
    assert ((covered >= low) & (covered <= high)).all(), (covered, low, high)


@pytest.mark.slow
@pytest.mark.parametrize("model", [MBG_NBD, PARETO_NBD])
def test_other_models_intervals_cover_the_truth_in_95_percent_of_100_simulated_fits(model):
    low, high = coverage_bounds(100)
    covered = coverage(model, datasets=100, customers=2_000, seed=8)
    assert ((covered >= low) & (covered <= high)).all(), (covered, low, high)


@pytest.mark.parametrize("model", PURCHASE_MODELS)
def test_weighted_combinations_give_the_per_customer_likelihood(model):
    # the fit sums over distinct (x, t_x, T) with counts; a second method: every customer
    rng = np.random.default_rng(1)
    x, t_x, T = simulate(model, TRUTH[model], 3_000, rng)
    t_x, T = np.floor(t_x), np.floor(T)  # whole units: repeated combinations
    fit = fit_purchase_model(model, x, t_x, T)
    counts = Counts.build(x, t_x, T, None)
    assert len(counts.x) < 0.7 * len(x) and counts.w.sum() == len(x)
    per_customer = LOG_LIKELIHOODS[model](fit.values(), x, t_x, T).sum()
    assert fit.log_likelihood == pytest.approx(per_customer, rel=1e-12)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([(0.0, 0.5), (0.0, 1.5), (1.0, 0.0)], True),
        ([(0.0, 1.5), (0.0, 0.5)], False),  # only the later column out of order
        ([(1.0, 0.0), (0.0, 9.0)], False),
        ([(0.0, 0.5), (0.0, 0.5)], True),  # equal rows
        ([(-0.0, 1.0), (0.0, 1.0)], True),  # -0.0 == 0.0
        ([(0.0, float("nan")), (0.0, 1.0)], False),  # NaN is never in order
        ([(3.0, 2.0)], True),
        ([], True),
    ],
)
def test_rows_already_in_order_are_recognised(rows, expected):
    columns = tuple(np.array(column, dtype=float) for column in zip(*rows, strict=True)) or (
        np.zeros(0),
        np.zeros(0),
    )
    assert _in_order(columns) is expected


@pytest.mark.parametrize(
    "kind",
    ["whole days", "float counts", "integers", "fractions", "negative", "negative zero"],
)
@pytest.mark.parametrize("in_order", [False, True], ids=["shuffled", "in order"])
def test_distinct_rows_counts_and_index_against_python_tuples(kind, in_order):
    # Whole numbers from 0 take one integer sort, anything else the lexicographic one,
    # or none where the rows are already in order; each must give Python's sorted set of
    # row tuples, their counts and each row's place.
    rng = np.random.default_rng(3)
    columns = [rng.integers(0, 40, 5_000).astype(float), rng.integers(0, 700, 5_000) * 1.0]
    if kind == "integers":
        columns = [column.astype(np.int64) for column in columns]
    elif kind == "fractions":
        columns[1] = columns[1] / 4
    elif kind == "negative":
        columns[0] = columns[0] - 20
    elif kind == "negative zero":
        columns[0][columns[0] == 0] = -0.0
    if in_order:
        order = np.lexsort(columns[::-1])
        columns = [column[order] for column in columns]
    (values, counts, index) = distinct(*columns)
    rows = list(zip(*(column.tolist() for column in columns), strict=True))
    expected = sorted(set(rows))
    assert list(zip(*(v.tolist() for v in values), strict=True)) == expected
    assert all(v.dtype == c.dtype for v, c in zip(values, columns, strict=True))
    tally = Counter(rows)
    assert counts.tolist() == [tally[row] for row in expected]
    place = {row: k for k, row in enumerate(expected)}
    assert index.tolist() == [place[row] for row in rows]
    if kind == "negative zero":  # the row's own value comes back, sign included
        zero = values[0] == 0
        assert np.signbit(values[0][zero]).all()
