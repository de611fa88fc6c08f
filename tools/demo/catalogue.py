"""The demo shop's product catalogue and its customers' preferred categories.

Forty products in six categories, each with a vendor and a list price (USD). Every
customer prefers one category; it decides most of what they buy, and it changes how
long they stay and how often they come back (subscribers stay, gift buyers mostly buy
once), so that the first order's category is a meaningful split of retention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tools.demo.generator import DemoSpec

# Random stream of the customers' preferred categories (generate() and the lines both
# read it; the main stream is untouched by it).
CATEGORY_STREAM = 2

CATEGORIES = np.array(["coffee", "tea", "equipment", "accessories", "gifts", "subscriptions"])
# Share of customers preferring each category.
CATEGORY_WEIGHTS = np.array([0.34, 0.18, 0.13, 0.10, 0.13, 0.12])
# How each preferred category scales a customer's lifetime and repeat-purchase rate.
CATEGORY_LIFETIME = np.array([1.1, 1.05, 0.8, 0.95, 0.55, 1.6])
CATEGORY_REPEAT = np.array([1.1, 1.0, 0.7, 0.9, 0.6, 1.35])

# (product_id, product_name, category, vendor, list price)
PRODUCTS = (
    ("COF-001", "Ethiopia Yirgacheffe 250 g", "coffee", "Northshore Roasters", 14.50),
    ("COF-002", "Colombia Huila 250 g", "coffee", "Northshore Roasters", 12.90),
    ("COF-003", "Brazil Santos 1 kg", "coffee", "Alto Coffee Co.", 34.00),
    ("COF-004", "House Espresso Blend 500 g", "coffee", "Alto Coffee Co.", 19.50),
    ("COF-005", "Decaf Swiss Water 250 g", "coffee", "Northshore Roasters", 13.50),
    ("COF-006", "Kenya AA 250 g", "coffee", "Alto Coffee Co.", 16.90),
    ("COF-007", "Guatemala Antigua 250 g", "coffee", "Northshore Roasters", 13.90),
    ("COF-008", "Cold Brew Blend 1 kg", "coffee", "Alto Coffee Co.", 31.00),
    ("TEA-001", "Darjeeling First Flush 100 g", "tea", "Leaf & Kettle", 11.50),
    ("TEA-002", "Sencha Green 100 g", "tea", "Leaf & Kettle", 9.90),
    ("TEA-003", "Earl Grey 250 g", "tea", "Tea Collective", 12.00),
    ("TEA-004", "Rooibos Vanilla 100 g", "tea", "Tea Collective", 8.50),
    ("TEA-005", "Matcha Ceremonial 30 g", "tea", "Leaf & Kettle", 24.00),
    ("TEA-006", "Chamomile 100 g", "tea", "Tea Collective", 7.90),
    ("TEA-007", "Oolong Tie Guan Yin 100 g", "tea", "Leaf & Kettle", 14.00),
    ("EQP-001", "Burr Grinder", "equipment", "Brewline", 149.00),
    ("EQP-002", "Gooseneck Kettle", "equipment", "Brewline", 79.00),
    ("EQP-003", "Pour-Over Dripper", "equipment", "Hearth Works", 24.00),
    ("EQP-004", "French Press 1 l", "equipment", "Hearth Works", 39.00),
    ("EQP-005", "Moka Pot", "equipment", "Hearth Works", 45.00),
    ("EQP-006", "Cold Brew Maker", "equipment", "Brewline", 34.00),
    ("EQP-007", "Digital Scale", "equipment", "Brewline", 29.00),
    ("ACC-001", "Paper Filters, 100", "accessories", "Paper Goods Co.", 6.50),
    ("ACC-002", "Ceramic Mug", "accessories", "Hearth Works", 14.00),
    ("ACC-003", "Travel Tumbler", "accessories", "Hearth Works", 24.00),
    ("ACC-004", "Airtight Canister", "accessories", "Paper Goods Co.", 19.00),
    ("ACC-005", "Tea Infuser", "accessories", "Tea Collective", 9.00),
    ("ACC-006", "Cleaning Tablets", "accessories", "Brewline", 11.00),
    ("ACC-007", "Milk Frother", "accessories", "Brewline", 29.00),
    ("GFT-001", "Coffee Tasting Set", "gifts", "Northshore Roasters", 39.00),
    ("GFT-002", "Tea Sampler Box", "gifts", "Leaf & Kettle", 32.00),
    ("GFT-003", "Gift Card 25", "gifts", "Customer Marts Shop", 25.00),
    ("GFT-004", "Gift Card 50", "gifts", "Customer Marts Shop", 50.00),
    ("GFT-005", "Brewing Starter Kit", "gifts", "Brewline", 59.00),
    ("GFT-006", "Holiday Hamper", "gifts", "Northshore Roasters", 69.00),
    ("SUB-001", "Coffee Subscription, monthly", "subscriptions", "Northshore Roasters", 28.00),
    ("SUB-002", "Tea Subscription, monthly", "subscriptions", "Leaf & Kettle", 22.00),
    ("SUB-003", "Espresso Subscription, monthly", "subscriptions", "Alto Coffee Co.", 30.00),
    ("SUB-004", "Roaster's Choice Subscription", "subscriptions", "Northshore Roasters", 35.00),
    ("SUB-005", "Decaf Subscription, monthly", "subscriptions", "Northshore Roasters", 26.00),
)

PRODUCT_IDS, PRODUCT_NAMES, PRODUCT_CATEGORIES, VENDORS = (
    np.array(values) for values in list(zip(*PRODUCTS, strict=True))[:4]
)
LIST_PRICES = np.array([product[4] for product in PRODUCTS])
# Each category's products are consecutive in PRODUCTS: where they start, how many.
CATEGORY_OF_PRODUCT = np.array([list(CATEGORIES).index(name) for name in PRODUCT_CATEGORIES])
CATEGORY_FIRST = np.searchsorted(CATEGORY_OF_PRODUCT, np.arange(len(CATEGORIES)))
CATEGORY_SIZE = np.bincount(CATEGORY_OF_PRODUCT, minlength=len(CATEGORIES))
# A category's products by popularity: the first sells most (weights 1, 1/2^0.7, ...).
PRODUCT_POPULARITY = (np.arange(len(PRODUCTS)) - CATEGORY_FIRST[CATEGORY_OF_PRODUCT] + 1.0) ** -0.7


def preferred_categories(spec: DemoSpec) -> np.ndarray:
    """Each customer's preferred category (an index into CATEGORIES), customer 1 first."""
    rng = np.random.default_rng([spec.seed, CATEGORY_STREAM])
    return rng.choice(len(CATEGORIES), size=spec.customers, p=CATEGORY_WEIGHTS)
