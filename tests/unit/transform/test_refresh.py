"""When a build rebuilds every model by itself: the fingerprints of what it builds from
(a copy of the dbt project, a copy of the configuration folder) and the decision against
the build state recorded in a real build database. No dbt run: the replay test
(tests/e2e/test_incremental_replay.py) checks the decision's effect on real builds."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date

import pytest

from customer_marts.config import PROJECT_ROOT
from customer_marts.runs import build_state
from customer_marts.runs.pipeline import RunInfo, decide_refresh
from customer_marts.runs.schema import ensure_schema
from customer_marts.transform.fingerprint import (
    BuildInputs,
    dbt_vars,
    project_fingerprint,
    sources_fingerprint,
)
from customer_marts.transform.refresh import decide
from customer_marts.warehouse import connect
from tests.conftest import make_settings

AS_OF = date(2025, 12, 10)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Settings whose dbt project and configuration folder are copies to change."""
    settings = make_settings(tmp_path)
    copy = tmp_path / "dbt_project"
    shutil.copytree(settings.dbt_project_dir, copy, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(PROJECT_ROOT / "config", tmp_path / "config")
    monkeypatch.setenv("CUSTOMER_MARTS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("FULL_REFRESH", raising=False)
    settings = replace(settings, dbt_project_dir=copy)
    with connect(settings.build_db) as con:
        ensure_schema(con)
    return settings


def test_the_project_fingerprint_follows_the_code_not_dbts_output(project):
    before = project_fingerprint(project)
    root = project.dbt_project_dir
    for output in ("target/manifest.json", "logs/dbt.log", ".user.yml"):
        (root / output).parent.mkdir(exist_ok=True)
        (root / output).write_text("written by dbt\n")
    assert project_fingerprint(project) == before
    model = root / "models" / "marts" / "core" / "fct_orders.sql"
    model.write_text(model.read_text() + "\n-- a comment is code too\n")
    assert project_fingerprint(project) != before
    changed = project_fingerprint(project)
    (root / "seeds").mkdir(exist_ok=True)
    (root / "seeds" / "channels.csv").write_text("channel\nemail\n")
    assert project_fingerprint(project) != changed


def test_the_vars_in_force_are_the_projects_with_the_given_ones_on_top_but_the_date(project):
    in_force = dbt_vars(project)
    # dbt_project.yml: churn_window_days: 180, high_value_share: 0.20, clv_model: null
    assert (in_force["churn_window_days"], in_force["high_value_share"]) == (180, 0.2)
    assert in_force["clv_model"] is None and "as_of_date" not in in_force
    given = dbt_vars(project, {"churn_window_days": 90, "as_of_date": "2025-01-01"})
    assert given == {**in_force, "churn_window_days": 90}


def test_the_sources_fingerprint_follows_what_ingestion_reads_not_comments(project, tmp_path):
    before = sources_fingerprint()
    sources = tmp_path / "config" / "sources.yml"
    text = sources.read_text()
    sources.write_text("# a note of the operator\n" + text)
    assert sources_fingerprint() == before
    assert "  orders:\n    folder: orders\n" in text
    sources.write_text(
        text.replace("  orders:\n    folder: orders\n", "  orders:\n    folder: shop\n")
    )
    assert sources_fingerprint() != before
    sources.write_text(text)
    presets = tmp_path / "config" / "presets.yml"
    presets.write_text(presets.read_text() + "\nmy_orders:\n  contract: orders\n")
    assert sources_fingerprint() == before  # a preset no source uses reads nothing
    sources.write_text(
        text.replace("  orders:\n    folder: orders\n", "  orders:\n    preset: my_orders\n")
    )
    assert sources_fingerprint() != before


def recorded(project, run_id: str, as_of: date, inputs: BuildInputs, status: str, full=False):
    """A build in the build state: decided (`full` forces it), started, ended with `status`."""
    with connect(project.build_db) as con:
        last_success, latest = build_state.previous_builds(con)
        refresh = decide(inputs, as_of, last_success, latest, ["test"] if full else [])
        build_state.record_start(con, run_id, as_of, inputs, refresh)
        if status != "running":
            build_state.record_end(con, run_id, status)
    return refresh


def decision(project, inputs: BuildInputs, as_of: date = AS_OF):
    with connect(project.build_db) as con:
        return decide(inputs, as_of, *build_state.previous_builds(con))


def test_a_build_rebuilds_fully_when_its_inputs_or_date_differ_from_the_last_success(project):
    inputs = BuildInputs.of(project)
    first = decision(project, inputs)
    assert first.full and first.reasons == ["no earlier successful build in this build database"]
    recorded(project, "r1", AS_OF, inputs, "success")
    # the next night and a rerun of the same date add to what is built
    assert not decision(project, inputs, date(2025, 12, 11)).full
    assert decision(project, inputs, AS_OF).reason is None
    # a threshold var, the code, the sources, an older date: each rebuilds, saying why
    changed = replace(inputs, dbt_vars={**inputs.dbt_vars, "churn_window_days": 150})
    assert decision(project, changed).reasons == [
        "the dbt vars changed (churn_window_days: 180 -> 150)"
    ]
    unset = {k: v for k, v in inputs.dbt_vars.items() if k != "margin"}
    assert decision(project, replace(inputs, dbt_vars=unset)).reasons == [
        "the dbt vars changed (margin: 1.0 -> unset)"
    ]
    assert decision(project, replace(inputs, project="other")).reasons == [
        "the dbt project's code changed"
    ]
    assert decision(project, replace(inputs, sources="other")).reasons == [
        "the sources configuration changed (sources.yml, presets.yml)"
    ]
    backfill = decision(project, inputs, date(2025, 12, 9))
    assert backfill.reason == (
        "the as-of date moved backwards (2025-12-10 -> 2025-12-09: the last successful "
        "build, run r1, was as of the later date)"
    )
    # a failed build is not the reference: the last success stays it; and as the failed
    # one was a full rebuild (its vars changed), what it left is a mix: rebuild again
    assert recorded(project, "r2", date(2025, 12, 11), changed, "failed").full
    assert decision(project, changed, date(2025, 12, 11)).reasons == [
        "the full rebuild of run r2 did not finish",
        "the dbt vars changed (churn_window_days: 180 -> 150)",  # r1's are the reference
    ]
    assert decision(project, inputs, date(2025, 12, 11)).reasons == [
        "the full rebuild of run r2 did not finish"
    ]


def test_an_unfinished_full_rebuild_is_done_again_an_unfinished_incremental_one_not(project):
    inputs = BuildInputs.of(project)
    recorded(project, "r1", AS_OF, inputs, "success")
    recorded(project, "r2", date(2025, 12, 11), inputs, "failed")  # incremental
    assert not decision(project, inputs, date(2025, 12, 11)).full
    # an earlier date than the failed build's, though not than the last success's: the
    # rows r2 may have built in for 12-11 are not among this build's changes
    assert decision(project, inputs, AS_OF).reasons == [
        "the unfinished incremental build of run r2 was as of a later date "
        "(2025-12-11 -> 2025-12-10: rows it may have built in must go)"
    ]
    for status in ("failed", "running"):  # running: killed during its build
        assert recorded(project, "r3", date(2025, 12, 11), inputs, status, full=True).full
        assert decision(project, inputs, date(2025, 12, 11)).reasons == [
            "the full rebuild of run r3 did not finish"
        ]
    recorded(project, "r3", date(2025, 12, 11), inputs, "success", full=True)  # its retry
    assert not decision(project, inputs, date(2025, 12, 12)).full
    with connect(project.build_db, read_only=True) as con:
        rows = con.execute(
            "select run_id, status, full_refresh from audit.build_state order by started_at"
        ).fetchall()
    assert rows == [("r1", "success", True), ("r2", "failed", False), ("r3", "success", True)]


def test_full_refresh_1_and_the_dags_param_force_it_and_the_build_state_says_so(
    project, monkeypatch
):
    recorded(project, "r1", AS_OF, BuildInputs.of(project), "success")
    run = RunInfo("r2", "2025-12-11")
    assert decide_refresh(project, run).reason is None
    monkeypatch.setenv("FULL_REFRESH", "1")
    assert decide_refresh(project, run, forced=True).reasons == [
        "asked for: FULL_REFRESH=1 (customer-marts run --full-refresh)",
        "asked for: the DAG run's full_refresh param",
    ]
    monkeypatch.delenv("FULL_REFRESH")
    with connect(project.build_db) as con:
        build_state.record_end(con, "r2", "success")  # else its retry must rebuild (above)
    refresh = decide_refresh(project, run, {"churn_window_days": 90}, forced=True)
    assert refresh.reasons == [
        "asked for: the DAG run's full_refresh param",
        "the dbt vars changed (churn_window_days: 180 -> 90)",
    ]
    with connect(project.build_db, read_only=True) as con:
        rows = con.execute(
            "select run_id, as_of_date, status, full_refresh, refresh_reason, dbt_vars "
            "from audit.build_state where run_id = 'r2'"
        ).fetchall()
    assert len(rows) == 1  # the decision of each attempt replaces the run's row
    run_id, as_of, status, full, reason, recorded_vars = rows[0]
    assert (run_id, as_of, status, full, reason) == (
        "r2",
        date(2025, 12, 11),
        "running",
        True,
        "asked for: the DAG run's full_refresh param; "
        "the dbt vars changed (churn_window_days: 180 -> 90)",
    )
    assert '"churn_window_days": 90' in recorded_vars
