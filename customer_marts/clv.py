"""Predictive customer lifetime value: BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma,
fitted by one maximum-likelihood code path.

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): repeat
  purchases of a customer follow a Poisson process with rate lambda ~ Gamma(r, alpha);
  after each repeat purchase the customer drops out with probability p ~ Beta(a, b).
- MBG/NBD (Batislam, Denizel & Filiztekin 2007): the same, but a customer may also drop
  out right after the first purchase (so customers without repeat purchases can be gone).
- Pareto/NBD (Schmittlein, Morrison & Colombo 1987): the same purchase process; the
  customer's lifetime is exponential with rate mu ~ Gamma(s, beta), independent of the
  purchases.
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the spend of a customer's repeat
  purchases averages to nu ~ Gamma(q, gamma), each purchase ~ Gamma(p, nu).

Inputs per customer (docs/metrics.md, "Customer lifetime value"), all in days: frequency x
(distinct purchase days - 1), recency t_x (days from the first to the last purchase day),
T (days from the first purchase to the as-of date), monetary value (mean revenue of the
repeat purchase days, 0 when x = 0). r, a, b, s, p, q are unit-free; alpha and beta are
in days; gamma is in the currency of the amounts.

The log-likelihoods are the closed forms of the papers, evaluated in log space
(`gammaln`, `logaddexp`; Pareto/NBD's integral through `hyp2f1`, FHL note 009, whose
value lies in [1, (1 - z)^-b] and never overflows). They are sums over the distinct
(x, t_x, T) combinations weighted by their number of customers, not over customers:
day-level data has far fewer combinations than customers. Gradients are analytic
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
customer_marts.clv_uncertainty propagates it to the predictions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

log = logging.getLogger(__name__)

# The BTYD inputs, as int_customers_summarised_for_clv names them, in the order the fits
# and predictions take them: x, t_x, T, monetary value.
INPUT_COLUMNS = ("frequency", "recency_days", "t_days", "monetary_value")
BG_NBD = "bg_nbd"
MBG_NBD = "mbg_nbd"
PARETO_NBD = "pareto_nbd"
GAMMA_GAMMA = "gamma_gamma"
PURCHASE_MODELS = (BG_NBD, MBG_NBD, PARETO_NBD)
PARAMETERS = {
    BG_NBD: ("r", "alpha", "a", "b"),
    MBG_NBD: ("r", "alpha", "a", "b"),
    PARETO_NBD: ("r", "alpha", "s", "beta"),
    GAMMA_GAMMA: ("p", "q", "gamma"),
}
TIME_PARAMETERS = frozenset({"alpha", "beta"})  # in days: they scale with time
Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile
DAYS_PER_YEAR = 365.0
MONTHS = 12
NEAR_ONE = 1e-4  # see expected_purchases_if_alive
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
# Step of the central differences of the derivatives of Pareto/NBD's hypergeometric
# log-tails (log-parameters).
GRADIENT_STEP = 1e-5
# Below this many distinct combinations one thread is faster than splitting the work.
PARALLEL_FROM = 100_000
CHUNK = 65_536  # combinations per piece of work


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


# ---------------------------------------------------------------- the data


def _distinct(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """The distinct rows of `columns` (sorted), their counts and, per row, its index."""
    n = len(columns[0])
    if n == 0:
        return tuple(c[:0] for c in columns), np.zeros(0), np.zeros(0, dtype=np.intp)
    order = np.lexsort(columns[::-1])
    starts = np.zeros(n, dtype=bool)
    starts[0] = True
    for column in columns:
        ordered = column[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    back = np.empty(n, dtype=np.intp)
    back[order] = np.cumsum(starts) - 1
    first = order[starts]
    counts = np.diff(np.append(np.flatnonzero(starts), n)).astype(float)
    return tuple(c[first] for c in columns), counts, back


@dataclass(frozen=True)
class _Counts:
    """Customers grouped by distinct (x, t_x, T), with the number of customers of each
    combination as its weight; time already rescaled."""

    n: int
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    w: np.ndarray
    x_values: np.ndarray  # distinct frequencies
    x_counts: np.ndarray  # customers per distinct frequency
    pool: ThreadPoolExecutor | None

    @classmethod
    def build(
        cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, pool: ThreadPoolExecutor | None
    ) -> _Counts:
        (cx, ct_x, cT), w, _ = _distinct(x, t_x, T)
        x_values, x_counts = np.unique(x, return_counts=True)
        return cls(len(x), cx, ct_x, cT, w, x_values, x_counts.astype(float), pool)

    def scaled(self, scale: float) -> _Counts:
        return _Counts(
            self.n,
            self.x,
            self.t_x / scale,
            self.T / scale,
            self.w,
            self.x_values,
            self.x_counts,
            self.pool,
        )

    def map(self, function: Callable, params: tuple) -> list:
        """`function(params, x, t_x, T, w)` on pieces of the combinations (threads: NumPy
        releases the GIL)."""
        pieces = [
            (self.x[i : i + CHUNK], self.t_x[i : i + CHUNK], self.T[i : i + CHUNK])
            + (self.w[i : i + CHUNK],)
            for i in range(0, len(self.x), CHUNK)
        ]
        if self.pool is None or len(pieces) < 2:
            return [function(params, *piece) for piece in pieces]
        return list(self.pool.map(lambda piece: function(params, *piece), pieces))


# ---------------------------------------------------------------- BG/NBD and MBG/NBD


def _dropout_shift(model: str) -> float:
    """MBG/NBD is BG/NBD with one more drop-out opportunity: b + x becomes b + x + 1."""
    return 1.0 if model == MBG_NBD else 0.0


def _log_odds_dropped(
    params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, T: np.ndarray, shift: float = 0.0
) -> np.ndarray:
    """Log-odds that the customer dropped out right after the last purchase rather than
    being alive through T: d = log(a / (b + x - 1 + shift)) + (r + x) log((alpha + T) /
    (alpha + t_x)); -inf for BG/NBD's x = 0 (nothing to drop out after)."""
    r, alpha, a, b = params[:4]
    can_drop = (x > 0) | (shift > 0)
    with np.errstate(divide="ignore"):
        return np.where(
            can_drop,
            np.log(a / np.where(can_drop, b + x - 1 + shift, 1.0))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
            -np.inf,
        )


def _bg_family_log_likelihood(
    params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, T: np.ndarray, shift: float
) -> np.ndarray:
    r, alpha, a, b = params
    return (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x + shift)
        - gammaln(b)
        - gammaln(a + b + x + shift)
        - (r + x) * np.log(alpha + T)
        + np.logaddexp(0.0, _log_odds_dropped(params, x, t_x, T, shift))
    )


def bg_nbd_log_likelihood(
    params: tuple[float, float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (FHL 2005, equation 6), in log space:

    log Gamma(r + x) - log Gamma(r) + r log alpha + log B(a, b + x) - log B(a, b)
    - (r + x) log(alpha + T) + log(1 + [x > 0] exp(d)), d from `_log_odds_dropped`.
    """
    return _bg_family_log_likelihood(params, *_as_float(frequency, recency, T), 0.0)


def mbg_nbd_log_likelihood(
    params: tuple[float, float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Each customer's MBG/NBD log-likelihood (Batislam et al. 2007): BG/NBD's with
    B(a, b + x + 1) and d = log(a / (b + x)) + ..., for every x."""
    return _bg_family_log_likelihood(params, *_as_float(frequency, recency, T), 1.0)


def _bg_family_terms(
    params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
) -> tuple[float, float, float, float, float]:
    """Weighted log-likelihood and gradient sums of the terms that are not functions of x
    alone: -(r + x) log(alpha + T) + softplus(d); expit(d) is the posterior share of
    "dropped out right after the last purchase"."""
    r, alpha, a, b, shift = params
    alpha_T = alpha + T
    alpha_t_x = alpha + t_x
    log_alpha_T = np.log(alpha_T)
    log_ratio = log_alpha_T - np.log(alpha_t_x)
    r_x = r + x
    can_drop = (x > 0) | (shift > 0)
    b_x = np.where(can_drop, b - 1 + x + shift, 1.0)
    d = np.where(can_drop, np.log(a / b_x) + r_x * log_ratio, -np.inf)
    share = expit(d)
    inv_T = 1.0 / alpha_T
    ll = _dot(w, np.logaddexp(0.0, d) - r_x * log_alpha_T)
    d_r = _dot(w, share * log_ratio - log_alpha_T)
    d_alpha = -_dot(w, r_x * (inv_T + share * (1.0 / alpha_t_x - inv_T)))
    d_a = _dot(w, share) / a
    d_b = -_dot(w, share / b_x)
    return ll, d_r, d_alpha, d_a, d_b


def _bg_family_objective(
    log_params: np.ndarray, data: _Counts, shift: float
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood and its gradient with respect to the log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    xu, cu = data.x_values, data.x_counts
    # Terms of x alone: Gamma(r + x) / Gamma(r) and B(a, b + x + shift) / B(a, b).
    ll = _dot(
        cu,
        gammaln(r + xu)
        - gammaln(r)
        + gammaln(a + b)
        + gammaln(b + xu + shift)
        - gammaln(b)
        - gammaln(a + b + xu + shift),
    ) + data.n * r * np.log(alpha)
    d_r = _dot(cu, digamma(r + xu) - digamma(r)) + data.n * np.log(alpha)
    d_alpha = data.n * r / alpha
    d_a = _dot(cu, digamma(a + b) - digamma(a + b + xu + shift))
    d_b = _dot(
        cu, digamma(a + b) + digamma(b + xu + shift) - digamma(b) - digamma(a + b + xu + shift)
    )
    for ll_part, d_r_part, d_alpha_part, d_a_part, d_b_part in data.map(
        _bg_family_terms, (r, alpha, a, b, shift)
    ):
        ll += ll_part
        d_r += d_r_part
        d_alpha += d_alpha_part
        d_a += d_a_part
        d_b += d_b_part
    gradient = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return -ll / data.n, -gradient / data.n


def _bg_nbd_objective(log_params: np.ndarray, data: _Counts) -> tuple[float, np.ndarray]:
    return _bg_family_objective(log_params, data, 0.0)


def _mbg_nbd_objective(log_params: np.ndarray, data: _Counts) -> tuple[float, np.ndarray]:
    return _bg_family_objective(log_params, data, 1.0)


# ---------------------------------------------------------------- Pareto/NBD


def _pareto_log_tail(params: tuple[float, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log of the integral from y to infinity of (alpha + tau)^-(r + x) (beta + tau)^-(s + 1)
    d tau = (M + y)^-(r + s + x) / (r + s + x) 2F1(r + s + x, c; r + s + x + 1;
    |alpha - beta| / (M + y)), with M = max(alpha, beta) and c = s + 1 if alpha >= beta,
    else r + x (FHL note 009, equations 19-20). The hypergeometric value lies in
    [1, (1 - z)^-c]: its log is finite."""
    r, alpha, s, beta = params
    rsx = r + s + x
    if alpha >= beta:
        top, c = alpha, s + 1.0
    else:
        top, c = beta, r + x
    z = abs(alpha - beta) / (top + y)
    return np.log(hyp2f1(rsx, c, rsx + 1.0, z)) - rsx * np.log(top + y) - np.log(rsx)


def _pareto_log_terms(
    params: tuple[float, ...],
    x: np.ndarray,
    T: np.ndarray,
    log_tail_t_x: np.ndarray,
    log_tail_T: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """log of "alive through T" and of "died in (t_x, T]" (each without the common factor
    Gamma(r + x) alpha^r beta^s / Gamma(r)): -(r + x) log(alpha + T) - s log(beta + T) and
    log s + log(tail(t_x) - tail(T)) (-inf when t_x = T)."""
    r, alpha, s, beta = params
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    with np.errstate(divide="ignore"):
        died = (
            np.log(s) + log_tail_t_x + np.log(np.maximum(-np.expm1(log_tail_T - log_tail_t_x), 0.0))
        )
    return alive, died


def pareto_nbd_log_likelihood(
    params: tuple[float, float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Each customer's Pareto/NBD log-likelihood (FHL note 009, equation 18), in log space:
    log Gamma(r + x) - log Gamma(r) + r log alpha + s log beta + log(alive + died)."""
    r, alpha, s, beta = params
    x, t_x, T = _as_float(frequency, recency, T)
    alive, died = _pareto_log_terms(
        params, x, T, _pareto_log_tail(params, x, t_x), _pareto_log_tail(params, x, T)
    )
    return (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.logaddexp(alive, died)
    )


@dataclass(frozen=True)
class _ParetoData:
    """Pareto/NBD's hypergeometric terms depend on (x, t_x) and (x, T) only: far fewer
    distinct pairs than combinations, so they are computed once per pair."""

    counts: _Counts
    pair_x: np.ndarray
    pair_y: np.ndarray
    at_t_x: np.ndarray  # per combination: index of its (x, t_x) pair
    at_T: np.ndarray

    @classmethod
    def build(cls, counts: _Counts) -> _ParetoData:
        k = len(counts.x)
        (pair_x, pair_y), _, back = _distinct(
            np.concatenate([counts.x, counts.x]), np.concatenate([counts.t_x, counts.T])
        )
        return cls(counts, pair_x, pair_y, back[:k], back[k:])

    @property
    def n(self) -> int:
        return self.counts.n


def _pareto_nbd_objective(log_params: np.ndarray, data: _ParetoData) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood and its gradient with respect to the log-parameters.

    The gradient is analytic except for the derivatives of the hypergeometric log-tails,
    which are central differences per distinct (x, y) pair (few): with
    u = tail(T) / tail(t_x), d log(tail(t_x) - tail(T)) = (d log tail(t_x) - u d log
    tail(T)) / (1 - u)."""
    params = tuple(np.exp(log_params))
    r, alpha, s, beta = params
    c = data.counts
    tail = _pareto_log_tail(params, data.pair_x, data.pair_y)
    d_tail = np.empty((4, len(tail)))
    for j in range(4):
        shift = np.zeros(4)
        shift[j] = GRADIENT_STEP
        upper = _pareto_log_tail(tuple(np.exp(log_params + shift)), data.pair_x, data.pair_y)
        lower = _pareto_log_tail(tuple(np.exp(log_params - shift)), data.pair_x, data.pair_y)
        d_tail[j] = (upper - lower) / (2 * GRADIENT_STEP)
    tail_t_x, tail_T = tail[data.at_t_x], tail[data.at_T]
    alive, died = _pareto_log_terms(params, c.x, c.T, tail_t_x, tail_T)
    both = np.logaddexp(alive, died)
    share_died = np.exp(died - both)  # 0 where t_x = T
    share_alive = 1.0 - share_died
    can_die = share_died > 0
    u = np.exp(np.where(can_die, tail_T - tail_t_x, -1.0))
    weight = c.w * np.where(can_die, share_died / np.where(can_die, 1.0 - u, 1.0), 0.0)
    xu, cu = c.x_values, c.x_counts
    value = (
        _dot(cu, gammaln(r + xu) - gammaln(r))
        + c.n * (r * np.log(alpha) + s * np.log(beta))
        + _dot(c.w, both)
    )
    log_alpha_T, log_beta_T = np.log(alpha + c.T), np.log(beta + c.T)
    alive_terms = (
        -r * log_alpha_T,
        -(r + c.x) * alpha / (alpha + c.T),
        -s * log_beta_T,
        -s * beta / (beta + c.T),
    )
    base = (
        r * _dot(cu, digamma(r + xu) - digamma(r)) + c.n * r * np.log(alpha),
        c.n * r,
        c.n * s * np.log(beta) + _dot(c.w, share_died),  # d log s / d log s = 1
        c.n * s,
    )
    gradient = np.array(
        [
            base[j]
            + _dot(c.w * share_alive, alive_terms[j])
            + _dot(weight, d_tail[j][data.at_t_x] - u * d_tail[j][data.at_T])
            for j in range(4)
        ]
    )
    return -value / data.n, -gradient / data.n


# ---------------------------------------------------------------- fitting


LOG_LIKELIHOODS = {
    BG_NBD: bg_nbd_log_likelihood,
    MBG_NBD: mbg_nbd_log_likelihood,
    PARETO_NBD: pareto_nbd_log_likelihood,
}
_OBJECTIVES = {
    BG_NBD: (_bg_nbd_objective, lambda counts: counts),
    MBG_NBD: (_mbg_nbd_objective, lambda counts: counts),
    PARETO_NBD: (_pareto_nbd_objective, _ParetoData.build),
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
    x, t_x, T = _as_float(frequency, recency, T)
    _check_btyd_inputs(x, t_x, T)
    n = len(x)
    scale = float(T.mean()) if n and T.mean() > 0 else 0.0
    if n == 0 or scale == 0.0 or not (x > 0).any():
        return _not_fitted(model, n, "needs customers with T > 0 and some repeat purchases")
    objective, prepare = _OBJECTIVES[model]
    # Deterministic start: shapes 1 and alpha matching the mean repeat purchase rate.
    alpha_0 = float(np.clip(T.sum() / scale / x.sum(), 1e-3, 1e3))
    start = np.log([1.0, alpha_0, 1.0, 1.0])
    counts = _Counts.build(x, t_x, T, None)
    with _thread_pool(len(counts.x)) as pool:
        counts = replace(counts, pool=pool)
        data = prepare(counts.scaled(scale))
        result = _minimise(objective, start, data, max_iterations)
        hessian = _hessian(objective, result.x, data)
    values = np.exp(result.x)
    params = tuple(
        float(v * scale) if name in TIME_PARAMETERS else float(v)
        for name, v in zip(PARAMETERS[model], values, strict=True)
    )
    log_likelihood = _dot(counts.w, LOG_LIKELIHOODS[model](params, counts.x, counts.t_x, counts.T))
    return _fit(model, params, log_likelihood, n, result, hessian)


def fit_bg_nbd(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, max_iterations: int = MAX_ITERATIONS
) -> Fit:
    """Maximum-likelihood BG/NBD fit on day-level inputs; alpha is per day."""
    return fit_purchase_model(BG_NBD, frequency, recency, T, max_iterations)


def fit_mbg_nbd(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, max_iterations: int = MAX_ITERATIONS
) -> Fit:
    """Maximum-likelihood MBG/NBD fit on day-level inputs; alpha is per day."""
    return fit_purchase_model(MBG_NBD, frequency, recency, T, max_iterations)


def fit_pareto_nbd(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, max_iterations: int = MAX_ITERATIONS
) -> Fit:
    """Maximum-likelihood Pareto/NBD fit on day-level inputs; alpha and beta per day."""
    return fit_purchase_model(PARETO_NBD, frequency, recency, T, max_iterations)


# ---------------------------------------------------------------- predictions


def p_alive(
    params: tuple[float, float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    model: str = BG_NBD,
) -> np.ndarray:
    """P(customer still active | x, t_x, T). BG/NBD and MBG/NBD: 1 / (1 + exp(d)) (FHL
    note 021; BG/NBD's is 1 when x = 0); Pareto/NBD: alive / (alive + died)."""
    x, t_x, T = _as_float(frequency, recency, T)
    if model == PARETO_NBD:
        alive, died = _pareto_log_terms(
            params, x, T, _pareto_log_tail(params, x, t_x), _pareto_log_tail(params, x, T)
        )
        return expit(alive - died)
    return expit(-_log_odds_dropped(params, x, t_x, T, _dropout_shift(model)))


def expected_purchases_if_alive(
    params: tuple[float, float, float, float],
    t: float | np.ndarray,
    frequency: np.ndarray,
    T: np.ndarray,
    model: str = BG_NBD,
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, T, still active].

    BG/NBD (FHL 2005, equation 10 / p_alive): (a + b + x - 1) / (a - 1) x [1 - ((alpha +
    T) / (alpha + T + t))^(r + x) x 2F1(r + x, b + x; a + b + x - 1; z)], z = t / (alpha +
    T + t), evaluated with Euler's transformation 2F1(A, B; C; z) = (1 - z)^(C - A - B)
    2F1(C - A, C - B; C; z), whose first two arguments (a + b - 1 - r, a - 1) do not grow
    with x: the series stays well conditioned for frequent buyers, where the direct form
    overflows. MBG/NBD: the same with b + 1 for b (Batislam et al. 2007). The expression is
    0/0 at a = 1 and continuous through it; within NEAR_ONE / 2 of 1 it is taken as the
    mean of its values at 1 -/+ NEAR_ONE (relative error about 1e-5).

    Pareto/NBD (Schmittlein et al. 1987): (r + x)(beta + T) / ((alpha + T)(s - 1)) x
    [1 - ((beta + T) / (beta + T + t))^(s - 1)]; (r + x)(beta + T) / (alpha + T) x
    log((beta + T + t) / (beta + T)) at s = 1.
    """
    x, T = _as_float(frequency, T)
    t = np.asarray(t, dtype=float)
    if model == PARETO_NBD:
        r, alpha, s, beta = params
        log_ratio = np.log(beta + T) - np.log(beta + T + t)  # <= 0
        if abs(s - 1) < 1e-10:
            bracket = -log_ratio
        else:
            bracket = -np.expm1((s - 1) * log_ratio) / (s - 1)
        return (r + x) * (beta + T) / (alpha + T) * bracket
    r, alpha, a, b = params
    b = b + _dropout_shift(model)
    if abs(a - 1) < NEAR_ONE / 2:
        below = expected_purchases_if_alive((r, alpha, 1 - NEAR_ONE, b), t, x, T)
        above = expected_purchases_if_alive((r, alpha, 1 + NEAR_ONE, b), t, x, T)
        return (below + above) / 2
    c = a + b + x - 1
    z = t / (alpha + T + t)
    log_one_minus_z = np.log(alpha + T) - np.log(alpha + T + t)
    hyper = hyp2f1(a + b - 1 - r, a - 1, c, z)
    not_yet = np.exp((a - 1) * log_one_minus_z) * hyper
    # Non-negative in exact arithmetic; the clip removes rounding noise (about 1e-16) for
    # horizons so short that the bracket cancels.
    return np.maximum(c / (a - 1) * (1 - not_yet), 0.0)


def expected_purchases(
    params: tuple[float, float, float, float],
    t: float,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    model: str = BG_NBD,
) -> np.ndarray:
    """E[repeat purchases in the next t days | x, t_x, T] (FHL 2005, equation 10)."""
    return p_alive(params, frequency, recency, T, model) * expected_purchases_if_alive(
        params, t, frequency, T, model
    )


# ---------------------------------------------------------------- Gamma-Gamma


def gamma_gamma_log_likelihood(
    params: tuple[float, float, float], frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """Each repeat customer's log-density of their mean spend (FHL 2005b, equation 3)."""
    p, q, gamma = params
    x, m = _as_float(frequency, monetary_value)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


@dataclass(frozen=True)
class _GammaGammaData:
    n: int
    x_values: np.ndarray
    x_counts: np.ndarray
    x: np.ndarray
    mx: np.ndarray  # x * m
    sum_x_log_mx: float  # sum of x * (log m + log x)
    sum_log_m: float

    @classmethod
    def build(cls, x: np.ndarray, m: np.ndarray) -> _GammaGammaData:
        x_values, x_counts = np.unique(x, return_counts=True)
        return cls(
            n=len(x),
            x_values=x_values,
            x_counts=x_counts.astype(float),
            x=x,
            mx=m * x,
            sum_x_log_mx=_dot(x, np.log(m) + np.log(x)),
            sum_log_m=float(np.log(m).sum()),
        )


def _gamma_gamma_objective(
    log_params: np.ndarray, data: _GammaGammaData
) -> tuple[float, np.ndarray]:
    p, q, gamma = np.exp(log_params)
    xu, cu = data.x_values, data.x_counts
    pxu = p * xu
    log_gamma_mx = np.log(gamma + data.mx)
    ll = (
        _dot(cu, gammaln(pxu + q) - gammaln(pxu))
        - data.n * gammaln(q)
        + data.n * q * np.log(gamma)
        + p * data.sum_x_log_mx
        - data.sum_log_m
        - _dot(p * data.x + q, log_gamma_mx)
    )
    d_p = (
        _dot(cu, xu * (digamma(pxu + q) - digamma(pxu)))
        + data.sum_x_log_mx
        - _dot(data.x, log_gamma_mx)
    )
    d_q = (
        _dot(cu, digamma(pxu + q))
        - data.n * digamma(q)
        + data.n * np.log(gamma)
        - log_gamma_mx.sum()
    )
    d_gamma = data.n * q / gamma - _dot(p * data.x + q, 1.0 / (gamma + data.mx))
    gradient = np.array([d_p * p, d_q * q, d_gamma * gamma])
    return -ll / data.n, -gradient / data.n


def fit_gamma_gamma(
    frequency: np.ndarray, monetary_value: np.ndarray, max_iterations: int = MAX_ITERATIONS
) -> Fit:
    """Maximum-likelihood Gamma-Gamma fit on the customers with x >= 1 and a positive spend.

    Customers without repeat purchases carry no spend information; repeat customers whose
    repeat purchases were all free (monetary value 0) have zero density under the model
    and are left out of the fit (they still get a prediction).
    """
    x, m = _as_float(frequency, monetary_value)
    used = (x > 0) & (m > 0)
    x, m = x[used], m[used]
    n = len(x)
    if n < 2 or np.ptp(m) == 0:
        return _not_fitted(GAMMA_GAMMA, n, "needs two or more repeat customers with varying spend")
    scale = float(m.mean())
    data = _GammaGammaData.build(x, m / scale)
    # Deterministic start: p = 1, q = 2, gamma = 1, i.e. a population mean spend of
    # p gamma / (q - 1) = 1 = the observed mean on the rescaled data.
    result = _minimise(_gamma_gamma_objective, np.log([1.0, 2.0, 1.0]), data, max_iterations)
    hessian = _hessian(_gamma_gamma_objective, result.x, data)
    p, q, gamma = np.exp(result.x)
    params = (p, q, gamma * scale)
    log_likelihood = gamma_gamma_log_likelihood(params, x, m).sum()
    return _fit(GAMMA_GAMMA, params, log_likelihood, n, result, hessian)


def expected_average_order_value(
    params: tuple[float, float, float], frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """E[mean spend per purchase | x, m_x] = p (gamma + x m_x) / (p x + q - 1) (FHL 2005b).

    For x = 0 it is the population mean p gamma / (q - 1); NaN where that is not finite
    (q <= 1).
    """
    p, q, gamma = params
    x, m = _as_float(frequency, monetary_value)
    denominator = p * x + q - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        value = p * (gamma + x * m) / denominator
    return np.where(denominator > 0, value, np.nan)


# ---------------------------------------------------------------- CLV
# ---------------------------------------------------------------- CLV


def month_end_days(months: int = MONTHS) -> np.ndarray:
    """Day offsets that end months 1..months: month m is days ((m - 1) 365/12, m 365/12]."""
    return np.arange(1, months + 1) * DAYS_PER_YEAR / MONTHS


def monthly_discounts(annual_discount_rate: float) -> np.ndarray:
    return (1 + annual_discount_rate / MONTHS) ** -np.arange(1, MONTHS + 1)


def discounted_purchases_if_alive(
    params: tuple[float, ...],
    frequency: np.ndarray,
    T: np.ndarray,
    annual_discount_rate: float,
    model: str = BG_NBD,
) -> tuple[np.ndarray, np.ndarray]:
    """Per (x, T): the discounted expected purchases of the next 12 months if alive (month
    m discounted by (1 + rate / 12)^m) and the undiscounted 365-day expected purchases."""
    cumulative = np.stack(
        [np.zeros(len(frequency))]
        + [expected_purchases_if_alive(params, h, frequency, T, model) for h in month_end_days()],
        axis=1,
    )
    discounted = np.einsum(
        "ij,j->i", np.diff(cumulative, axis=1), monthly_discounts(annual_discount_rate)
    )
    return discounted, cumulative[:, -1]


def predict(
    bg_nbd: tuple[float, float, float, float],
    gamma_gamma: tuple[float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    monetary_value: np.ndarray,
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    horizons_days: tuple[int, ...] = (30, 90, 365),
    model: str = BG_NBD,
) -> dict[str, np.ndarray]:
    """Per-customer predictions of the purchase model `model` (parameters `bg_nbd`) and
    Gamma-Gamma: p_alive, expected purchases over each horizon, expected average order
    value and clv_12m.

    clv_12m = sum over months m = 1..12 of (expected purchases in month m) x expected AOV
    x margin / (1 + annual_discount_rate / 12)^m, month m being days
    ((m - 1) 365/12, m 365/12] after the as-of date.

    The purchase terms depend on (x, T) only (the hypergeometric ones of BG/NBD and
    MBG/NBD), so they are computed once per distinct pair and spread back to the customers.
    """
    x, t_x, T, m = _as_float(frequency, recency, T, monetary_value)
    alive = p_alive(bg_nbd, x, t_x, T, model)
    (ux, uT), _, back = _distinct(x, T)
    out: dict[str, np.ndarray] = {"p_alive": alive}
    for days in horizons_days:
        if_alive = expected_purchases_if_alive(bg_nbd, float(days), ux, uT, model)
        out[f"expected_purchases_{days}d"] = alive * if_alive[back]
    discounted, _ = discounted_purchases_if_alive(bg_nbd, ux, uT, annual_discount_rate, model)
    aov = expected_average_order_value(gamma_gamma, x, m)
    out["expected_avg_order_value"] = aov
    out["clv_12m"] = np.maximum(alive * discounted[back] * aov * margin, 0.0)
    return out


# ---------------------------------------------------------------- helpers


def _dot(left: np.ndarray, right: np.ndarray) -> float:
    """Inner product without BLAS: OpenBLAS spins up threads for long vectors, which on a
    busy 2-core machine made a fit 10-30x slower than this single pass (measured)."""
    return float(np.einsum("i,i->", left, right))


def _as_float(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(array, dtype=float) for array in arrays)


def _check_btyd_inputs(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    problems = []
    if (x < 0).any():
        problems.append("frequency < 0")
    if (x != np.round(x)).any():
        problems.append("frequency not a whole number")
    if (t_x < 0).any() or (t_x > T).any():
        problems.append("recency outside [0, T]")
    if ((x == 0) & (t_x != 0)).any():
        problems.append("recency != 0 where frequency = 0")
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
        problems.append("missing or infinite values")
    if problems:
        raise ValueError(f"invalid BTYD inputs: {', '.join(problems)}")


@contextmanager
def _thread_pool(n: int) -> Iterator[ThreadPoolExecutor | None]:
    workers = min(os.cpu_count() or 1, 8)
    if n < PARALLEL_FROM or workers < 2:
        yield None
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clv") as pool:
        yield pool


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


# ---------------------------------------------------------------- the published fit


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
