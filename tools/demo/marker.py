"""What the demo's marker (`_demo.json`, written by the generator) switches on.

The product knows only RUN_DATE or yesterday; on the demo data, `make run` takes the
demo's last day instead, so that its as-of date matches the data whenever it runs.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from customer_marts.config import DEMO_MARKER, Settings, env_run_date


def demo_last_date(landing_dir: Path) -> date | None:
    """The last day of the demo data, if `landing_dir` holds the demo data."""
    marker = landing_dir / DEMO_MARKER
    if not marker.exists():
        return None
    return date.fromisoformat(json.loads(marker.read_text())["last_date"])


def run_date(settings: Settings) -> date:
    """RUN_DATE, else the demo data's last day, else the product's default (yesterday)."""
    return env_run_date() or demo_last_date(settings.landing_dir) or settings.default_run_date()
