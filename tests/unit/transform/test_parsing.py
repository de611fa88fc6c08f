"""dbt keeps its saved parse (partial_parse.msgpack) from one night to the next: the
as-of date changes every night, and it must not make dbt parse the whole project
again. Real `dbt parse` runs of the project, read from dbt's own log."""

from __future__ import annotations

from datetime import date

import pytest

from customer_marts.config import Settings
from customer_marts.transform.runner import run_dbt

FULL_REPARSE = "Unable to do partial parsing"
REUSED = "Nothing changed, skipping partial parsing"


def parse(settings: Settings, as_of: date, **extra_vars) -> str:
    """`dbt parse` as the pipeline runs it; what dbt logged of this invocation."""
    log = settings.warehouse_dir / "dbt" / "logs" / "dbt.log"
    before = log.stat().st_size if log.exists() else 0
    code, _ = run_dbt(settings, "parse", as_of, extra_vars=extra_vars or None)
    assert code == 0
    with log.open() as lines:
        lines.seek(before)
        return lines.read()


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path))
    return Settings.from_env()


def test_the_next_nights_as_of_date_reuses_the_saved_parse(settings):
    first = parse(settings, date(2025, 12, 30))
    assert "saved manifest not found" in first  # a new warehouse: one full parse
    # The next night, and a rerun of an earlier date: nothing to parse again.
    for as_of in (date(2025, 12, 31), date(2025, 6, 30)):
        night = parse(settings, as_of)
        assert FULL_REPARSE not in night and REUSED in night, as_of


def test_a_changed_var_still_parses_again(settings):
    parse(settings, date(2025, 12, 30))
    changed = parse(settings, date(2025, 12, 31), churn_window_days=30)
    assert f"{FULL_REPARSE} because config vars" in changed
