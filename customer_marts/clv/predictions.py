"""Predictions of the fitted models: the probability a customer is alive, expected
purchases, and the discounted CLV over the next months.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import expit, hyp2f1

from customer_marts.clv.gamma_gamma import expected_average_order_value
from customer_marts.clv.models import (
    BG_NBD,
    PARETO_NBD,
    TailPairs,
    as_float,
    distinct,
    dropout_shift,
    log_odds_dropped,
    pareto_log_terms,
)

log = logging.getLogger(__name__)


DAYS_PER_YEAR = 365.0
MONTHS = 12
NEAR_ONE = 1e-4  # see expected_purchases_if_alive


def p_alive(
    params: tuple[float, float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    model: str = BG_NBD,
    pairs: TailPairs | None = None,
) -> np.ndarray:
    """P(customer still active | x, t_x, T). BG/NBD and MBG/NBD: 1 / (1 + exp(d)) (FHL
    note 021; BG/NBD's is 1 when x = 0); Pareto/NBD: alive / (alive + died), its
    hypergeometric tails once per distinct pair (`pairs` of these rows, when the caller
    evaluates many parameter sets on the same rows)."""
    x, t_x, T = as_float(frequency, recency, T)
    if model == PARETO_NBD:
        pairs = pairs or TailPairs.build(x, t_x, T)
        alive, died = pareto_log_terms(params, x, T, *pairs.log_tails(params))
        return expit(alive - died)
    return expit(-log_odds_dropped(params, x, t_x, T, dropout_shift(model)))


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
    x, T = as_float(frequency, T)
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
    b = b + dropout_shift(model)
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

    p_alive depends on (x, t_x, T) and the purchase terms on (x, T) only (the
    hypergeometric ones of BG/NBD and MBG/NBD), so they are computed once per distinct
    combination or pair and spread back to the customers.
    """
    x, t_x, T, m = as_float(frequency, recency, T, monetary_value)
    (cx, ct_x, cT), _, combo = distinct(x, t_x, T)
    (ux, uT), _, pair = distinct(cx, cT)
    back = pair[combo]
    alive = p_alive(bg_nbd, cx, ct_x, cT, model)[combo]
    out: dict[str, np.ndarray] = {"p_alive": alive}
    for days in horizons_days:
        if_alive = expected_purchases_if_alive(bg_nbd, float(days), ux, uT, model)
        out[f"expected_purchases_{days}d"] = alive * if_alive[back]
    discounted, _ = discounted_purchases_if_alive(bg_nbd, ux, uT, annual_discount_rate, model)
    aov = expected_average_order_value(gamma_gamma, x, m)
    out["expected_avg_order_value"] = aov
    out["clv_12m"] = np.maximum(alive * discounted[back] * aov * margin, 0.0)
    return out
