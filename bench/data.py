"""The benchmark's data: the scaled demo exports (cached under bench/data/), one more
day of orders on top of a history, and linked copies of a landing folder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from customer_marts.config import DEMO_MARKER
from tools.demo.generator import DemoSpec, write_landing

log = logging.getLogger(__name__)

# Share of completed orders followed by a survey response: about 10 % of all orders.
SURVEY_SHARE = 0.107
FINGERPRINT_CUSTOMERS = 50


def demo_spec(orders: int) -> DemoSpec:
    """The demo spec for about `orders` orders, five per customer (two years, seed 42)."""
    return DemoSpec.for_orders(orders, survey_share=SURVEY_SHARE)


def generator_fingerprint(spec: DemoSpec) -> str:
    """What the generator writes for `spec`, in 12 hex digits: the SHA-256 of the files
    (their names and SHA-256s, from the demo marker) it writes for the same spec with
    FINGERPRINT_CUSTOMERS customers, in a fraction of a second. A generator that writes
    other data writes other files, so a cache keyed on it is never stale."""
    with tempfile.TemporaryDirectory() as folder:
        write_landing(Path(folder), replace(spec, customers=FINGERPRINT_CUSTOMERS))
        files = json.loads((Path(folder) / DEMO_MARKER).read_text())["files"]
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]


def dataset(data_dir: Path, orders: int) -> tuple[Path, dict]:
    """The landing folder for about `orders` orders, generated once and cached.

    The cache is keyed by the spec and what the generator writes for it
    (`generator_fingerprint`); a folder is complete once its marker is written (the
    generator writes the marker last), so an interrupted generation starts over.
    """
    spec = demo_spec(orders)
    folder = (
        data_dir / f"landing-{spec.customers}c-seed{spec.seed}-s{spec.survey_share}"
        f"-r{spec.repeat_rate}-g{generator_fingerprint(spec)}"
    )
    marker = folder / DEMO_MARKER
    if marker.exists():
        return folder, json.loads(marker.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    log.info("generating %s orders (%d customers) into %s", f"{orders:,}", spec.customers, folder)
    started = time.perf_counter()
    summary = write_landing(folder, spec)
    log.info("generated in %.1f s", time.perf_counter() - started)
    return folder, {**json.loads(marker.read_text()), **summary}


def write_next_day(landing: Path, info: dict, day: date, orders: int, seed: int = 7) -> int:
    """Land one more day of exports after the demo history: `orders` orders (80 % by
    existing customers, 20 % first orders of new ones) and responses to about 10 %."""
    rng = np.random.default_rng(seed)
    customers = int(info["customers"])
    new = int(orders * 0.2)
    customer = np.concatenate(
        [rng.integers(1, customers + 1, orders - new), customers + 1 + np.arange(new)]
    )
    seconds = np.sort(rng.integers(0, 86_400, orders))
    start = pd.Timestamp(day)
    frame = pd.DataFrame(
        {
            "order_id": [f"O{int(info['orders']) + i + 1:08d}" for i in range(orders)],
            "ordered_at": (start + pd.to_timedelta(seconds, "s")).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customer_id": [f"C{c:07d}" for c in rng.permutation(customer)],
            "amount": np.round(rng.lognormal(np.log(60), 0.5, orders), 2),
            "status": rng.choice(
                ["completed", "cancelled", "refunded"], orders, p=[0.92, 0.05, 0.03]
            ),
            "currency": "USD",
            "channel": rng.choice(["organic", "email", "direct", "app"], orders),
            "country": rng.choice(["US", "GB", "DE", "FR", "NL", "CA"], orders),
        }
    )
    (landing / "orders").mkdir(parents=True, exist_ok=True)
    frame.to_csv(landing / "orders" / f"orders_{day}.csv", index=False)
    answered = frame.sample(frac=0.1, random_state=seed).sort_index()
    responses = pd.DataFrame(
        {
            "response_id": [
                f"R{int(info['survey_responses']) + i + 1:08d}" for i in range(len(answered))
            ],
            "responded_at": answered["ordered_at"].to_numpy(),
            "customer_id": answered["customer_id"].to_numpy(),
            "nps_score": rng.integers(0, 11, len(answered)),
            "csat_score": rng.integers(1, 6, len(answered)),
            "ces_score": rng.integers(1, 8, len(answered)),
            "comment": "",
            "channel": "email",
        }
    )
    (landing / "surveys").mkdir(parents=True, exist_ok=True)
    responses.to_csv(landing / "surveys" / f"responses_{day}.csv", index=False)
    return orders


def link_tree(source: Path, destination: Path) -> None:
    """A copy of a landing folder made of hard links (symbolic links across devices):
    files can be added to it without touching the cache."""
    shutil.rmtree(destination, ignore_errors=True)
    for path in sorted(source.rglob("*")):
        target = destination / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            target.symlink_to(path.resolve())
