"""Holdout validation of the purchase models: fit on a calibration window that ends
`holdout_days` before the as-of date, predict the holdout window, compare with what the
customers did.

Per model the rows of `marts.clv_validation` (one row per model x check x bucket):
- check `total`: every customer who had bought by the calibration end: actual vs predicted
  repeat purchase days and revenue in the holdout, the mean absolute error per customer
  and the correlation of predicted and actual purchases;
- check `by_calibration_frequency`: the same sums by the customer's calibration repeat
  purchases 0, 1, ..., 6, 7+ (the conditional-expectation check of Fader, Hardie & Lee);
- check `cumulative_by_week`: actual vs predicted repeat purchases from the calibration
  end to the end of each holdout week (the tracking plot).
The validation is skipped, saying why, when the history (first order to the as-of date)
is shorter than twice the holdout; a model whose calibration fit does not converge gets
one row saying so. The mean absolute error per customer chooses the production model
(customer_marts.clv.selection.choose_model).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from customer_marts.clv.fitting import MAX_ITERATIONS, Fit, fit_gamma_gamma, fit_purchase_models
from customer_marts.clv.gamma_gamma import expected_average_order_value
from customer_marts.clv.models import PURCHASE_MODELS, distinct, dot
from customer_marts.clv.predictions import expected_purchases_if_alive, p_alive

TOP_FREQUENCY = 7  # calibration frequencies of 7 and more share a bucket
WEEK = 7


@dataclass(frozen=True)
class Holdout:
    """The calibration inputs (days) and what each customer did in the holdout."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray
    holdout_purchases: np.ndarray  # repeat purchase days in the holdout
    holdout_revenue: np.ndarray
    holdout_day_offsets: np.ndarray  # every holdout purchase day: days after calibration end


def validate(
    holdout: Holdout | None,
    history_days: int | None,
    holdout_days: int,
    as_of_date: date | None,
    max_iterations: int = MAX_ITERATIONS,
) -> tuple[list[dict], dict[str, float]]:
    """The validation rows and each model's holdout mean absolute error per customer
    (NaN where it has none)."""
    calibration_end = as_of_date - timedelta(days=holdout_days) if as_of_date else None
    common = {
        "calibration_end_date": calibration_end,
        "holdout_days": holdout_days,
        "as_of_date": as_of_date,
    }
    errors = dict.fromkeys(PURCHASE_MODELS, float("nan"))
    if history_days is None or history_days < 2 * holdout_days or holdout is None:
        reason = (
            f"skipped: the history ({history_days or 0} days from the first order to the "
            f"as-of date) is shorter than twice the holdout ({2 * holdout_days} days); "
            "lower the dbt var clv_holdout_days or wait for more history"
        )
        return [
            _row(model, "total", "all", 0, "skipped", reason, common) for model in PURCHASE_MODELS
        ], errors
    x, t_x, T = holdout.frequency, holdout.recency, holdout.T
    spend = fit_gamma_gamma(x, holdout.monetary_value, max_iterations)
    aov = (
        expected_average_order_value(spend.values(), x, holdout.monetary_value)
        if spend.converged
        else np.full(len(x), np.nan)
    )
    rows: list[dict] = []
    weeks = -(-holdout_days // WEEK)
    week_days = [float(min(week * WEEK, holdout_days)) for week in range(1, weeks + 1)]
    offsets = np.sort(holdout.holdout_day_offsets)
    actual_by_week = np.searchsorted(offsets, week_days, side="right")
    # p_alive depends on (x, t_x, T) and the purchases if alive on (x, T): computed per
    # distinct combination and pair, spread to the customers only for the per-customer
    # error; the weekly sums are sums over the pairs of p_alive summed per pair.
    (cx, ct_x, cT), customers, combo = distinct(x, t_x, T)
    (ux, uT), _, pair = distinct(cx, cT)
    for fit in fit_purchase_models(PURCHASE_MODELS, x, t_x, T, max_iterations):
        model = fit.model
        if not fit.converged:
            reason = f"the calibration fit did not converge ({fit.message})"
            rows.append(_row(model, "total", "all", 0, "not_converged", reason, common))
            continue
        params = fit.values()
        alive = p_alive(params, cx, ct_x, cT, model)
        alive_by_pair = np.bincount(pair, weights=alive * customers, minlength=len(ux))
        if_alive = expected_purchases_if_alive(params, float(holdout_days), ux, uT, model)
        predicted = (alive * if_alive[pair])[combo]
        errors[model] = float(np.mean(np.abs(predicted - holdout.holdout_purchases)))
        revenue = predicted * aov
        rows.append(
            {
                **_sums(
                    model, "total", "all", 0, np.ones(len(x), bool), holdout, predicted, revenue
                ),
                "mae_per_customer": errors[model],
                "correlation": _correlation(predicted, holdout.holdout_purchases),
                "status": "validated",
                "reason": _note(spend),
                **common,
            }
        )
        bucket = np.minimum(x, TOP_FREQUENCY)
        for k in range(TOP_FREQUENCY + 1):
            label = f"{k}+" if k == TOP_FREQUENCY else str(k)
            rows.append(
                {
                    **_sums(
                        model,
                        "by_calibration_frequency",
                        label,
                        k,
                        bucket == k,
                        holdout,
                        predicted,
                        revenue,
                    ),
                    **_blank(),
                    "status": "validated",
                    "reason": None,
                    **common,
                }
            )
        for week, (days, actual) in enumerate(zip(week_days, actual_by_week, strict=True), 1):
            if_alive = expected_purchases_if_alive(params, days, ux, uT, model)
            rows.append(
                {
                    "model": model,
                    "check_name": "cumulative_by_week",
                    "bucket": f"week {week}",
                    "bucket_order": week,
                    "customers": len(x),
                    "actual_repeat_purchases": float(actual),
                    "predicted_repeat_purchases": dot(alive_by_pair, if_alive),
                    "actual_revenue": None,
                    "predicted_revenue": None,
                    **_blank(),
                    "status": "validated",
                    "reason": None,
                    **common,
                }
            )
    return rows, errors


def _sums(
    model: str,
    check: str,
    bucket: str,
    order: int,
    chosen: np.ndarray,
    holdout: Holdout,
    predicted: np.ndarray,
    revenue: np.ndarray,
) -> dict:
    predicted_revenue = float(revenue[chosen].sum()) if np.isfinite(revenue).all() else None
    return {
        "model": model,
        "check_name": check,
        "bucket": bucket,
        "bucket_order": order,
        "customers": int(chosen.sum()),
        "actual_repeat_purchases": float(holdout.holdout_purchases[chosen].sum()),
        "predicted_repeat_purchases": float(predicted[chosen].sum()),
        "actual_revenue": float(holdout.holdout_revenue[chosen].sum()),
        "predicted_revenue": predicted_revenue,
    }


def _blank() -> dict:
    return {"mae_per_customer": None, "correlation": None}


def _note(spend: Fit) -> str | None:
    if spend.converged:
        return None
    return f"predicted revenue missing: the calibration Gamma-Gamma fit did not converge ({spend.message})"


def _correlation(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    if len(actual) < 2 or np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return None
    return float(np.corrcoef(predicted, actual)[0, 1])


def _row(model: str, check: str, bucket: str, order: int, status: str, reason: str, common: dict):
    return {
        "model": model,
        "check_name": check,
        "bucket": bucket,
        "bucket_order": order,
        "customers": 0,
        "actual_repeat_purchases": None,
        "predicted_repeat_purchases": None,
        "actual_revenue": None,
        "predicted_revenue": None,
        **_blank(),
        "status": status,
        "reason": reason,
        **common,
    }
