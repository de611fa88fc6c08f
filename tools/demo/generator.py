"""A deterministic generator of realistic order and survey exports (the demo data).

Each customer has a hidden satisfaction score. Satisfied customers buy more
often, stay longer and answer surveys more kindly, so detractors churn more
than promoters, as in real data. Customers are acquired through channels
(channels.py: growth, a year-end peak, a shifting channel mix) and prefer a product
category (catalogue.py); both change how long they stay and how often they buy
(referral customers stay longer, paid social churns faster, subscribers stay). While
alive they buy as a Poisson process after their first order, then churn silently.
About 5 % of orders are cancelled and 3 % refunded. Files are written one per day,
as a shop platform exports them, in the canonical landing contract
(docs/landing-contract.md). Survey invitations (`survey_sends`) cover every answered
survey plus unanswered ones, so that about 35 % are answered; the orders' line items
(`order_lines`, lines.py) and the marketing spend (`marketing_spend`, spend.py) come
from their own random streams, as the sends do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from customer_marts.config import DEMO_MARKER
from tools.demo.catalogue import CATEGORY_LIFETIME, CATEGORY_REPEAT, preferred_categories
from tools.demo.channels import (
    CHANNEL_LIFETIME,
    CHANNEL_REPEAT,
    CHANNELS,
    SEASONALITY,
    acquisition_share,
    draw_channels,
    history_months,
)
from tools.demo.export import text_column, write_files
from tools.demo.lines import generate_lines
from tools.demo.spend import generate_spend

log = logging.getLogger(__name__)

REPEAT_CHANNELS = np.array(["organic", "email", "direct", "app"])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "NL", "CA"])
COUNTRY_WEIGHTS = np.array([0.45, 0.17, 0.14, 0.10, 0.06, 0.08])
# Survey invitations (survey_sends): the share answered, and their own random stream.
RESPONSE_RATE = 0.35
# repeat_rate for five orders per customer (200,000 customers, seed 42: 1,001,620 orders).
FIVE_ORDERS_RATE = 0.68
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
    # Scales every customer's repeat-purchase rate: 1.0 (the demo) gives about seven
    # orders per customer over two years, FIVE_ORDERS_RATE about five.
    repeat_rate: float = 1.0

    @property
    def days(self) -> int:
        """The days of the history, its first and last day included."""
        return (self.end - self.start).days + 1

    @classmethod
    def for_orders(cls, orders: int, seed: int = 42, **fields) -> DemoSpec:
        """A spec sized for about `orders` orders, five per customer (1M orders: 200k)."""
        customers = max(50, orders // 5)
        return cls(customers=customers, seed=seed, repeat_rate=FIVE_ORDERS_RATE, **fields)


def generate(spec: DemoSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (orders, survey responses) as canonical export frames."""
    rng = np.random.default_rng(spec.seed)
    days = spec.days
    n = spec.customers

    # Acquisition: growing over time, peaking at year end, through the day's channel mix.
    acquired_day = np.sort(rng.choice(days, size=n, p=acquisition_share(spec)))
    satisfaction = rng.normal(size=n)
    lifetime_days = rng.exponential(260 * np.exp(0.55 * satisfaction))
    rate = spec.repeat_rate * rng.gamma(2.0, 1 / 2.0, size=n) * np.exp(0.35 * satisfaction) / 30
    mean_amount = rng.lognormal(np.log(60), 0.45, size=n)
    channel_number = draw_channels(rng, spec, acquired_day)
    channel = CHANNELS[channel_number]
    country = rng.choice(COUNTRIES, size=n, p=COUNTRY_WEIGHTS)
    category = preferred_categories(spec)  # its own stream
    lifetime_days *= CHANNEL_LIFETIME[channel_number] * CATEGORY_LIFETIME[category]
    rate *= CHANNEL_REPEAT[channel_number] * CATEGORY_REPEAT[category]

    # Repeat purchases: Poisson while alive after the first order, thinned by seasonality
    # (so the first order is the earliest and keeps the acquisition channel).
    first_at = acquired_day + rng.uniform(0, 1, n)
    alive_until = np.minimum(first_at + lifetime_days, days - 1e-9)
    span = np.maximum(alive_until - first_at, 0)
    repeats = rng.poisson(rate * span * SEASONALITY.max())
    owner = np.repeat(np.arange(n), repeats)
    at = first_at[owner] + rng.uniform(0, 1, owner.size) * span[owner]
    at_month = history_months(spec)[np.floor(at).astype(np.int64)]
    keep = rng.uniform(size=at.size) < SEASONALITY[at_month - 1] / SEASONALITY.max()
    owner, at = owner[keep], at[keep]

    customer_idx = np.concatenate([np.arange(n), owner])
    day_float = np.concatenate([first_at, at])
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
    customer_id = _ids("C", customer_idx + 1, 7)
    # Sorted by (ordered_at, customer_id) before the text columns are built (stable).
    order = _stable_order(ordered_at.to_numpy(), customer_id)
    orders = pd.DataFrame(
        {
            "ordered_at": ordered_at[order],
            "customer_id": text_column(customer_id.take(order)),
            "amount": amount[order],
            "status": status[order],
            "currency": "USD",
            "channel": order_channel[order],
            "country": country[customer_idx[order]],
        }
    )
    orders.insert(0, "order_id", text_column(_ids("O", np.arange(1, len(orders) + 1), 8)))

    # Surveys: a share of completed orders gets a response 1-10 days later.
    sampled = _sampled_completed(orders, spec)
    customer_number = customer_idx[order][sampled]
    mood = satisfaction[customer_number] + rng.normal(0, 0.6, len(sampled))
    nps = np.clip(np.round(7.6 + 1.9 * mood), 0, 10).astype(int)
    csat = np.clip(np.round(3.9 + 0.9 * mood), 1, 5).astype(int)
    ces = np.clip(np.round(5.0 + 1.2 * mood), 1, 7).astype(int)
    responded_at = orders["ordered_at"].to_numpy()[sampled] + pd.to_timedelta(
        rng.integers(3_600, 10 * 86_400, len(sampled)), "s"
    )
    category = np.where(nps >= 9, 2, np.where(nps >= 7, 1, 0))  # COMMENTS' order
    comments = np.array([text for texts in COMMENTS.values() for text in texts], dtype=object)
    comment = comments[category * 3 + rng.integers(0, 3, len(sampled))]
    surveys = pd.DataFrame(
        {
            "responded_at": responded_at,
            "customer_id": text_column(pa.array(orders["customer_id"]).take(sampled)),
            "nps_score": nps,
            "csat_score": np.where(rng.uniform(size=len(sampled)) < 0.7, csat, -1),
            "ces_score": np.where(rng.uniform(size=len(sampled)) < 0.5, ces, -1),
            "comment": pd.array(comment, dtype="str"),
            "channel": rng.choice(["email", "in_app"], size=len(sampled), p=[0.7, 0.3]),
        }
    )
    surveys = surveys[surveys["responded_at"] < pd.Timestamp(spec.end + timedelta(days=1))]
    surveys = surveys.take(
        _stable_order(surveys["responded_at"].to_numpy(), pa.array(surveys["customer_id"]))
    ).reset_index(drop=True)
    surveys.insert(0, "response_id", text_column(_ids("R", np.arange(1, len(surveys) + 1), 8)))
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
    completed = np.flatnonzero((orders["status"] == "completed").to_numpy())
    answered = _sampled_completed(orders, spec)  # the rows generate() sampled
    unanswered_rows = np.ones(len(orders), bool)
    unanswered_rows[answered] = False
    others = completed[unanswered_rows[completed]]
    unanswered_share = spec.survey_share * (1 / RESPONSE_RATE - 1) / (1 - spec.survey_share)
    unanswered = others[rng.uniform(size=len(others)) < unanswered_share]
    sent = np.concatenate([answered, unanswered])
    sends = pd.DataFrame(
        {
            "sent_at": orders["ordered_at"].to_numpy()[sent] + pd.Timedelta(minutes=30),
            "customer_id": text_column(pa.array(orders["customer_id"]).take(sent)),
        }
    )
    sends = sends[sends["sent_at"] < pd.Timestamp(spec.end + timedelta(days=1))]
    sends = sends.take(
        _stable_order(sends["sent_at"].to_numpy(), pa.array(sends["customer_id"]))
    ).reset_index(drop=True)
    sends.insert(0, "send_id", text_column(_ids("S", np.arange(1, len(sends) + 1), 8)))
    return sends


def _ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """Identifiers such as C0000042 (prefix + zero-padded number), built without a loop."""
    text = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), digits, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def _stable_order(at: np.ndarray, customer_id) -> np.ndarray:
    """Row order of a stable sort by (timestamp, customer id), as pandas' sort_values."""
    table = pa.table({"at": pa.array(at), "customer_id": pa.array(customer_id)})
    keys = [("at", "ascending"), ("customer_id", "ascending")]
    return pc.sort_indices(table, sort_keys=keys).to_numpy()


def _sampled_completed(orders: pd.DataFrame, spec: DemoSpec) -> np.ndarray:
    """Rows (positions) of the completed orders followed by a survey response: a sample of
    `survey_share` of them, as `completed.sample(frac=..., random_state=seed)` draws it."""
    completed = np.flatnonzero((orders["status"] == "completed").to_numpy())
    picked = pd.RangeIndex(len(completed)).to_series()
    return completed[picked.sample(frac=spec.survey_share, random_state=spec.seed).to_numpy()]


def write_landing(landing_dir: Path, spec: DemoSpec) -> dict[str, int]:
    """Write the demo exports (one file per day and source; the marketing spend one per
    month) and the demo marker, which lists every file written with its SHA-256
    (ingestion names any other file)."""
    orders, surveys = generate(spec)
    sends = generate_sends(spec, orders)
    lines = generate_lines(spec, orders)
    spend = generate_spend(spec)
    ordered_at = orders["ordered_at"].to_numpy()
    files = {}
    for frame, at, folder, prefix, unit in (
        (orders, ordered_at, "orders", "orders", "D"),
        (surveys, surveys["responded_at"].to_numpy(), "surveys", "responses", "D"),
        (sends, sends["sent_at"].to_numpy(), "survey_sends", "sends", "D"),
        (lines, ordered_at[lines.index.to_numpy()], "order_lines", "order_lines", "D"),
        (
            spend,
            spend["spent_on"].to_numpy().astype("datetime64[D]"),
            "marketing_spend",
            "spend",
            "M",
        ),
    ):
        written = write_files(frame, at, landing_dir / folder, prefix, unit)
        files[folder] = {f"{folder}/{name}": sha for name, sha in written.items()}
    summary = {
        "customers": spec.customers,
        "orders": len(orders),
        "survey_responses": len(surveys),
        "survey_sends": len(sends),
        "order_lines": len(lines),
        "marketing_spend_rows": len(spend),
        "order_files": len(files["orders"]),
        "survey_files": len(files["surveys"]),
        "send_files": len(files["survey_sends"]),
        "order_line_files": len(files["order_lines"]),
        "spend_files": len(files["marketing_spend"]),
    }
    marker = {
        "last_date": spec.end.isoformat(),
        "seed": spec.seed,
        **summary,
        "files": {name: sha for by_folder in files.values() for name, sha in by_folder.items()},
    }
    (landing_dir / DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    log.info("demo data in %s: %s", landing_dir, summary)
    return summary
