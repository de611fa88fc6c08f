"""The uncertainty of the CLV predictions (customer_marts.clv.uncertainty), the choice of
the purchase model and the published fit rows (customer_marts.clv), and the holdout
validation (customer_marts.clv.validation), each against a second computation: the
per-customer predictions recomputed with predict for every parameter draw, sums
and errors by hand in NumPy, and lifetimes' fitter on the calibration data."""

from __future__ import annotations

import warnings
from datetime import date, datetime

import numpy as np
import pytest

from customer_marts.clv import models as clv_models
from customer_marts.clv import uncertainty as clv_uncertainty
from customer_marts.clv import validation as clv_validation
from customer_marts.clv.fitting import (
    Fit,
    fit_bg_nbd,
    fit_gamma_gamma,
    fit_purchase_model,
    fit_purchase_models,
)
from customer_marts.clv.models import (
    BG_NBD,
    GAMMA_GAMMA,
    MBG_NBD,
    PARAMETERS,
    PARETO_NBD,
    PURCHASE_MODELS,
)
from customer_marts.clv.predictions import predict
from customer_marts.clv.selection import (
    Selection,
    choose_model,
    covariance_in_use,
    fit_rows,
    fits_from_rows,
    fitted_rows,
    model_in_use,
)
from tests.unit.clv.test_clv import simulate

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports the deprecated pkg_resources
    from lifetimes import BetaGeoFitter

AS_OF = date(2025, 6, 30)
FITTED_AT = datetime(2025, 7, 1, 2, 0)


@pytest.fixture(scope="module")
def small():
    x, t_x, T, m = simulate(3_000, seed=21)
    return (x, t_x, T, m), fit_bg_nbd(x, t_x, T), fit_gamma_gamma(x, m)


def propagate(small, **kwargs):
    (x, t_x, T, m), bg, gg = small
    return clv_uncertainty.propagate(
        BG_NBD,
        (bg.values(), bg.log_covariance),
        (gg.values(), gg.log_covariance),
        x,
        t_x,
        T,
        m,
        **{"margin": 0.5, "annual_discount_rate": 0.1, "draws": 60, **kwargs},
    )


def test_intervals_are_reproducible_and_contain_the_point_estimate(small):
    (x, t_x, T, m), bg, gg = small
    first, again = propagate(small), propagate(small)
    np.testing.assert_array_equal(first.clv_12m_low, again.clv_12m_low)
    np.testing.assert_array_equal(first.clv_12m_high, again.clv_12m_high)
    point = predict(bg.values(), gg.values(), x, t_x, T, m, 0.5, 0.1)
    for figure in ("clv_12m", "expected_purchases_365d"):
        low, high = clv_uncertainty.contain(
            getattr(first, f"{figure}_low"), getattr(first, f"{figure}_high"), point[figure]
        )
        assert np.all(low <= point[figure]) and np.all(point[figure] <= high)
        assert np.all(low >= 0) and np.mean(high > low) > 0.99  # a real interval
    # another seed gives other (but similar) intervals
    other = propagate(small, seed=1)
    assert not np.array_equal(other.clv_12m_low, first.clv_12m_low)
    np.testing.assert_allclose(other.clv_12m_low, first.clv_12m_low, rtol=0.2)


def test_intervals_are_the_percentiles_of_predict_per_draw(small):
    # second method: the same draws through the point-prediction code, customer by customer
    (x, t_x, T, m), bg, gg = small
    rng = np.random.default_rng(clv_uncertainty.SEED)
    purchase = clv_uncertainty.parameter_draws(bg.values(), bg.log_covariance, 60, rng)
    spend = clv_uncertainty.parameter_draws(gg.values(), gg.log_covariance, 60, rng)
    per_draw = [
        predict(tuple(p), tuple(s), x, t_x, T, m, 0.5, 0.1)
        for p, s in zip(purchase, spend, strict=True)
    ]
    clv_draws = np.array([d["clv_12m"] for d in per_draw])
    year_draws = np.array([d["expected_purchases_365d"] for d in per_draw])
    groups = (x % 3).astype(int)
    ours = propagate(small, groups={"by_x": groups})
    np.testing.assert_allclose(
        ours.clv_12m_low, np.quantile(clv_draws, 0.05, axis=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        ours.clv_12m_high, np.quantile(clv_draws, 0.95, axis=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        ours.expected_purchases_365d_high, np.quantile(year_draws, 0.95, axis=0), rtol=1e-5
    )
    sums = np.stack([clv_draws[:, groups == g].sum(axis=1) for g in range(3)], axis=1)
    np.testing.assert_allclose(ours.group_sums["by_x"], sums, rtol=1e-5)


def test_parameter_draws_follow_the_asymptotic_normal_of_the_log_parameters(small):
    _, bg, _ = small
    draws = clv_uncertainty.parameter_draws(
        bg.values(), bg.log_covariance, 40_000, np.random.default_rng(0)
    )
    logs = np.log(draws)
    np.testing.assert_allclose(logs.mean(axis=0), np.log(bg.values()), atol=0.01)
    # whitened by the covariance, the draws have the identity covariance (sampling error
    # of each entry about 1 / sqrt(40 000) = 0.005; 0.03 is six of those)
    whiten = np.linalg.inv(np.linalg.cholesky(bg.log_covariance))
    np.testing.assert_allclose(np.cov((logs @ whiten.T).T), np.eye(4), atol=0.03)


def test_no_covariance_means_no_interval():
    rows = fit_rows(
        [
            Fit(BG_NBD, {"r": 1.0, "alpha": 2.0, "a": 3.0, "b": 4.0}, -1.0, 10, True),
            Fit(GAMMA_GAMMA, {"p": 1.0, "q": 2.0, "gamma": 3.0}, -1.0, 10, True),
        ],
        [],
        AS_OF,
        FITTED_AT,
    )
    values = np.array([1.0, 2.0])
    assert clv_uncertainty.from_fit_rows(rows, values, values, values * 3, values, 1, 0.1) is None


# ---------------------------------------------------------------- the model choice


def a_fit(model: str, converged: bool = True) -> Fit:
    names = PARAMETERS[model]
    return Fit(
        model,
        {name: float(i + 1) for i, name in enumerate(names)},
        -100.0,
        10,
        converged,
        log_covariance=np.eye(len(names)) * 0.01,
    )


ALL = [a_fit(BG_NBD), a_fit(MBG_NBD), a_fit(PARETO_NBD), a_fit(GAMMA_GAMMA)]


def test_the_lowest_holdout_error_chooses_the_model():
    selection = choose_model(ALL, {"bg_nbd": 0.5, "mbg_nbd": 0.4, "pareto_nbd": 0.45})
    assert selection.model == MBG_NBD
    assert "lowest holdout mean absolute error" in selection.reason
    assert "0.4" in selection.reason and "bg_nbd 0.5" in selection.reason
    # a model whose production fit did not converge is not a candidate
    fits = [a_fit(BG_NBD), a_fit(MBG_NBD, False), a_fit(PARETO_NBD)]
    assert choose_model(fits, {"bg_nbd": 0.5, "mbg_nbd": 0.4, "pareto_nbd": 0.45}).model == (
        PARETO_NBD
    )


def test_a_pinned_model_wins_and_a_wrong_name_is_refused():
    selection = choose_model(ALL, {"bg_nbd": 0.1}, pinned="pareto_nbd")
    assert selection.model == PARETO_NBD and "clv_model" in selection.reason
    with pytest.raises(ValueError, match="clv_model: 'nbd' is not one of"):
        choose_model(ALL, {}, pinned="nbd")


def test_without_a_holdout_comparison_the_previous_model_or_bg_nbd():
    nothing = {model: float("nan") for model in PURCHASE_MODELS}
    assert choose_model(ALL, nothing).model == BG_NBD
    kept = choose_model(ALL, nothing, previous_model=PARETO_NBD)
    assert kept.model == PARETO_NBD and "previous run" in kept.reason


def test_fit_rows_use_only_the_selected_purchase_model_and_carry_the_uncertainty():
    selection = Selection(PARETO_NBD, "lowest", {"bg_nbd": 0.5, "pareto_nbd": 0.4})
    rows = fit_rows(ALL, [], AS_OF, FITTED_AT, selection)
    assert len(rows) == 4 + 4 + 4 + 3
    used = {row["model"] for row in rows if row["is_used_for_predictions"]}
    assert used == {PARETO_NBD, GAMMA_GAMMA} and model_in_use(rows) == PARETO_NBD
    beta = next(r for r in rows if r["model"] == PARETO_NBD and r["parameter"] == "beta")
    # beta = 4 with se(log beta) = 0.1: se = 0.4 and 4 exp(-/+ 1.96 x 0.1)
    assert beta["std_error"] == pytest.approx(0.4)
    assert beta["ci_low_95"] == pytest.approx(4 * np.exp(-0.196), rel=1e-3)
    assert beta["ci_high_95"] == pytest.approx(4 * np.exp(0.196), rel=1e-3)
    assert beta["aic"] == pytest.approx(2 * 4 + 200) and beta["holdout_mae_per_customer"] == 0.4
    assert beta["selection_reason"].startswith("selected: lowest")
    mbg = next(r for r in rows if r["model"] == MBG_NBD)
    assert mbg["holdout_mae_per_customer"] is None and not mbg["is_selected_model"]
    np.testing.assert_allclose(covariance_in_use(rows, PARETO_NBD), np.eye(4) * 0.01)


def test_the_selected_model_falls_back_to_its_last_converged_rows():
    yesterday = fit_rows(ALL, [], date(2025, 6, 29), FITTED_AT)  # bg_nbd in use
    failing = [a_fit(m, m != MBG_NBD) for m in (*PURCHASE_MODELS, GAMMA_GAMMA)]
    selection = Selection(MBG_NBD, "pinned by the dbt var clv_model = mbg_nbd")
    rows = fit_rows(failing, yesterday, AS_OF, FITTED_AT, selection)
    used = [row for row in rows if row["model"] == MBG_NBD and row["is_used_for_predictions"]]
    # yesterday's converged (then unused) MBG/NBD rows are used, with their as-of date
    assert len(used) == 4 and {row["as_of_date"] for row in used} == {date(2025, 6, 29)}
    assert all(row["converged"] for row in used)


# ---------------------------------------------------------------- the holdout validation


def simulate_holdout(n: int, seed: int, holdout_days: int = 180, history: int = 720):
    """Customers of a BG/NBD shop observed for `history` days, as purchase days: the
    calibration summary up to history - holdout_days and the holdout purchase days."""
    r, alpha, a, b = 0.8, 60.0, 0.6, 3.0
    rng = np.random.default_rng(seed)
    end = history - holdout_days
    first = rng.integers(0, end + 1, n)
    rate, dropout = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    x, t_x, T = np.zeros(n), np.zeros(n), (end - first).astype(float)
    stars, offsets = np.zeros(n), []
    for i in range(n):
        days, t = [first[i]], float(first[i])
        while True:
            t += rng.exponential(1 / rate[i])
            if t > history:
                break
            days.append(int(t))
            if rng.uniform() < dropout[i]:
                break
        days = np.unique(days)
        calibration = days[days <= end]
        x[i], t_x[i] = len(calibration) - 1, calibration[-1] - calibration[0]
        later = days[days > end] - end
        stars[i] = len(later)
        offsets.extend(later.tolist())
    m = np.where(x > 0, rng.gamma(6.0, 10.0, n), 0.0)
    holdout = clv_validation.Holdout(x, t_x, T, m, stars, stars * 50.0, np.array(offsets, float))
    return holdout, history, holdout_days


def test_holdout_validation_against_lifetimes_and_sums_by_hand():
    holdout, history, days = simulate_holdout(4_000, seed=5)
    rows, errors = clv_validation.validate(holdout, history, days, AS_OF)
    bg = [row for row in rows if row["model"] == BG_NBD]
    total = next(row for row in bg if row["check_name"] == "total")
    x, t_x, T = holdout.frequency, holdout.recency, holdout.T
    theirs = BetaGeoFitter().fit(x, t_x, T)
    predicted = theirs.conditional_expected_number_of_purchases_up_to_time(days, x, t_x, T)
    assert total["status"] == "validated" and total["customers"] == 4_000
    assert total["actual_repeat_purchases"] == holdout.holdout_purchases.sum()
    assert total["predicted_repeat_purchases"] == pytest.approx(predicted.sum(), rel=1e-3)
    mae = np.mean(np.abs(predicted - holdout.holdout_purchases))
    assert (
        total["mae_per_customer"] == pytest.approx(mae, rel=1e-3)
        and errors["bg_nbd"] == (total["mae_per_customer"])
    )
    assert total["correlation"] == pytest.approx(
        np.corrcoef(predicted, holdout.holdout_purchases)[0, 1], rel=1e-3
    )
    assert total["actual_revenue"] == pytest.approx(50.0 * holdout.holdout_purchases.sum())
    buckets = [row for row in bg if row["check_name"] == "by_calibration_frequency"]
    assert [row["bucket"] for row in buckets] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    for row in buckets:
        chosen = np.minimum(x, 7) == row["bucket_order"]
        assert row["customers"] == chosen.sum()
        assert row["actual_repeat_purchases"] == holdout.holdout_purchases[chosen].sum()
        assert row["predicted_repeat_purchases"] == pytest.approx(predicted[chosen].sum(), rel=1e-3)
    weeks = [row for row in bg if row["check_name"] == "cumulative_by_week"]
    assert len(weeks) == 26  # 180 days: 25 weeks and 5 days
    assert weeks[-1]["actual_repeat_purchases"] == total["actual_repeat_purchases"]
    assert weeks[-1]["predicted_repeat_purchases"] == pytest.approx(
        total["predicted_repeat_purchases"], rel=1e-9
    )
    assert weeks[0]["actual_repeat_purchases"] == (holdout.holdout_day_offsets <= 7).sum()
    cumulative = [row["predicted_repeat_purchases"] for row in weeks]
    assert cumulative == sorted(cumulative)
    # the data are BG/NBD: its holdout total is close to what happened
    assert total["predicted_repeat_purchases"] == pytest.approx(
        total["actual_repeat_purchases"], rel=0.1
    )
    assert set(errors) == set(PURCHASE_MODELS) and all(np.isfinite(list(errors.values())))


def test_a_short_history_skips_the_validation_and_says_why():
    holdout, _, _ = simulate_holdout(200, seed=1)
    rows, errors = clv_validation.validate(holdout, 359, 180, AS_OF)
    assert [(row["model"], row["status"]) for row in rows] == [
        (model, "skipped") for model in PURCHASE_MODELS
    ]
    assert "359 days" in rows[0]["reason"] and "360 days" in rows[0]["reason"]
    assert all(np.isnan(list(errors.values())))
    assert rows[0]["calibration_end_date"] == date(2025, 1, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_percentile_interval_equals_numpys_quantile_bit_for_bit(dtype):
    rng = np.random.default_rng(5)
    for draws in (7, 60, 100):
        values = rng.gamma(0.5, 3.0, (draws, 2_000)).astype(dtype)
        values[3, 7] = np.nan  # a customer with one unknown draw has no interval
        level = clv_uncertainty.LEVEL
        expected = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
        low, high = clv_uncertainty.percentile_interval(values.copy())
        np.testing.assert_array_equal(low, expected[0])
        np.testing.assert_array_equal(high, expected[1])
        assert np.isnan(low[7]) and np.isnan(high[7])


def test_percentile_interval_along_rows_equals_numpys_quantile_bit_for_bit():
    # The customers' draws side by side (one customer a row): axis 1.
    rng = np.random.default_rng(6)
    values = rng.gamma(0.5, 3.0, (2_000, 100)).astype(np.float32)
    values[7, 3] = np.nan
    level = clv_uncertainty.LEVEL
    expected = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=1)
    low, high = clv_uncertainty.percentile_interval(values.copy(), axis=1)
    np.testing.assert_array_equal(low, expected[0])
    np.testing.assert_array_equal(high, expected[1])


def test_customers_with_the_same_inputs_get_the_intervals_of_one_customer(small):
    # The customers' intervals are computed once per distinct (x, t_x, T, spend); a
    # customer repeated three times, or alone, gets the same figures as in the crowd.
    (x, t_x, T, m), bg, gg = small
    crowd = propagate(small)
    repeated = np.concatenate([np.arange(len(x)), [5, 5, 9]])
    again = propagate(((x[repeated], t_x[repeated], T[repeated], m[repeated]), bg, gg))
    for figure in ("clv_12m_low", "clv_12m_high", "expected_purchases_365d_low"):
        np.testing.assert_array_equal(getattr(again, figure), getattr(crowd, figure)[repeated])


def test_fits_stored_as_rows_come_back_exactly(small):
    # int_btyd_models_fitted stores the fits, int_btyd_parameters_fitted rebuilds them:
    # converged fits, fits on three customers, and none (no repeat purchases: NaN).
    (x, t_x, T, m), _, _ = small
    fitted = fit_purchase_models(PURCHASE_MODELS, x, t_x, T) + [fit_gamma_gamma(x, m)]
    tiny = fit_purchase_models(PURCHASE_MODELS, x[:3], t_x[:3], T[:3])
    tiny.append(fit_gamma_gamma(x[:3], m[:3]))
    none = fit_purchase_models(PURCHASE_MODELS, 0 * x, 0 * t_x, T)
    none.append(fit_gamma_gamma(0 * x, 0 * m))
    for fits in (fitted, tiny, none):
        back = fits_from_rows(fitted_rows(fits)[::-1])  # whatever order the table has
        assert [fit.model for fit in back] == [*PURCHASE_MODELS, GAMMA_GAMMA]
        for rebuilt, fit in zip(back, fits, strict=True):
            assert rebuilt.iterations == fit.iterations and rebuilt.message == fit.message
            assert (rebuilt.converged, rebuilt.n_customers) == (fit.converged, fit.n_customers)
            np.testing.assert_array_equal(rebuilt.values(), fit.values())
            np.testing.assert_array_equal(rebuilt.log_likelihood, fit.log_likelihood)
            if fit.log_covariance is None:
                assert rebuilt.log_covariance is None
            else:
                np.testing.assert_array_equal(rebuilt.log_covariance, fit.log_covariance)
            assert fit_rows([rebuilt], [], AS_OF, FITTED_AT) == fit_rows(
                [fit], [], AS_OF, FITTED_AT
            )
    assert all(np.isnan(fit.values()).all() for fit in none)


def test_pareto_nbd_intervals_are_the_percentiles_of_predict_per_draw(small):
    # Pareto/NBD's p_alive in the draws takes its hypergeometric tails once per distinct
    # (x, t_x) and (x, T) pair; predict, customer by customer, is the second method.
    (x, t_x, T, m), _, gg = small
    pareto = fit_purchase_model(PARETO_NBD, x, t_x, T)
    assert pareto.converged
    rng = np.random.default_rng(clv_uncertainty.SEED)
    purchase = clv_uncertainty.parameter_draws(pareto.values(), pareto.log_covariance, 30, rng)
    spend = clv_uncertainty.parameter_draws(gg.values(), gg.log_covariance, 30, rng)
    clv_draws = np.array(
        [
            predict(tuple(p), tuple(s), x, t_x, T, m, 0.5, 0.1, model=PARETO_NBD)["clv_12m"]
            for p, s in zip(purchase, spend, strict=True)
        ]
    )
    ours = clv_uncertainty.propagate(
        PARETO_NBD,
        (pareto.values(), pareto.log_covariance),
        (gg.values(), gg.log_covariance),
        x,
        t_x,
        T,
        m,
        margin=0.5,
        annual_discount_rate=0.1,
        draws=30,
    )
    np.testing.assert_allclose(
        ours.clv_12m_low, np.quantile(clv_draws, 0.05, axis=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        ours.clv_12m_high, np.quantile(clv_draws, 0.95, axis=0), rtol=1e-5, atol=1e-6
    )


def test_threads_give_the_same_intervals_as_one_thread(small, monkeypatch):
    # Past PARALLEL_FROM combinations the draws and customer chunks run on threads; here
    # every size does, and each figure must equal the single-thread result exactly.
    one_thread = propagate(small, groups={"by_x": (small[0][0] % 3).astype(int)})
    monkeypatch.setattr(clv_models, "PARALLEL_FROM", 0)
    monkeypatch.setattr(clv_uncertainty, "CUSTOMER_CHUNK", 500)
    threads = propagate(small, groups={"by_x": (small[0][0] % 3).astype(int)})
    for figure in ("clv_12m_low", "clv_12m_high", "expected_purchases_365d_low"):
        np.testing.assert_array_equal(getattr(threads, figure), getattr(one_thread, figure))
    np.testing.assert_array_equal(threads.group_sums["by_x"], one_thread.group_sums["by_x"])


def test_models_fitted_together_equal_each_fitted_alone(small):
    (x, t_x, T, _), _, _ = small
    together = fit_purchase_models(PURCHASE_MODELS, x, t_x, T)
    for fit, model in zip(together, PURCHASE_MODELS, strict=True):
        alone = fit_purchase_model(model, x, t_x, T)
        assert fit.model == model and fit.params == alone.params
        np.testing.assert_array_equal(fit.log_covariance, alone.log_covariance)


def test_the_groups_take_the_draws_kept_by_the_customers_call(small, monkeypatch):
    # The customers' intervals keep their draws' terms; the groups' sums of the same fit
    # and combinations (customers in another order) take them instead of drawing again,
    # and get exactly what a fresh computation gives.
    (x, t_x, T, m), _, _ = small
    groups = {"by_x": (x % 3).astype(int)}
    fresh = propagate(small, groups=groups, customers=False)
    propagate(small, keep_terms=True)
    computed = []
    original = clv_uncertainty.DrawSpec.terms
    monkeypatch.setattr(
        clv_uncertainty.DrawSpec, "terms", lambda *a: computed.append(1) or original(*a)
    )
    order = np.random.default_rng(3).permutation(len(x))
    shuffled = ((x[order], t_x[order], T[order], m[order]),) + small[1:]
    taken = propagate(shuffled, groups={"by_x": groups["by_x"][order]}, customers=False)
    assert computed == []
    np.testing.assert_array_equal(taken.group_sums["by_x"], fresh.group_sums["by_x"])
    # taken once: a second call draws again
    again = propagate(small, groups=groups, customers=False)
    assert computed == [1]
    np.testing.assert_array_equal(again.group_sums["by_x"], fresh.group_sums["by_x"])


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"draws": 59},
        {"annual_discount_rate": 0.2},
        {"combinations": True},
    ],
)
def test_kept_draws_of_other_inputs_are_not_taken(small, change):
    (x, t_x, T, m), bg, gg = small
    groups = {"by_x": (x % 3).astype(int)}
    propagate(small, keep_terms=True)
    if change.pop("combinations", False):
        small = ((x, t_x, T + 1.0, m), bg, gg)  # every customer one day older
    after_keeping = propagate(small, groups=groups, customers=False, **change)
    fresh = propagate(small, groups=groups, customers=False, **change)  # nothing kept now
    np.testing.assert_array_equal(after_keeping.group_sums["by_x"], fresh.group_sums["by_x"])
    assert clv_uncertainty._kept == []


def test_group_numbers_name_each_distinct_combination_of_values_once():
    # second method: each row's tuple of values numbered in a dict (None a value of its
    # own); the two numberings must be one-to-one, and ours 0..G-1
    import pyarrow as pa

    rng = np.random.default_rng(5)
    stage = list(rng.choice(["active", "lapsing", "churned", None], 5_000))
    high = list(rng.choice([True, False, None], 5_000))
    month = list(rng.choice(np.array(["2024-01-01", "2024-02-01", None], dtype=object), 5_000))
    # several chunks, as DuckDB returns them
    columns = [
        pa.chunked_array([pa.array(values[:1_234]), pa.array(values[1_234:])])
        for values in (stage, high, month)
    ]
    ours = clv_uncertainty.group_numbers(*columns)
    numbers: dict[tuple, int] = {}
    theirs = [numbers.setdefault(row, len(numbers)) for row in zip(stage, high, month, strict=True)]
    assert len(numbers) == 36
    assert sorted(set(ours)) == list(range(36))
    assert len(set(zip(ours, theirs, strict=True))) == 36
    one = clv_uncertainty.group_numbers(columns[0])
    assert sorted(set(one)) == [0, 1, 2, 3] and len(set(zip(one, stage, strict=True))) == 4
