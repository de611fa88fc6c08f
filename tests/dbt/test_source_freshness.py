"""`dbt source freshness` on a real warehouse: the raw sources are as fresh as the
ingest manifest's last load of each, warn after 36 hours, fail after 60, and the vars
move both limits."""

from __future__ import annotations

import json
from dataclasses import replace

import duckdb
import pytest

from customer_marts.config import Settings
from customer_marts.transform.runner import run_dbt
from tests.conftest import DEMO_AS_OF, copy_warehouse

pytestmark = pytest.mark.dbt_build  # real dbt runs on a built warehouse: make test only


@pytest.fixture
def settings_copy(published_demo, tmp_path):
    warehouse = copy_warehouse(published_demo, tmp_path / "warehouse")
    return replace(Settings.from_env(), warehouse_dir=warehouse)


def load_ages(settings, hours: dict[str, float]) -> None:
    """Move each source's manifest rows (their loaded_at) `hours` before now (UTC)."""
    with duckdb.connect(str(settings.build_db)) as con:
        con.execute("set TimeZone = 'UTC'")
        for source, age in hours.items():
            con.execute(
                "update audit.ingested_files set loaded_at = "
                "now()::timestamp - to_microseconds((? * 3600e6)::bigint) where source = ?",
                [age, source],
            )


def freshness(settings, **dbt_vars: int) -> tuple[int, dict[str, dict]]:
    target = settings.warehouse_dir / "dbt" / "target"
    code, _ = run_dbt(settings, "source freshness", DEMO_AS_OF, extra_vars=dbt_vars)
    results = json.loads((target / "sources.json").read_text())["results"]
    return code, {result["unique_id"].rsplit(".", 1)[1]: result for result in results}


def test_fresh_late_and_stale_sources(settings_copy):
    # orders loaded 1 hour ago (fresh), surveys 40 hours ago (late: > 36, < 60)
    load_ages(settings_copy, {"orders": 1, "surveys": 40, "survey_sends": 1000})
    code, results = freshness(settings_copy)
    assert code == 0  # a warning does not fail the command
    assert results["orders"]["status"] == "pass"
    assert results["surveys"]["status"] == "warn"
    assert "survey_sends" not in results  # optional: no freshness check
    age = results["surveys"]["max_loaded_at_time_ago_in_s"]
    assert 40 * 3600 - 60 < age < 40 * 3600 + 600  # the manifest's load time, not the data's

    load_ages(settings_copy, {"surveys": 61})  # stale: more than 60 hours
    code, results = freshness(settings_copy)
    assert code != 0
    assert results["surveys"]["status"] == "error"
    assert results["orders"]["status"] == "pass"


def test_the_vars_move_the_limits(settings_copy):
    load_ages(settings_copy, {"orders": 40, "surveys": 2})
    _, results = freshness(settings_copy)
    assert results["orders"]["status"] == "warn"
    # a feed delivered every other day: warn after 72 hours, fail after 96
    code, results = freshness(
        settings_copy, source_freshness_warn_hours=72, source_freshness_error_hours=96
    )
    assert code == 0 and results["orders"]["status"] == "pass"
    assert results["orders"]["criteria"]["warn_after"] == {"count": 72, "period": "hour"}
    _, results = freshness(settings_copy, source_freshness_warn_hours=1)
    assert results["surveys"]["status"] == "warn"  # 2 hours > 1
