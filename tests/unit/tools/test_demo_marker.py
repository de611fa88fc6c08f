"""The demo's default as-of date is the tooling's switch: the product's default run date
is RUN_DATE or yesterday, whatever LANDING_DIR holds; `make run` (tools.demo.marker)
takes the demo data's last day when RUN_DATE is unset."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tools.demo.generator import DemoSpec, write_landing
from tools.demo.marker import demo_last_date, run_date


@pytest.fixture
def demo_settings(settings):
    # a short, old demo history: its last day is not yesterday
    write_landing(
        settings.landing_dir,
        DemoSpec(customers=20, start=date(2024, 1, 1), end=date(2024, 3, 31), seed=3),
    )
    return settings


def test_the_product_ignores_the_demo_marker(demo_settings):
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert demo_settings.default_run_date() == yesterday


def test_make_run_takes_the_demo_data_last_day(demo_settings):
    assert demo_last_date(demo_settings.landing_dir) == date(2024, 3, 31)
    assert run_date(demo_settings) == date(2024, 3, 31)


def test_run_date_wins_over_the_demo_data(demo_settings, monkeypatch):
    monkeypatch.setenv("RUN_DATE", "2024-02-15")
    assert run_date(demo_settings) == date(2024, 2, 15)
    assert demo_settings.default_run_date() == date(2024, 2, 15)


def test_without_demo_data_make_run_uses_yesterday(settings):
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert demo_last_date(settings.landing_dir) is None
    assert run_date(settings) == yesterday
