"""The purchase model used for the predictions (the lowest AIC among the converged fits)
and the fits as published, one row per model x parameter (clv_model_fit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from customer_marts.clv.fitting import Fit
from customer_marts.clv.models import BG_NBD, GAMMA_GAMMA, PARAMETERS, PURCHASE_MODELS

log = logging.getLogger(__name__)


FIT_COLUMNS = (
    "model",
    "parameter",
    "value",
    "time_unit",
    "log_likelihood",
    "n_customers",
    "converged",
    "fitted_at",
    "as_of_date",
    "is_used_for_predictions",
    "std_error",
    "ci_low_95",
    "ci_high_95",
    "aic",
    "bic",
    "holdout_mae_per_customer",
    "is_selected_model",
    "selection_reason",
    "log_covariance",
)


@dataclass(frozen=True)
class Selection:
    """The purchase model the predictions use, and why."""

    model: str
    reason: str
    holdout_mae: dict[str, float] = field(default_factory=dict)


def choose_model(
    fits: list[Fit],
    holdout_mae: dict[str, float],
    pinned: str | None = None,
    previous_model: str | None = None,
) -> Selection:
    """The purchase model with the lowest holdout mean absolute error per customer among
    those whose fit converged (ties: the first of PURCHASE_MODELS); `pinned` (the dbt var
    clv_model) overrides; without a usable holdout comparison, the model the previous
    run used (`previous_model`), else BG/NBD."""
    if pinned:
        if pinned not in PURCHASE_MODELS:
            raise ValueError(
                f"dbt var clv_model: {pinned!r} is not one of {', '.join(PURCHASE_MODELS)}"
            )
        return Selection(pinned, f"pinned by the dbt var clv_model = {pinned}", holdout_mae)
    converged = {fit.model for fit in fits if fit.converged}
    candidates = [
        model
        for model in PURCHASE_MODELS
        if model in converged and np.isfinite(holdout_mae.get(model, np.nan))
    ]
    if not candidates and previous_model in PURCHASE_MODELS:
        return Selection(
            previous_model,
            "no converged model with a holdout check this run (see clv_validation): "
            f"keeping {previous_model}, the model of the previous run",
            holdout_mae,
        )
    if not candidates:
        return Selection(
            BG_NBD,
            "no converged model with a holdout check (see clv_validation): BG/NBD by default",
            holdout_mae,
        )
    best = min(candidates, key=lambda model: holdout_mae[model])
    others = ", ".join(f"{m} {holdout_mae[m]:.4g}" for m in candidates if m != best)
    return Selection(
        best,
        f"lowest holdout mean absolute error per customer ({holdout_mae[best]:.4g}"
        + (f"; {others}" if others else "")
        + ")",
        holdout_mae,
    )


def fit_rows(
    fits: list[Fit],
    previous: list[dict],
    as_of_date: date | None,
    fitted_at: datetime,
    selection: Selection | None = None,
) -> list[dict]:
    """The rows of the model-fit table for this run: one per model x parameter.

    Of the purchase models, only the selected one (`selection`, default BG/NBD) is used
    for the predictions; Gamma-Gamma always is. A used model that does not converge still
    has its rows published (converged = false, not used), and the latest converged rows
    of the previous table (`previous`, as published by an earlier run with an as-of date
    on or before this one, so no later data leaks in) are carried over and used instead,
    keeping their own fitted_at, as_of_date and log-likelihood. Without such rows the
    non-converged estimates are used if they are finite, flagged by converged = false.
    """
    selection = selection or Selection(BG_NBD, "the default model")
    rows: list[dict] = []
    for fit in fits:
        in_use = fit.model == GAMMA_GAMMA or fit.model == selection.model
        kept = [
            row
            for row in previous
            if row["model"] == fit.model
            and row["converged"]
            and as_of_date is not None
            and row["as_of_date"] <= as_of_date
            and row["value"] is not None
        ]
        fallback = in_use and not fit.converged and len(kept) == len(PARAMETERS[fit.model])
        usable = all(np.isfinite(value) for value in fit.values())
        errors, intervals = fit.std_errors(), fit.intervals()
        covariance = fit.log_covariance
        if fit.model == GAMMA_GAMMA:
            reason = "the spend model, always used with the selected purchase model"
        elif fit.model == selection.model:
            reason = "selected: " + selection.reason
        else:
            reason = f"not selected ({selection.model} is): " + selection.reason
        for j, name in enumerate(PARAMETERS[fit.model]):
            value = fit.params[name]
            rows.append(
                {
                    "model": fit.model,
                    "parameter": name,
                    "value": _finite(value),
                    "time_unit": "day",
                    "log_likelihood": _finite(fit.log_likelihood),
                    "n_customers": fit.n_customers,
                    "converged": fit.converged,
                    "fitted_at": fitted_at,
                    "as_of_date": as_of_date,
                    "is_used_for_predictions": in_use and usable and not fallback,
                    "std_error": _finite(errors[name]),
                    "ci_low_95": _finite(intervals[name][0]),
                    "ci_high_95": _finite(intervals[name][1]),
                    "aic": _finite(fit.aic),
                    "bic": _finite(fit.bic),
                    "holdout_mae_per_customer": _finite(
                        selection.holdout_mae.get(fit.model, np.nan)
                    ),
                    "is_selected_model": in_use,
                    "selection_reason": reason,
                    "log_covariance": None
                    if covariance is None
                    else [float(v) for v in covariance[j]],
                }
            )
        if fallback:
            log.warning(
                "%s did not converge (%s): using the parameters fitted as of %s",
                fit.model,
                fit.message,
                kept[0]["as_of_date"],
            )
            rows += [{**row, "is_used_for_predictions": True} for row in kept]
    return rows


# The fits as int_btyd_models_fitted stores them (one row per model x parameter), so the
# model choice (fit_rows) can run after the holdout check while the fits run beside it.
FITTED_COLUMNS = (
    "model",
    "parameter",
    "value",
    "log_likelihood",
    "n_customers",
    "converged",
    "iterations",
    "message",
    "gradient_norm",
    "log_covariance",
)


def fitted_rows(fits: list[Fit]) -> list[dict]:
    """The fits as rows of FITTED_COLUMNS: every figure `fits_from_rows` needs, exactly
    (NaN as None)."""
    rows = []
    for fit in fits:
        covariance = fit.log_covariance
        for j, name in enumerate(PARAMETERS[fit.model]):
            rows.append(
                {
                    "model": fit.model,
                    "parameter": name,
                    "value": _finite(fit.params[name]),
                    "log_likelihood": _finite(fit.log_likelihood),
                    "n_customers": fit.n_customers,
                    "converged": fit.converged,
                    "iterations": fit.iterations,
                    "message": fit.message,
                    "gradient_norm": _finite(fit.gradient_norm),
                    "log_covariance": None
                    if covariance is None
                    else [float(v) for v in covariance[j]],
                }
            )
    return rows


def fits_from_rows(rows: list[dict]) -> list[Fit]:
    """The fits `fitted_rows` wrote: the purchase models in PURCHASE_MODELS' order, then
    Gamma-Gamma (as the fits are made)."""
    named_by_model: dict[str, dict[str, dict]] = {}
    for row in rows:
        named_by_model.setdefault(row["model"], {})[row["parameter"]] = row
    fits = []
    for model in (*PURCHASE_MODELS, GAMMA_GAMMA):
        if model not in named_by_model:
            continue
        named = named_by_model[model]
        ordered = [named[name] for name in PARAMETERS[model]]
        first = ordered[0]
        lines = [row["log_covariance"] for row in ordered]
        fits.append(
            Fit(
                model=model,
                params={name: _nan(named[name]["value"]) for name in PARAMETERS[model]},
                log_likelihood=_nan(first["log_likelihood"]),
                n_customers=int(first["n_customers"]),
                converged=bool(first["converged"]),
                iterations=int(first["iterations"]),
                message=first["message"],
                gradient_norm=_nan(first["gradient_norm"]),
                log_covariance=None
                if any(line is None for line in lines)
                else np.array(lines, dtype=float),
            )
        )
    return fits


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def model_in_use(rows: list[dict]) -> str | None:
    """The purchase model whose rows are marked for predictions in a fit table."""
    used = {row["model"] for row in rows if row["is_used_for_predictions"]}
    return next((model for model in PURCHASE_MODELS if model in used), None)


def parameters_in_use(rows: list[dict], model: str) -> tuple[float, ...] | None:
    """The parameter values of `model` marked for predictions in a fit table, or None."""
    values = {
        row["parameter"]: row["value"]
        for row in rows
        if row["model"] == model and row["is_used_for_predictions"]
    }
    if set(values) != set(PARAMETERS[model]) or any(v is None for v in values.values()):
        return None
    return tuple(float(values[name]) for name in PARAMETERS[model])


def covariance_in_use(rows: list[dict], model: str) -> np.ndarray | None:
    """The covariance of the log-parameters of `model` in use, or None when unknown."""
    by_name = {
        row["parameter"]: row.get("log_covariance")
        for row in rows
        if row["model"] == model and row["is_used_for_predictions"]
    }
    lines = [by_name.get(name) for name in PARAMETERS[model]]
    if any(line is None for line in lines):
        return None
    covariance = np.array(lines, dtype=float)
    return covariance if np.isfinite(covariance).all() else None
