"""Fitting: one maximum-likelihood code path for every model.

Gradients are analytic
(digamma) for BG/NBD, MBG/NBD and Gamma-Gamma, central differences for Pareto/NBD (its
hypergeometric terms are computed once per distinct (x, t_x) and (x, T) pair, so the
extra evaluations are cheap). The optimiser (L-BFGS-B) works on the log of the
parameters, bounded, from deterministic starting values, on data rescaled to a unit mean
(time for the purchase models, money for Gamma-Gamma) so one set of bounds and starting
values fits every business. Rescaling is a reparameterisation only: the parameters and
the log-likelihood are reported in days and currency units.

Uncertainty: the observed information (the Hessian of the negative log-likelihood at the
maximum, by central differences of the gradient) gives the covariance of the
log-parameters; standard errors of the parameters follow by the delta method and 95 %
intervals are exp(log estimate -/+ 1.96 standard errors of the log), always positive.
customer_marts.clv.uncertainty propagates it to the predictions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import minimize

from customer_marts.clv.gamma_gamma import (
    GammaGammaData,
    gamma_gamma_log_likelihood,
    gamma_gamma_objective,
)
from customer_marts.clv.models import (
    BG_NBD,
    GAMMA_GAMMA,
    MBG_NBD,
    PARAMETERS,
    PARETO_NBD,
    TIME_PARAMETERS,
    Counts,
    ParetoData,
    as_float,
    bg_nbd_log_likelihood,
    bg_nbd_objective,
    check_btyd_inputs,
    dot,
    mbg_nbd_log_likelihood,
    mbg_nbd_objective,
    pareto_nbd_log_likelihood,
    pareto_nbd_objective,
    thread_pool,
)

log = logging.getLogger(__name__)


Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile
# Bounds of every parameter on the rescaled data (mean T or mean spend = 1). Real fits
# land well inside [1e-4, 1e4] there; an estimate within a factor BOUND_MARGIN of a
# bound means the likelihood keeps rising towards the edge (the data do not identify
# the parameter, typically with a handful of customers): the fit is not converged.
LOWER, UPPER = 1e-8, 1e8
BOUND_MARGIN = 1e3
MAX_ITERATIONS = 1000
ITERATION_LIMIT = 1  # scipy's status for "stopped at maxiter"
# Largest gradient component (of the mean log-likelihood per customer, with respect to the
# log-parameters) at which a fit counts as converged.
GRADIENT_TOLERANCE = 1e-6
# Smallest curvature (Hessian eigenvalue of the mean negative log-likelihood, with respect
# to the log-parameters) of a converged fit: below it a parameter is not identified.
MIN_CURVATURE = 1e-6


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: parameters in days / currency units and diagnostics.

    `log_covariance` is the inverse observed information of the log-parameters (None when
    the Hessian at the estimate is not positive definite)."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    n_customers: int
    converged: bool
    iterations: int = 0
    message: str = ""
    gradient_norm: float = field(default=float("nan"), compare=False)
    log_covariance: np.ndarray | None = field(default=None, compare=False, repr=False)

    def values(self) -> tuple[float, ...]:
        return tuple(self.params[name] for name in PARAMETERS[self.model])

    @property
    def n_parameters(self) -> int:
        return len(PARAMETERS[self.model])

    @property
    def aic(self) -> float:
        return 2 * self.n_parameters - 2 * self.log_likelihood

    @property
    def bic(self) -> float:
        n = max(self.n_customers, 1)
        return self.n_parameters * float(np.log(n)) - 2 * self.log_likelihood

    def log_std_errors(self) -> np.ndarray:
        if self.log_covariance is None:
            return np.full(self.n_parameters, np.nan)
        return np.sqrt(np.clip(np.diag(self.log_covariance), 0.0, None))

    def std_errors(self) -> dict[str, float]:
        """Delta method: se(theta) = theta x se(log theta)."""
        return dict(
            zip(
                PARAMETERS[self.model],
                (float(v) for v in np.array(self.values()) * self.log_std_errors()),
                strict=True,
            )
        )

    def intervals(self, z: float = Z_95) -> dict[str, tuple[float, float]]:
        """95 % intervals (z = 1.96) on the log scale: theta exp(-/+ z se(log theta))."""
        values, spread = np.array(self.values()), z * self.log_std_errors()
        return {
            name: (float(v * np.exp(-e)), float(v * np.exp(e)))
            for name, v, e in zip(PARAMETERS[self.model], values, spread, strict=True)
        }


LOG_LIKELIHOODS = {
    BG_NBD: bg_nbd_log_likelihood,
    MBG_NBD: mbg_nbd_log_likelihood,
    PARETO_NBD: pareto_nbd_log_likelihood,
}
_OBJECTIVES = {
    BG_NBD: (bg_nbd_objective, lambda counts: counts),
    MBG_NBD: (mbg_nbd_objective, lambda counts: counts),
    PARETO_NBD: (pareto_nbd_objective, ParetoData.build),
}


def fit_purchase_model(
    model: str,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    max_iterations: int = MAX_ITERATIONS,
) -> Fit:
    """Maximum-likelihood fit of `model` (bg_nbd, mbg_nbd or pareto_nbd) on day-level
    inputs; alpha (and beta) per day."""
    return fit_purchase_models((model,), frequency, recency, T, max_iterations)[0]


def fit_purchase_models(
    models: tuple[str, ...],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    max_iterations: int = MAX_ITERATIONS,
) -> list[Fit]:
    """`fit_purchase_model` of each of `models` on the same inputs, grouped into their
    distinct combinations once."""
    x, t_x, T = as_float(frequency, recency, T)
    check_btyd_inputs(x, t_x, T)
    n = len(x)
    scale = float(T.mean()) if n and T.mean() > 0 else 0.0
    if n == 0 or scale == 0.0 or not (x > 0).any():
        reason = "needs customers with T > 0 and some repeat purchases"
        return [_not_fitted(model, n, reason) for model in models]
    # Deterministic start: shapes 1 and alpha matching the mean repeat purchase rate.
    alpha_0 = float(np.clip(T.sum() / scale / x.sum(), 1e-3, 1e3))
    start = np.log([1.0, alpha_0, 1.0, 1.0])
    counts = Counts.build(x, t_x, T, None)
    fits = []
    with thread_pool(len(counts.x)) as pool:
        scaled = replace(counts, pool=pool).scaled(scale)
        for model in models:
            objective, prepare = _OBJECTIVES[model]
            data = prepare(scaled)
            result = _minimise(objective, start, data, max_iterations)
            hessian = _hessian(objective, result.x, data)
            values = np.exp(result.x)
            params = tuple(
                float(v * scale) if name in TIME_PARAMETERS else float(v)
                for name, v in zip(PARAMETERS[model], values, strict=True)
            )
            each = LOG_LIKELIHOODS[model](params, counts.x, counts.t_x, counts.T)
            fits.append(_fit(model, params, dot(counts.w, each), n, result, hessian))
    return fits


def fit_bg_nbd(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, max_iterations: int = MAX_ITERATIONS
) -> Fit:
    """Maximum-likelihood BG/NBD fit on day-level inputs; alpha is per day."""
    return fit_purchase_model(BG_NBD, frequency, recency, T, max_iterations)


def fit_gamma_gamma(
    frequency: np.ndarray, monetary_value: np.ndarray, max_iterations: int = MAX_ITERATIONS
) -> Fit:
    """Maximum-likelihood Gamma-Gamma fit on the customers with x >= 1 and a positive spend.

    Customers without repeat purchases carry no spend information; repeat customers whose
    repeat purchases were all free (monetary value 0) have zero density under the model
    and are left out of the fit (they still get a prediction).
    """
    x, m = as_float(frequency, monetary_value)
    used = (x > 0) & (m > 0)
    x, m = x[used], m[used]
    n = len(x)
    if n < 2 or np.ptp(m) == 0:
        return _not_fitted(GAMMA_GAMMA, n, "needs two or more repeat customers with varying spend")
    scale = float(m.mean())
    data = GammaGammaData.build(x, m / scale)
    # Deterministic start: p = 1, q = 2, gamma = 1, i.e. a population mean spend of
    # p gamma / (q - 1) = 1 = the observed mean on the rescaled data.
    result = _minimise(gamma_gamma_objective, np.log([1.0, 2.0, 1.0]), data, max_iterations)
    hessian = _hessian(gamma_gamma_objective, result.x, data)
    p, q, gamma = np.exp(result.x)
    params = (p, q, gamma * scale)
    log_likelihood = gamma_gamma_log_likelihood(params, x, m).sum()
    return _fit(GAMMA_GAMMA, params, log_likelihood, n, result, hessian)


def _minimise(objective, start: np.ndarray, data, max_iterations: int):
    bounds = [(np.log(LOWER), np.log(UPPER))] * len(start)
    return minimize(
        objective,
        start,
        args=(data,),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iterations, "ftol": 1e-12, "gtol": 1e-10, "maxcor": 20},
    )


def _hessian(objective, log_params: np.ndarray, data, step: float = 1e-4) -> np.ndarray:
    """The Hessian of the mean negative log-likelihood with respect to the
    log-parameters, by central differences of the gradient, symmetrised.

    Its smallest eigenvalue is the curvature of the maximum: identified maxima measured
    here (CDNOW, simulated data from 20 to 1M customers) have 1e-3 to 1e-2; a likelihood
    that keeps rising towards a bound (a handful of customers) gives about 0 or a negative
    value. n times it is the observed information of the log-parameters.
    """
    columns = []
    for j in range(len(log_params)):
        shift = np.zeros(len(log_params))
        shift[j] = step
        upper = objective(log_params + shift, data)[1]
        lower = objective(log_params - shift, data)[1]
        columns.append((upper - lower) / (2 * step))
    hessian = np.array(columns)
    return (hessian + hessian.T) / 2


def _fit(
    model: str,
    params: tuple[float, ...],
    log_likelihood: float,
    n: int,
    result,
    hessian: np.ndarray,
) -> Fit:
    gradient_norm = float(np.max(np.abs(result.jac)))
    curvature = float(np.linalg.eigvalsh(hessian).min()) if np.isfinite(hessian).all() else 0.0
    at_bound = bool(
        (result.x < np.log(LOWER * BOUND_MARGIN)).any()
        | (result.x > np.log(UPPER / BOUND_MARGIN)).any()
    )
    # Converged: a maximum (vanishing gradient, curvature in every direction) well inside
    # the bounds. L-BFGS-B may also stop with "ABNORMAL" when the line search cannot
    # improve the likelihood any more at machine precision; at a maximum that is fine.
    flat = not curvature > MIN_CURVATURE
    converged = bool(
        result.status != ITERATION_LIMIT
        and gradient_norm <= GRADIENT_TOLERANCE
        and not at_bound
        and not flat
        and np.isfinite(log_likelihood)
        and np.all(np.isfinite(params))
    )
    message = str(result.message).strip()
    if at_bound:
        message += "; a parameter is at the edge of its bounds"
    if flat:
        message += f"; the likelihood is flat or not at a maximum (curvature {curvature:.2g})"
    # The covariance of the log-parameters: the inverse of the observed information
    # (n x the mean Hessian), where the Hessian is positive definite.
    covariance = np.linalg.inv(hessian * n) if not flat else None
    fit = Fit(
        model=model,
        params=dict(zip(PARAMETERS[model], (float(v) for v in params), strict=True)),
        log_likelihood=float(log_likelihood),
        n_customers=n,
        converged=converged,
        iterations=int(result.nit),
        message=message,
        gradient_norm=gradient_norm,
        log_covariance=covariance,
    )
    log.info(
        "%s fit on %d customers: %s, log-likelihood %.6g, converged=%s (%s, %d iterations)",
        model,
        n,
        fit.params,
        fit.log_likelihood,
        converged,
        message,
        fit.iterations,
    )
    return fit


def _not_fitted(model: str, n: int, reason: str) -> Fit:
    log.warning("%s not fitted on %d customers: %s", model, n, reason)
    return Fit(
        model=model,
        params=dict.fromkeys(PARAMETERS[model], float("nan")),
        log_likelihood=float("nan"),
        n_customers=n,
        converged=False,
        message=reason,
    )
