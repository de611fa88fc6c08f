"""The demo's marketing-spend export (`marketing_spend`): spend per paid channel and
campaign per day over the demo's history, one file per month.

Each paid channel in CAC spends, every day, its cost per acquired customer times the
new customers it is expected to bring that day (the demo's acquisition curve and
channel mix, channels.py), with day-to-day noise: spend over new customers of the
channel comes out near CAC (paid_search 90, social 130, affiliate 60 USD). `display`
spends a fixed budget and brings almost no customers; organic, e-mail and referral
spend nothing. Spend draws from its own random stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from tools.demo.channels import (
    CAC,
    CAMPAIGNS,
    CHANNELS,
    DISPLAY_BUDGET,
    acquisition_share,
    channel_mix,
)
from tools.demo.export import text_column

if TYPE_CHECKING:
    from tools.demo.generator import DemoSpec

SPEND_STREAM = 4
NOISE = 0.25  # day-to-day spread of spend (lognormal sigma, mean 1)


def generate_spend(spec: DemoSpec) -> pd.DataFrame:
    """One row per day, paid channel and campaign: spent_on, channel, campaign, amount,
    currency; by day, then channel and campaign as in CAMPAIGNS."""
    rng = np.random.default_rng([spec.seed, SPEND_STREAM])
    expected = spec.customers * acquisition_share(spec)[:, None] * channel_mix(spec)
    days = expected.shape[0]
    channels, campaigns, amounts = [], [], []
    for channel, shares in CAMPAIGNS.items():
        if channel in CAC:
            daily = CAC[channel] * expected[:, list(CHANNELS).index(channel)]
        else:
            daily = np.full(days, DISPLAY_BUDGET * spec.customers / 1_000)
        for campaign, share in shares:
            noise = rng.lognormal(-(NOISE**2) / 2, NOISE, days)
            amounts.append(np.rint(daily * share * noise * 100) / 100)
            channels.append(channel)
            campaigns.append(campaign)
    day = np.datetime64(spec.start, "D") + np.repeat(np.arange(days), len(amounts))
    return pd.DataFrame(
        {
            "spent_on": text_column(pa.array(day).cast(pa.string())),
            "channel": np.tile(channels, days),
            "campaign": np.tile(campaigns, days),
            "amount": np.stack(amounts, axis=1).ravel(),
            "currency": "USD",
        }
    )
