"""The demo's acquisition channels: when customers arrive, through which channel, how
long each channel's customers stay, and what the paid channels cost.

Acquisition grows over the history and peaks at year end; the channel mix shifts
(paid social and affiliates grow, organic shrinks). Referral and e-mail customers stay
longer and come back more often, paid social's churn fastest. The marketing-spend
export (spend.py) is shaped on the expected new customers of each paid channel, so that
its cost per acquired customer is about CAC; `display` spends a fixed budget and brings
almost nobody.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tools.demo.generator import DemoSpec

CHANNELS = np.array(
    ["organic", "paid_search", "social", "email", "referral", "affiliate", "display"]
)
# Share of new customers by channel at the start of the history, and how much each
# weight grows (+) or shrinks (-) by its end (linearly in between).
CHANNEL_WEIGHTS = np.array([0.32, 0.22, 0.13, 0.10, 0.14, 0.08, 0.001])
CHANNEL_TREND = np.array([-0.3, 0.0, 0.8, 0.0, 0.2, 0.5, 0.0])
# How the channel scales a customer's lifetime and repeat-purchase rate.
CHANNEL_LIFETIME = np.array([1.0, 0.9, 0.55, 1.3, 1.5, 0.8, 0.7])
CHANNEL_REPEAT = np.array([1.0, 0.95, 0.8, 1.2, 1.2, 0.9, 0.9])
# Relative demand by calendar month (index 0 = January): a year-end peak.
SEASONALITY = np.array([0.8, 0.75, 0.85, 0.9, 0.95, 0.9, 0.85, 0.9, 0.95, 1.0, 1.25, 1.4])

# Paid channels: cost per acquired customer the spend is shaped for (USD), and the
# campaigns sharing the channel's spend.
CAC = {"paid_search": 90.0, "social": 130.0, "affiliate": 60.0}
CAMPAIGNS = {
    "paid_search": (("brand", 0.3), ("generic", 0.7)),
    "social": (("prospecting", 0.75), ("retargeting", 0.25)),
    "affiliate": (("partners", 1.0),),
    "display": (("awareness", 1.0),),
}
# display: a fixed budget, USD a day for every 1,000 customers of the demo.
DISPLAY_BUDGET = 5.0


def history_months(spec: DemoSpec) -> np.ndarray:
    """The calendar month (1-12) of each day of the history."""
    return (pd.Timestamp(spec.start) + pd.to_timedelta(np.arange(spec.days), "D")).month.to_numpy()


def acquisition_share(spec: DemoSpec) -> np.ndarray:
    """The share of all customers acquired on each day of the history (sums to 1)."""
    weight = (1 + np.arange(spec.days) / spec.days) * SEASONALITY[history_months(spec) - 1]
    return weight / weight.sum()


def channel_mix(spec: DemoSpec) -> np.ndarray:
    """(days, channels): each day's share of new customers by channel (rows sum to 1)."""
    weight = CHANNEL_WEIGHTS * (1 + np.outer(np.arange(spec.days) / spec.days, CHANNEL_TREND))
    return weight / weight.sum(axis=1, keepdims=True)


def draw_channels(rng: np.random.Generator, spec: DemoSpec, acquired_day: np.ndarray) -> np.ndarray:
    """Each customer's channel (an index into CHANNELS) from their day's channel mix."""
    cumulative = np.cumsum(channel_mix(spec), axis=1)
    uniform = rng.uniform(size=acquired_day.size)
    channel = np.zeros(acquired_day.size, np.int64)
    for column in range(len(CHANNELS) - 1):  # one pass per channel: memory O(customers)
        channel += uniform >= cumulative[acquired_day, column]
    return channel
