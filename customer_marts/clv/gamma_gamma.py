"""Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the spend of a customer's repeat
purchases averages to nu ~ Gamma(q, gamma), each purchase ~ Gamma(p, nu); its
log-likelihood, the data it is fitted on, and the expected average order value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from customer_marts.clv.models import as_float, dot

log = logging.getLogger(__name__)


def gamma_gamma_log_likelihood(
    params: tuple[float, float, float], frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """Each repeat customer's log-density of their mean spend (FHL 2005b, equation 3)."""
    p, q, gamma = params
    x, m = as_float(frequency, monetary_value)
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
class GammaGammaData:
    n: int
    x_values: np.ndarray
    x_counts: np.ndarray
    x: np.ndarray
    mx: np.ndarray  # x * m
    sum_x_log_mx: float  # sum of x * (log m + log x)
    sum_log_m: float

    @classmethod
    def build(cls, x: np.ndarray, m: np.ndarray) -> GammaGammaData:
        x_values, x_counts = np.unique(x, return_counts=True)
        return cls(
            n=len(x),
            x_values=x_values,
            x_counts=x_counts.astype(float),
            x=x,
            mx=m * x,
            sum_x_log_mx=dot(x, np.log(m) + np.log(x)),
            sum_log_m=float(np.log(m).sum()),
        )


def gamma_gamma_objective(log_params: np.ndarray, data: GammaGammaData) -> tuple[float, np.ndarray]:
    p, q, gamma = np.exp(log_params)
    xu, cu = data.x_values, data.x_counts
    pxu = p * xu
    log_gamma_mx = np.log(gamma + data.mx)
    ll = (
        dot(cu, gammaln(pxu + q) - gammaln(pxu))
        - data.n * gammaln(q)
        + data.n * q * np.log(gamma)
        + p * data.sum_x_log_mx
        - data.sum_log_m
        - dot(p * data.x + q, log_gamma_mx)
    )
    d_p = (
        dot(cu, xu * (digamma(pxu + q) - digamma(pxu)))
        + data.sum_x_log_mx
        - dot(data.x, log_gamma_mx)
    )
    d_q = (
        dot(cu, digamma(pxu + q))
        - data.n * digamma(q)
        + data.n * np.log(gamma)
        - log_gamma_mx.sum()
    )
    d_gamma = data.n * q / gamma - dot(p * data.x + q, 1.0 / (gamma + data.mx))
    gradient = np.array([d_p * p, d_q * q, d_gamma * gamma])
    return -ll / data.n, -gradient / data.n


def expected_average_order_value(
    params: tuple[float, float, float], frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """E[mean spend per purchase | x, m_x] = p (gamma + x m_x) / (p x + q - 1) (FHL 2005b).

    For x = 0 it is the population mean p gamma / (q - 1); NaN where that is not finite
    (q <= 1).
    """
    p, q, gamma = params
    x, m = as_float(frequency, monetary_value)
    denominator = p * x + q - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        value = p * (gamma + x * m) / denominator
    return np.where(denominator > 0, value, np.nan)
