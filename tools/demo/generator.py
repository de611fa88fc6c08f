"""A deterministic generator of realistic order and survey exports (the demo data).

Each customer has a hidden satisfaction score. Satisfied customers buy more
often, stay longer and answer surveys more kindly, so detractors churn more
than promoters, as in real data. Customers are acquired through channels
(including `referral`) with growth and a year-end peak; while alive they buy as
a Poisson process, then churn silently. About 5 % of orders are cancelled and
3 % refunded. Files are written one per day, as a shop platform exports them,
in the canonical landing contract (docs/landing-contract.md). Survey
invitations (`survey_sends`) cover every answered survey plus unanswered ones,
so that about 35 % are answered; they come from their own random stream.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
# repeat_rate for five orders per customer (200,000 customers, seed 42: 1,006,081 orders).
FIVE_ORDERS_RATE = 0.67
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

    @classmethod
    def for_orders(cls, orders: int, seed: int = 42, **fields) -> DemoSpec:
        """A spec sized for about `orders` orders, five per customer (1M orders: 200k)."""
        customers = max(50, orders // 5)
        return cls(customers=customers, seed=seed, repeat_rate=FIVE_ORDERS_RATE, **fields)


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
    rate = spec.repeat_rate * rng.gamma(2.0, 1 / 2.0, size=n) * np.exp(0.35 * satisfaction) / 30
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
    customer_id = _ids("C", customer_idx + 1, 7)
    # Sorted by (ordered_at, customer_id) before the text columns are built (stable).
    order = _stable_order(ordered_at.to_numpy(), customer_id)
    orders = pd.DataFrame(
        {
            "ordered_at": ordered_at[order],
            "customer_id": _text(customer_id.take(order)),
            "amount": amount[order],
            "status": status[order],
            "currency": "USD",
            "channel": order_channel[order],
            "country": country[customer_idx[order]],
        }
    )
    orders.insert(0, "order_id", _text(_ids("O", np.arange(1, len(orders) + 1), 8)))

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
            "customer_id": _text(pa.array(orders["customer_id"]).take(sampled)),
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
    surveys.insert(0, "response_id", _text(_ids("R", np.arange(1, len(surveys) + 1), 8)))
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
            "customer_id": _text(pa.array(orders["customer_id"]).take(sent)),
        }
    )
    sends = sends[sends["sent_at"] < pd.Timestamp(spec.end + timedelta(days=1))]
    sends = sends.take(
        _stable_order(sends["sent_at"].to_numpy(), pa.array(sends["customer_id"]))
    ).reset_index(drop=True)
    sends.insert(0, "send_id", _text(_ids("S", np.arange(1, len(sends) + 1), 8)))
    return sends


def _ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """Identifiers such as C0000042 (prefix + zero-padded number), built without a loop."""
    text = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), digits, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def _text(values: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """Arrow strings as a pandas `str` column."""
    return values.to_pandas().array


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


def _write_daily(
    frame: pd.DataFrame, time_column: str, folder: Path, prefix: str
) -> dict[str, str]:
    """One CSV per day of `time_column` (`<prefix>_<YYYY-MM-DD>.csv`), rows in frame order;
    returns {file name: SHA-256 of its content}.

    The lines are formatted column by column in Arrow (as pandas' `to_csv` writes them:
    timestamps as ISO 8601 UTC, numbers as Python prints them, -1 scores as empty
    cells, minimal quoting) and each day's lines are written as one block.
    """
    folder.mkdir(parents=True, exist_ok=True)
    at = frame[time_column].to_numpy().astype("datetime64[s]")
    day = at.astype("datetime64[D]")
    order = np.argsort(day, kind="stable")  # groupby(day): each day's rows in frame order
    fields = [_csv_field(frame[name], at) for name in frame.columns]
    text = partial(pa.scalar, type=pa.large_string())
    row = pc.binary_join_element_wise(*fields, text(","))
    lines = pc.binary_join_element_wise(row, text("\n"), text("")).take(order)
    data = lines.buffers()[2]
    offsets = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset :]
    header = (",".join(frame.columns) + "\n").encode()
    days, starts = np.unique(day[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    written = {}
    for value, first, last in zip(days, starts, ends, strict=True):
        name = f"{prefix}_{value}.csv"
        body = memoryview(data)[offsets[first] : offsets[last]]
        with (folder / name).open("wb") as handle:
            handle.write(header)
            handle.write(body)
        written[name] = hashlib.sha256(header + body).hexdigest()
    return written


def _csv_field(column: pd.Series, at: np.ndarray) -> pa.LargeStringArray:
    """A column's CSV text (large strings: a whole export can exceed 2 GB)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        # "2024-01-15 10:23:45" (Arrow's cast, far faster than strftime) -> ISO 8601 UTC
        text = pc.replace_substring(
            pc.cast(pa.array(at), pa.string()), " ", "T", max_replacements=1
        )
        text = pc.binary_join_element_wise(text, "Z", "")
    elif pd.api.types.is_float_dtype(column):
        text = _decimal_text(column.to_numpy())
    elif pd.api.types.is_integer_dtype(column):
        values = column.to_numpy()
        # -1 marks "question not asked" (csat_score, ces_score): an empty cell in the export
        text = pc.cast(pa.array(values), pa.string())
        if column.name in ("csat_score", "ces_score"):
            text = pc.if_else(pa.array(values >= 0), text, "")
    else:
        text = pa.array(column, pa.string())
        needs_quotes = pc.match_substring_regex(text, '[,"\r\n]')
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(needs_quotes, quoted, text)
    return pc.cast(text, pa.large_string())


def _decimal_text(values: np.ndarray) -> pa.Array:
    """Amounts rounded to cents as Python prints them: 41.88, 41.8, 41.0."""
    cents = np.rint(values * 100).astype(np.int64)
    if not np.array_equal(cents / 100, values):
        raise ValueError("the demo writes amounts rounded to cents only")
    whole = pc.cast(pa.array(np.sign(cents) * (np.abs(cents) // 100)), pa.string())
    fraction = np.abs(cents) % 100
    decimals = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 2, "0")
    decimals = pc.if_else(
        pa.array(fraction % 10 == 0), pc.utf8_slice_codeunits(decimals, 0, 1), decimals
    )
    return pc.binary_join_element_wise(whole, decimals, ".")


def write_landing(landing_dir: Path, spec: DemoSpec) -> dict[str, int]:
    """Write the demo exports (one file per day and source) and the demo marker, which
    lists every file written with its SHA-256 (ingestion names any other file)."""
    orders, surveys = generate(spec)
    sends = generate_sends(spec, orders)
    files = {}
    for frame, column, folder, prefix in (
        (orders, "ordered_at", "orders", "orders"),
        (surveys, "responded_at", "surveys", "responses"),
        (sends, "sent_at", "survey_sends", "sends"),
    ):
        written = _write_daily(frame, column, landing_dir / folder, prefix)
        files[folder] = {f"{folder}/{name}": sha for name, sha in written.items()}
    summary = {
        "customers": spec.customers,
        "orders": len(orders),
        "survey_responses": len(surveys),
        "survey_sends": len(sends),
        "order_files": len(files["orders"]),
        "survey_files": len(files["surveys"]),
        "send_files": len(files["survey_sends"]),
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
