"""Shared fixtures of the end-to-end tests: expensive runs done once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import (
    DBT_TESTS_LEFT_OUT,
    DEMO_AS_OF,
    copy_warehouse,
    migrated_airflow_home,
    run_dag,
    shared_by_workers,
)
from tests.webhook import AlertInbox, alert_connections


@pytest.fixture(scope="session")
def baseline_2024(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse of one real run (a child process, as test_publish_safety runs them)
    on the small demo with its 2025 files held back, as of 2024-12-31, made once for
    the session. Read only: the publish-safety and fault tests each start from a
    `Site.start_from` copy of it. Its build leaves dbt's data and unit tests out: no test
    reads their results of this run (the marts are the same)."""
    from tests.e2e.test_publish_safety import BASELINE_AS_OF, Site

    def run(root: Path) -> None:
        Site(root, small_demo).run("all", BASELINE_AS_OF, env=DBT_TESTS_LEFT_OUT)

    return shared_by_workers(tmp_path_factory, "baseline_2024", run) / "warehouse"


@pytest.fixture(scope="session")
def dag_rerun(
    published_demo: Path, small_demo: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """One successful `airflow dags test` run, made once for the session, on a copy of
    `published_demo` (the same landing files and as-of date again) in an Airflow home of
    its own, with a webhook alert target: {"home", "warehouse", "returncode", "log" (its
    end), "alerts" (what the webhook received)}. Read only: the rerun test of
    test_nightly_dag and the asset and no-alert tests of test_alerts read it."""

    def run(root: Path) -> None:
        home = migrated_airflow_home(root / "airflow_home", tmp_path_factory)
        warehouse = copy_warehouse(published_demo, root / "warehouse")
        with AlertInbox() as inbox:
            result = run_dag(
                home, small_demo, warehouse, DEMO_AS_OF.isoformat(), **alert_connections(inbox)
            )
            alerts = list(inbox.posts)
        outcome = {
            "returncode": result.returncode,
            "log": result.stdout[-5000:] + result.stderr[-5000:],
            "alerts": alerts,
        }
        (root / "outcome.json").write_text(json.dumps(outcome))

    root = shared_by_workers(tmp_path_factory, "dag_rerun", run)
    outcome = json.loads((root / "outcome.json").read_text())
    return {"home": root / "airflow_home", "warehouse": root / "warehouse", **outcome}
