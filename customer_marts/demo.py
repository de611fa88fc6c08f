"""A deterministic generator of realistic order and survey exports (the demo data).

Each customer has a hidden satisfaction score. Satisfied customers buy more
often, stay longer and answer surveys more kindly, so detractors churn more
than promoters, as in real data. Customers are acquired through channels
(including `referral`) with growth and a year-end peak; while alive they buy as
a Poisson process, then churn silently. About 5 % of orders are cancelled and
3 % refunded. Files are written one per day, as a shop platform exports them,
in the canonical landing contract (README, "Landing contract"). Survey
invitations (`survey_sends`) cover every answered survey plus unanswered ones,
so that about 35 % are answered; they come from their own random stream.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from customer_marts.config import DEMO_MARKER

log = logging.getLogger(__name__)

CHANNELS = np.array(["organic", "paid_search", "social", "email", "referral"])
CHANNEL_WEIGHTS = np.array([0.34, 0.24, 0.16, 0.10, 0.16])
REPEAT_CHANNELS = np.array(["organic", "email", "direct", "app"])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "NL", "CA"])
COUNTRY_WEIGHTS = np.array([0.45, 0.17, 0.14, 0.10, 0.06, 0.08])
# Relative demand by calendar month (index 0 = January): a year-end peak.
SEASONALITY = np.array([0.8, 0.75, 0.85, 0.9, 0.95, 0.9, 0.85, 0.9, 0.95, 1.0, 1.25, 1.4])
# Survey invitations (survey_sends): the share answered, and their own random stream.
RESPONSE_RATE = 0.35
SENDS_STREAM = 1
COMMENTS = {
    "detractor": ["Delivery was late.", "Support never answered.", "Item broke quickly."],
    "passive": ["Fine, nothing special.", "OK but pricey.", ""],
    "promoter": ["Love it!", "Great service, will buy again.", "Fast delivery."],
}


@dataclass(frozen=True)
class DemoSpec:
    customers: int = 5_000
    start: date = date(2024, 1, 1)
    end: date = date(2025, 12, 31)
    seed: int = 42
    survey_share: float = 0.12  # share of completed orders followed by a survey response

    @classmethod
    def for_orders(cls, orders: int, seed: int = 42) -> DemoSpec:
        """A spec sized for about `orders` orders (about five per customer)."""
        return cls(customers=max(50, orders // 5), seed=seed)


def generate(spec: DemoSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (orders, survey responses) as canonical export frames."""
    rng = np.random.default_rng(spec.seed)
    days = (spec.end - spec.start).days + 1
    n = spec.customers

    # Acquisition: growing over time, peaking at year end.
    day_index = np.arange(days)
    months = (pd.Timestamp(spec.start) + pd.to_timedelta(day_index, "D")).month.to_numpy()
    weight = (1 + day_index / days) * SEASONALITY[months - 1]
    acquired_day = np.sort(rng.choice(days, size=n, p=weight / weight.sum()))
    satisfaction = rng.normal(size=n)
    lifetime_days = rng.exponential(260 * np.exp(0.55 * satisfaction))
    rate = rng.gamma(2.0, 1 / 2.0, size=n) * np.exp(0.35 * satisfaction) / 30  # per day
    mean_amount = rng.lognormal(np.log(60), 0.45, size=n)
    channel = rng.choice(CHANNELS, size=n, p=CHANNEL_WEIGHTS)
    country = rng.choice(COUNTRIES, size=n, p=COUNTRY_WEIGHTS)

    # Repeat purchases: Poisson while alive, thinned by seasonality.
    alive_until = np.minimum(acquired_day + lifetime_days, days - 1e-9)
    span = np.maximum(alive_until - acquired_day, 0)
    repeats = rng.poisson(rate * span * SEASONALITY.max())
    owner = np.repeat(np.arange(n), repeats)
    at = acquired_day[owner] + rng.uniform(0, 1, owner.size) * span[owner]
    at_month = (pd.Timestamp(spec.start) + pd.to_timedelta(np.floor(at), "D")).month.to_numpy()
    keep = rng.uniform(size=at.size) < SEASONALITY[at_month - 1] / SEASONALITY.max()
    owner, at = owner[keep], at[keep]

    customer_idx = np.concatenate([np.arange(n), owner])
    day_float = np.concatenate([acquired_day + rng.uniform(0, 1, n), at])
    is_first = np.concatenate([np.ones(n, bool), np.zeros(owner.size, bool)])
    order_count = customer_idx.size
    status = rng.choice(
        ["completed", "cancelled", "refunded"], size=order_count, p=[0.92, 0.05, 0.03]
    )
    status[is_first] = "completed"  # acquisition is a completed purchase
    amount = np.round(mean_amount[customer_idx] * rng.lognormal(0, 0.3, order_count), 2)
    order_channel = np.where(
        is_first, channel[customer_idx], rng.choice(REPEAT_CHANNELS, size=order_count)
    )
    ordered_at = pd.Timestamp(spec.start) + pd.to_timedelta(np.floor(day_float * 86_400), "s")
    orders = pd.DataFrame(
        {
            "ordered_at": ordered_at,
            "customer_id": [f"C{i + 1:07d}" for i in customer_idx],
            "amount": amount,
            "status": status,
            "currency": "USD",
            "channel": order_channel,
            "country": country[customer_idx],
        }
    ).sort_values(["ordered_at", "customer_id"], kind="stable", ignore_index=True)
    orders.insert(0, "order_id", [f"O{i + 1:08d}" for i in range(len(orders))])

    # Surveys: a share of completed orders gets a response 1-10 days later.
    completed = orders[orders["status"] == "completed"]
    sampled = completed.sample(frac=spec.survey_share, random_state=spec.seed)
    customer_number = sampled["customer_id"].str[1:].astype(int).to_numpy() - 1
    mood = satisfaction[customer_number] + rng.normal(0, 0.6, len(sampled))
    nps = np.clip(np.round(7.6 + 1.9 * mood), 0, 10).astype(int)
    csat = np.clip(np.round(3.9 + 0.9 * mood), 1, 5).astype(int)
    ces = np.clip(np.round(5.0 + 1.2 * mood), 1, 7).astype(int)
    responded_at = sampled["ordered_at"].to_numpy() + pd.to_timedelta(
        rng.integers(3_600, 10 * 86_400, len(sampled)), "s"
    )
    category = np.where(nps >= 9, "promoter", np.where(nps >= 7, "passive", "detractor"))
    comment = [
        COMMENTS[c][k % 3] for c, k in zip(category, rng.integers(0, 3, len(sampled)), strict=True)
    ]
    surveys = pd.DataFrame(
        {
            "responded_at": responded_at,
            "customer_id": sampled["customer_id"].to_numpy(),
            "nps_score": nps,
            "csat_score": np.where(rng.uniform(size=len(sampled)) < 0.7, csat, -1),
            "ces_score": np.where(rng.uniform(size=len(sampled)) < 0.5, ces, -1),
            "comment": comment,
            "channel": rng.choice(["email", "in_app"], size=len(sampled), p=[0.7, 0.3]),
        }
    )
    surveys = surveys[surveys["responded_at"] < pd.Timestamp(spec.end + timedelta(days=1))]
    surveys = surveys.sort_values(["responded_at", "customer_id"], ignore_index=True)
    surveys.insert(0, "response_id", [f"R{i + 1:08d}" for i in range(len(surveys))])
    return orders, surveys


def generate_sends(spec: DemoSpec, orders: pd.DataFrame) -> pd.DataFrame:
    """Survey invitations (the `survey_sends` export) for the orders of `generate`.

    Every completed order sampled for a response got an invitation 30 minutes after
    the order (responses come at least an hour after it); further completed orders
    got one that was never answered, so that about RESPONSE_RATE of invitations are
    answered. Sends draw from their own random stream, so the orders and responses
    are the same with or without them.
    """
    rng = np.random.default_rng([spec.seed, SENDS_STREAM])
    completed = orders[orders["status"] == "completed"]
    answered = completed.sample(frac=spec.survey_share, random_state=spec.seed)  # as generate()
    others = completed.drop(index=answered.index)
    unanswered_share = spec.survey_share * (1 / RESPONSE_RATE - 1) / (1 - spec.survey_share)
    unanswered = others[rng.uniform(size=len(others)) < unanswered_share]
    sent = pd.concat([answered, unanswered])
    sends = pd.DataFrame(
        {
            "sent_at": sent["ordered_at"].to_numpy() + pd.Timedelta(minutes=30),
            "customer_id": sent["customer_id"].to_numpy(),
        }
    )
    sends = sends[sends["sent_at"] < pd.Timestamp(spec.end + timedelta(days=1))]
    sends = sends.sort_values(["sent_at", "customer_id"], kind="stable", ignore_index=True)
    sends.insert(0, "send_id", [f"S{i + 1:08d}" for i in range(len(sends))])
    return sends


def _write_daily(frame: pd.DataFrame, time_column: str, folder: Path, prefix: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    day = out[time_column].dt.strftime("%Y-%m-%d")
    out[time_column] = out[time_column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    for column in ("csat_score", "ces_score"):
        if column in out:  # -1 marks "question not asked": an empty cell in the export
            out[column] = out[column].astype(str).where(out[column] >= 0, "")
    files = 0
    for value, part in out.groupby(day, sort=True):
        part.to_csv(folder / f"{prefix}_{value}.csv", index=False)
        files += 1
    return files


def write_landing(landing_dir: Path, spec: DemoSpec) -> dict[str, int]:
    """Write the demo exports (one file per day and source) and the demo marker."""
    orders, surveys = generate(spec)
    order_files = _write_daily(orders, "ordered_at", landing_dir / "orders", "orders")
    survey_files = _write_daily(surveys, "responded_at", landing_dir / "surveys", "responses")
    sends = generate_sends(spec, orders)
    send_files = _write_daily(sends, "sent_at", landing_dir / "survey_sends", "sends")
    summary = {
        "customers": spec.customers,
        "orders": len(orders),
        "survey_responses": len(surveys),
        "survey_sends": len(sends),
        "order_files": order_files,
        "survey_files": survey_files,
        "send_files": send_files,
    }
    marker = {"last_date": spec.end.isoformat(), "seed": spec.seed, **summary}
    (landing_dir / DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    log.info("demo data in %s: %s", landing_dir, summary)
    return summary
