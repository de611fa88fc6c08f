"""Line items of the demo orders (the `order_lines` export).

Every order, whatever its status, has 1-4 lines: as many as bring their list prices
closest to the order's amount. The first
line is from the customer's preferred category, each further one too with probability
PREFERRED_SHARE, else from any category; within a category the popular products sell
most, and one order never holds a product twice. The order's amount is split over its
lines in proportion to quantity times list price, in whole cents, the last line taking
what rounding left, so that the lines add up to the order's amount exactly; each line's
unit price is what it was sold at, quantity * unit_price - discount_amount =
line_amount, and DISCOUNTED_SHARE of lines carry a discount of 10-20 %. Lines draw from
their own random stream: the orders and surveys are the same with or without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tools.demo.catalogue import (
    CATEGORIES,
    CATEGORY_FIRST,
    CATEGORY_OF_PRODUCT,
    CATEGORY_SIZE,
    CATEGORY_WEIGHTS,
    LIST_PRICES,
    PRODUCT_IDS,
    PRODUCT_NAMES,
    PRODUCT_POPULARITY,
    VENDORS,
    preferred_categories,
)
from tools.demo.export import text_column

if TYPE_CHECKING:
    from tools.demo.generator import DemoSpec

LINES_STREAM = 3
MAX_LINES = 4
PREFERRED_SHARE = 0.6
QUANTITIES, QUANTITY_WEIGHTS = np.array([1, 2, 3]), np.array([0.8, 0.15, 0.05])
DISCOUNTED_SHARE = 0.15
DISCOUNT_PCT = np.array([10, 15, 20])


def generate_lines(spec: DemoSpec, orders: pd.DataFrame) -> pd.DataFrame:
    """The line items of `orders` (as `generate` returns them), each order's lines in
    line_number order, orders in their order; indexed by the row of each line's order
    in `orders` (the index is not exported)."""
    rng = np.random.default_rng([spec.seed, LINES_STREAM])
    customer_number = pc.cast(
        pc.utf8_slice_codeunits(pa.array(orders["customer_id"]), 1), pa.int64()
    ).to_numpy()
    preferred = preferred_categories(spec)[customer_number - 1]
    order_cents = np.rint(orders["amount"].to_numpy() * 100).astype(np.int64)
    # MAX_LINES candidate lines per order; the order keeps the first k whose list
    # prices come closest to its amount (a ratio), then buys more of each if it is
    # still far larger
    candidate_row = np.repeat(np.arange(len(orders)), MAX_LINES)
    candidate_number = np.tile(np.arange(1, MAX_LINES + 1), len(orders))
    product = _products(rng, preferred[candidate_row], candidate_number)
    quantity = rng.choice(QUANTITIES, size=candidate_row.size, p=QUANTITY_WEIGHTS)
    list_cents = np.cumsum((quantity * LIST_PRICES[product] * 100).reshape(-1, MAX_LINES), axis=1)
    misfit = np.abs(np.log(order_cents[:, None] / list_cents))
    count = np.argmin(misfit, axis=1) + 1
    keep = candidate_number <= count[candidate_row]
    order_row, line_number = candidate_row[keep], candidate_number[keep]
    product, quantity = product[keep], quantity[keep]
    is_last = line_number == count[order_row]
    list_total = list_cents[np.arange(len(orders)), count - 1]
    scale = np.maximum(1, np.rint(order_cents / list_total)).astype(np.int64)
    quantity = quantity * scale[order_row]
    line_cents = _split(order_cents, order_row, quantity * LIST_PRICES[product], quantity, is_last)
    discount_pct = np.where(
        rng.uniform(size=order_row.size) < DISCOUNTED_SHARE,
        rng.choice(DISCOUNT_PCT, size=order_row.size),
        0,
    )
    # the smallest unit price (cents) with quantity * unit_price >= line_amount / (1 - pct)
    unit_cents = -(-line_cents * 100 // (quantity * (100 - discount_pct)))
    discount_cents = quantity * unit_cents - line_cents
    vendors, vendor_of_product = np.unique(VENDORS, return_inverse=True)
    lines = pd.DataFrame(
        {
            "order_id": text_column(pa.array(orders["order_id"]).take(order_row)),
            "line_number": line_number,
            "product_id": pd.Categorical.from_codes(product, PRODUCT_IDS),
            "product_name": pd.Categorical.from_codes(product, PRODUCT_NAMES),
            "category": pd.Categorical.from_codes(CATEGORY_OF_PRODUCT[product], CATEGORIES),
            "vendor": pd.Categorical.from_codes(vendor_of_product[product], vendors),
            "quantity": quantity,
            "unit_price": unit_cents / 100,
            "line_amount": line_cents / 100,
            "discount_amount": discount_cents / 100,
            "currency": pd.Categorical.from_codes(np.zeros(order_row.size, np.int8), ["USD"]),
        },
        index=pd.Index(order_row),
    )
    return lines


def _products(
    rng: np.random.Generator, preferred: np.ndarray, line_number: np.ndarray
) -> np.ndarray:
    """A product (an index into the catalogue) for each line, distinct within an order."""
    size = line_number.size
    other = rng.choice(len(CATEGORIES), size=size, p=CATEGORY_WEIGHTS)
    keep = (line_number == 1) | (rng.uniform(size=size) < PREFERRED_SHARE)
    category = np.where(keep, preferred, other)
    # by popularity within the category: category c's products share [c, c + 1) of a
    # cumulative scale in proportion to their popularity
    within = (
        PRODUCT_POPULARITY
        / np.bincount(CATEGORY_OF_PRODUCT, PRODUCT_POPULARITY)[CATEGORY_OF_PRODUCT]
    )
    upper = (
        CATEGORY_OF_PRODUCT
        + np.cumsum(within)
        - np.cumsum(np.r_[0, within[:-1]])[CATEGORY_FIRST[CATEGORY_OF_PRODUCT]]
    )
    product = np.searchsorted(upper, category + rng.uniform(size=size), side="right")
    rank = np.clip(product - CATEGORY_FIRST[category], 0, CATEGORY_SIZE[category] - 1)
    # a later line in a category already in its order takes the next products after
    # the first such line's: ranks r, r+1, ... (a category has more products than lines)
    first_rank, earlier = rank.copy(), np.zeros(size, np.int64)
    for shift in range(1, MAX_LINES):
        same = (line_number > shift) & (category == np.roll(category, shift))
        earlier += same
        first_rank = np.where(same, np.roll(rank, shift), first_rank)
    return CATEGORY_FIRST[category] + (first_rank + earlier) % CATEGORY_SIZE[category]


def _split(
    order_cents: np.ndarray,
    order_row: np.ndarray,
    weight: np.ndarray,
    quantity: np.ndarray,
    is_last: np.ndarray,
) -> np.ndarray:
    """Each order's cents split over its lines by `weight`: every line but the last gets
    its share rounded down to a multiple of its quantity, the last the rest (>= 0)."""
    share = order_cents[order_row] * weight / np.bincount(order_row, weight)[order_row]
    cents = (np.floor(share / quantity) * quantity).astype(np.int64)
    cents[is_last] = 0
    cents[is_last] = order_cents - np.bincount(order_row, cents).astype(np.int64)
    return cents
