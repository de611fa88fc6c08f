"""Write-audit-publish under fire, with real processes on one warehouse.

The tests run in file order and build on each other:

1. a real run (`pipeline.run_all` in a child process) publishes the 2024 data (the
   session's `baseline_2024` run, shared with tests/e2e/test_faults.py: a copy);
2. 8 reader processes start querying `published.duckdb` (read_only=True) in a
   loop, reconnecting each time (a round a second, two a second during the 20
   publishes of step 4), and a 9th holds one connection open;
3. real runs are killed with SIGKILL (own process group, so dbt dies with them)
   during every task: publish, ingest, validate_raw, dbt_build and validate_marts;
   after each kill `published.duckdb` is byte-identical and openable. Each killed
   run after the first gets past the step where the one before it was killed, and
   the run after the last kill succeeds, so the next run always gets through, with
   every landed row loaded once (raw, audit.ingested_files and the archive manifest);
4. that run and 20 more publishes (of the same build, one row fewer each time, so
   every version differs) happen while the readers read: zero errors, each reader
   checks in one transaction that every mart it reads is stamped with the run the
   run record says is the latest, with the row count it has, and sees the versions
   in publish order; the holder keeps its snapshot;
5. `customer-marts rollback` re-points `published.duckdb` to older versions.

The kill during publish is made deterministic by the child's log handler, which
stops the process at the log line "copying ... into .published-<run>.partial"
(written after the partial file is attached), where it is killed. The other
kills land on log lines that start long steps (ingest of 460 files, the Great
Expectations import, a dbt build), and each test checks from the build database
that the kill landed inside its step.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DBT_TESTS_LEFT_OUT, copy_warehouse, file_digest

pytestmark = pytest.mark.slow

BASELINE_AS_OF = "2024-12-31"
AS_OF = "2025-12-31"
READERS = 8
PUBLISHES = 20
RUN_TIMEOUT = 600
# The readers' pause between rounds (each round opens DuckDB afresh, ~40 ms of CPU),
# and during the 20 publishes (a publish takes over a second: each reader sees every
# version, or nearly).
READ_PAUSE = 1.0
READ_PAUSE_PUBLISHING = 0.5

# A pipeline run in a child process. mode "all": every step; mode "publish": a new
# run that publishes the current (validated) build. A non-empty third argument stops
# the process at the first log line starting with it, to be killed there.
RUNNER = r"""
import logging, sys, time
from datetime import date
from customer_marts.runs import pipeline
from customer_marts.config import Settings
from customer_marts.logs import quiet_noisy_loggers

mode, as_of, pause_at = sys.argv[1], date.fromisoformat(sys.argv[2]), sys.argv[3]

class Handler(logging.StreamHandler):
    def emit(self, record):
        super().emit(record)
        if pause_at and record.getMessage().startswith(pause_at):
            self.flush()
            time.sleep(600)

logging.basicConfig(level=logging.INFO, format="%(name)s | %(message)s",
                    handlers=[Handler(sys.stdout)])
quiet_noisy_loggers()
settings = Settings.from_env()
if mode == "all":
    pipeline.run_all(settings, as_of)
elif mode == "publish":
    pipeline.publish(settings, pipeline.start_run(settings, as_of))
else:  # "republish N": N publishes of the build, each with one order fewer
    from customer_marts.warehouse import connect
    for _ in range(int(mode.split()[1])):
        with connect(settings.build_db) as con:
            con.execute(
                "delete from marts.fct_orders where order_id = "
                "(select max(order_id) from marts.fct_orders)"
            )
        pipeline.publish(settings, pipeline.start_run(settings, as_of))
        time.sleep(0.5)
"""

# Reconnects for every query round; writes what it saw when the stop file appears.
# In one transaction it reads the latest run of the run record, then every mart with
# its stamp (audit.published_tables): each must name that run and have its row count.
# It pauses argv[5] seconds between rounds, argv[6] once the file argv[4] exists.
READER = r"""
import json, sys, time
from pathlib import Path
import duckdb

published, stop, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
publishing, pause, pause_publishing = Path(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
rounds, errors, seen = 0, [], []
while not stop.exists():
    try:
        with duckdb.connect(published, read_only=True) as con:
            con.execute("begin transaction")
            run_id, status = con.execute(
                "select run_id, status from audit.pipeline_runs order by started_at desc limit 1"
            ).fetchone()
            stamps = con.execute(
                "select table_name, run_id, row_count from audit.published_tables "
                "where schema_name = 'marts'"
            ).fetchall()
            counts = {}
            for table, stamped_run, stamped_rows in stamps:
                counts[table] = con.execute(f"select count(*) from marts.{table}").fetchone()[0]
                if (stamped_run, stamped_rows) != (run_id, counts[table]):
                    errors.append(f"mixed versions: {table} {stamped_run} {stamped_rows} "
                                  f"{counts[table]}, latest run {run_id}")
            con.execute("commit")
        if status != "success" or len(stamps) < 10 or not counts["fct_orders"]:
            errors.append(f"incomplete version {run_id}: {status}, {len(stamps)} marts")
        if not seen or seen[-1][0] != run_id:
            seen.append([run_id, counts["fct_orders"]])
        rounds += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    time.sleep(pause_publishing if publishing.exists() else pause)
out.write_text(json.dumps({"rounds": rounds, "errors": errors, "seen": seen}))
"""

# Holds one connection for the whole module, then reconnects.
HOLDER = r"""
import json, sys, time
from pathlib import Path
import duckdb

query = "select max(run_id) from audit.pipeline_runs where status = 'success'"
published, stop, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
con = duckdb.connect(published, read_only=True)
first = con.execute(query).fetchone()[0]
while not stop.exists():
    time.sleep(0.1)
held = con.execute(query).fetchone()[0]
con.close()
with duckdb.connect(published, read_only=True) as fresh:
    reconnected = fresh.execute(query).fetchone()[0]
out.write_text(json.dumps({"first": first, "held": held, "reconnected": reconnected}))
"""


class Site:
    def __init__(self, root: Path, demo: Path, warehouse: Path | None = None):
        self.landing = root / "landing"
        self.held_back = root / "held_back"  # the 2025 files, landed after the first run
        self.warehouse = warehouse or root / "warehouse"
        self.published = self.warehouse / "published.duckdb"
        self.build_db = self.warehouse / "build.duckdb"
        shutil.copytree(demo, self.landing)
        for path in sorted(self.landing.glob("*/*2025-*")):
            target = self.held_back / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
        self.runs: dict[str, str] = {}  # what each run of this module was for -> run id

    def start_from(self, baseline: Path) -> str:
        """This site's warehouse as a copy of `baseline` (the session's baseline_2024 run
        on the same landed files); returns that run's id."""
        copy_warehouse(baseline, self.warehouse)
        [(run_id,)] = self.query(self.build_db, "select run_id from audit.pipeline_runs")
        return run_id

    def land_held_back_files(self) -> None:
        for path in sorted(self.held_back.glob("*/*")):
            path.rename(self.landing / path.parent.name / path.name)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LANDING_DIR": str(self.landing),
            "WAREHOUSE_DIR": str(self.warehouse),
            "PYTHONUNBUFFERED": "1",
            "KEEP_VERSIONS": "40",  # every version of the module stays, for the checks
        }

    def start(
        self, mode: str, as_of: str, pause_at: str = "", env: dict | None = None
    ) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER, mode, as_of, pause_at],
            env={**self.env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: dbt is killed with it
        )

    def run(self, mode: str, as_of: str, env: dict | None = None) -> str:
        """A run that must succeed (with `env` on top of the site's); returns its log."""
        child = self.start(mode, as_of, env=env)
        log, _ = child.communicate(timeout=RUN_TIMEOUT)
        assert child.returncode == 0, log[-6000:]
        return log

    def kill_at(self, child: subprocess.Popen, marker: str) -> str:
        """Read the run's log until `marker`, then SIGKILL its process group; return the log."""
        watchdog = threading.Timer(RUN_TIMEOUT, os.killpg, (child.pid, signal.SIGKILL))
        watchdog.start()
        lines = []
        try:
            for line in iter(child.stdout.readline, ""):
                lines.append(line)
                if marker in line:
                    os.killpg(child.pid, signal.SIGKILL)
                    break
        finally:
            watchdog.cancel()
        child.wait(timeout=60)
        child.stdout.close()
        log = "".join(lines)
        assert marker in log, f"the run ended before {marker!r}:\n{log[-6000:]}"
        assert child.returncode == -signal.SIGKILL
        for _ in range(100):  # nothing of the run survives (dbt included)
            if not live_group_members(child.pid):
                break
            time.sleep(0.05)
        assert live_group_members(child.pid) == []
        return log

    def record(self, database: Path) -> list[tuple]:
        with duckdb.connect(str(database), read_only=True) as con:
            return con.execute(
                "select run_id, status, failed_step, message, data_as_of::varchar, "
                "rows_ingested, rows_quarantined, checks_passed, checks_warned, checks_failed, "
                "published_version from audit.pipeline_runs order by run_id"
            ).fetchall()

    def query(self, database: Path, query: str, *params) -> list[tuple]:
        with duckdb.connect(str(database), read_only=True) as con:
            return con.execute(query, list(params)).fetchall()

    def scalar(self, database: Path, query: str, *params):
        with duckdb.connect(str(database), read_only=True) as con:
            return con.execute(query, list(params)).fetchone()[0]


def live_group_members(group: int) -> list[int]:
    """Processes of a process group that are alive (not zombies), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _parent, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except OSError:
            continue
        if int(pgrp) == group and state != "Z":
            members.append(int(stat.parent.name))
    return members


def run_id_in(log: str) -> str:
    """The run id from the log line 'run <id> for as-of date ... started'."""
    line = next(line for line in log.splitlines() if " for as-of date " in line)
    return line.split("| run ", 1)[1].split()[0]


def assert_published_intact(site: Site, digest: str) -> None:
    assert file_digest(site.published) == digest
    assert site.scalar(site.published, "select count(*) from marts.fct_orders") > 0


def csv_rows(paths) -> list[dict]:
    rows = []
    for path in paths:
        with path.open(newline="", encoding="utf-8") as handle:
            rows += list(csv.DictReader(handle))
    return rows


@pytest.fixture(scope="module")
def site(small_demo, baseline_2024, tmp_path_factory) -> Site:
    site = Site(tmp_path_factory.mktemp("publish_safety"), small_demo)
    site.runs["baseline"] = site.start_from(baseline_2024)
    return site


def publishing(site: Site) -> Path:
    """The file that tells the readers the 20 publishes begin (READ_PAUSE_PUBLISHING)."""
    return site.warehouse.parent / "publishing"


@pytest.fixture(scope="module")
def readers(site):
    """8 reader processes and one connection holder, started after the first publish."""
    stop = site.warehouse.parent / "stop_readers"
    outputs = [site.warehouse.parent / f"reader_{i}.json" for i in range(READERS + 1)]
    pace = [str(publishing(site)), str(READ_PAUSE), str(READ_PAUSE_PUBLISHING)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER if i == READERS else READER, str(site.published)]
            + [str(stop), str(out)]
            + ([] if i == READERS else pace)
        )
        for i, out in enumerate(outputs)
    ]
    time.sleep(2)  # let them connect before anything is published

    def finish() -> tuple[list[dict], dict]:
        stop.touch()
        for process in processes:
            assert process.wait(timeout=60) == 0
        results = [json.loads(out.read_text()) for out in outputs]
        return results[:READERS], results[READERS]

    yield finish
    stop.touch()
    for process in processes:
        process.wait(timeout=60)


def test_first_run_publishes_marts_docs_and_parquet(site, readers):
    docs = site.warehouse / "docs"
    baseline = site.runs["baseline"]
    assert os.readlink(docs) == f".docs-{baseline}"
    assert {p.name for p in docs.iterdir()} == {
        "index.html",
        "manifest.json",
        "catalog.json",
        "static_index.html",
        ".fingerprint",  # what the site shows: a run with the same keeps it
    }
    manifest = json.loads((docs / "manifest.json").read_text())
    assert {e["label"] for e in manifest["exposures"].values()} >= {"Customer Marts dashboard"}
    catalog = json.loads((docs / "catalog.json").read_text())
    assert "model.customer_marts.fct_orders" in catalog["nodes"]
    parquet = json.loads((site.warehouse / "parquet" / "_published.json").read_text())
    assert parquet["run_id"] == baseline
    assert parquet["row_counts"]["fct_orders"] == site.scalar(
        site.published, "select count(*) from marts.fct_orders"
    )


def test_kill_during_publish_leaves_published_intact(site, readers):
    digest = file_digest(site.published)
    docs_before = os.readlink(site.warehouse / "docs")
    child = site.start("publish", AS_OF, pause_at="copying ")
    log = site.kill_at(child, "copying marts and audit into")
    site.runs["killed_in_publish"] = run_id_in(log)
    assert_published_intact(site, digest)
    # killed in the middle of the copy: the partial file is there, not yet a version
    partial = site.warehouse / f".published-{site.runs['killed_in_publish']}.duckdb.partial"
    assert partial.exists()
    assert not (site.warehouse / f"published-{site.runs['killed_in_publish']}.duckdb").exists()
    assert os.readlink(site.warehouse / "docs") == docs_before


def test_kill_during_ingest_leaves_published_intact(site, readers):
    digest = file_digest(site.published)
    raw_orders = site.scalar(site.build_db, "select count(*) from raw.orders")
    site.land_held_back_files()
    log = site.kill_at(site.start("all", AS_OF), "step ingest started")
    run_id = site.runs["killed_in_ingest"] = run_id_in(log)
    assert_published_intact(site, digest)
    # ingestion is one transaction: the kill inside it left nothing of the run behind
    assert site.scalar(site.build_db, "select count(*) from raw.orders") == raw_orders
    assert (
        site.scalar(
            site.build_db, "select count(*) from audit.ingested_files where run_id = ?", run_id
        )
        == 0
    )


def test_kill_during_validation_leaves_published_intact(site, readers):
    digest = file_digest(site.published)
    log = site.kill_at(site.start("all", AS_OF), "step validate_raw started")
    run_id = site.runs["killed_in_validation"] = run_id_in(log)
    assert_published_intact(site, digest)
    # this run got through ingest (where the previous one was killed), not through validation
    query = "select count(*) from audit.{} where run_id = ?"
    assert site.scalar(site.build_db, query.format("ingested_files"), run_id) > 0
    assert site.scalar(site.build_db, query.format("check_results"), run_id) == 0


def test_kill_during_dbt_build_leaves_published_intact(site, readers):
    digest = file_digest(site.published)
    log = site.kill_at(site.start("all", AS_OF), "OK created sql")
    run_id = site.runs["killed_in_dbt_build"] = run_id_in(log)
    assert_published_intact(site, digest)
    assert "quality gate (raw)" in log  # past validation, where the previous run was killed
    assert re.search(r"\] dbt build: \d+ nodes", log) is None  # dbt build never finished
    assert (
        site.scalar(
            site.build_db,
            "select count(*) from audit.check_results where run_id = ? and layer = 'raw'",
            run_id,
        )
        > 0
    )


def test_kill_during_validate_marts_leaves_published_intact(site, readers):
    digest = file_digest(site.published)
    log = site.kill_at(site.start("all", AS_OF), "step validate_marts started")
    run_id = site.runs["killed_in_validate_marts"] = run_id_in(log)
    assert_published_intact(site, digest)
    assert "dbt build:" in log  # past dbt build, where the previous run was killed
    query = "select count(*) from audit.check_results where run_id = ? and layer = ?"
    assert site.scalar(site.build_db, query, run_id, "dbt") > 0
    assert site.scalar(site.build_db, query, run_id, "marts") == 0


def test_next_run_succeeds_and_records_the_killed_runs(site, readers):
    digest = file_digest(site.published)
    # dbt's tests left out: its dbt build is the killed validate_marts run's again, whose
    # test checks their results
    log = site.run("all", AS_OF, env=DBT_TESTS_LEFT_OUT)
    site.runs["after_kills"] = final = run_id_in(log)
    assert file_digest(site.published) != digest
    runs = {row[0]: row for row in site.record(site.published)}
    killed = {
        "killed_in_publish": "publish",
        "killed_in_ingest": "ingest",
        "killed_in_validation": "validate_raw",
        "killed_in_dbt_build": "dbt_build",
        "killed_in_validate_marts": "validate_marts",
    }
    for purpose, step in killed.items():
        run_id, status, failed_step, message, *_ = runs[site.runs[purpose]]
        assert (status, failed_step) == ("failed", step), purpose
        assert message.startswith(f"interrupted in step {step}"), message
    # every run of this module is recorded, in the published file too
    assert set(runs) == set(site.runs.values())
    assert runs[site.runs["baseline"]][1] == "success"

    # the counts, worked out from the landing files with the csv module
    landed = csv_rows(sorted(site.landing.glob("*/*.csv")))
    held_back = [p for p in site.landing.glob("*/*.csv") if "2025-" in p.name]
    assert (
        runs[site.runs["baseline"]][5] + runs[site.runs["killed_in_validation"]][5]
        == len(landed)  # every landed row loaded once (the demo has no bad or duplicate rows)
    )
    assert runs[site.runs["killed_in_validation"]][5] == len(csv_rows(held_back))
    assert runs[site.runs["killed_in_ingest"]][5] == 0
    # raw holds each landed row once, each file is loaded once, archived once
    assert site.scalar(site.build_db, "select count(*) from raw.orders") == len(
        csv_rows(sorted(site.landing.glob("orders/*.csv")))
    )
    loaded = site.query(
        site.build_db,
        "select file_name, count(*) from audit.ingested_files where status = 'loaded' "
        "group by file_name",
    )
    landed_csv = sorted(p.relative_to(site.landing).as_posix() for p in site.landing.rglob("*.csv"))
    assert sorted(name for name, _ in loaded) == landed_csv
    assert {count for _, count in loaded} == {1}
    manifest = [
        json.loads(line)
        for line in (site.warehouse / "archive" / "manifest.jsonl").read_text().splitlines()
    ]
    landed = sorted(p.relative_to(site.landing).as_posix() for p in site.landing.rglob("*.*"))
    assert sorted(entry["path"] for entry in manifest) == landed
    _, status, failed_step, _, data_as_of, ingested, quarantined, passed, _, failed, version = runs[
        final
    ]
    assert (status, failed_step, version) == ("success", None, f"published-{final}.duckdb")
    assert (ingested, quarantined, failed) == (0, 0, 0) and passed > 0
    # data_as_of: the newest order (or survey response, once that mart exists) date
    event_dates = [row["ordered_at"][:10] for row in csv_rows(site.landing.glob("orders/*.csv"))]
    if site.scalar(
        site.published,
        "select count(*) from duckdb_tables() where table_name = 'fct_survey_responses'",
    ):
        surveys = csv_rows(site.landing.glob("surveys/*.csv"))
        event_dates += [row["responded_at"][:10] for row in surveys]
    assert data_as_of == max(day for day in event_dates if day <= AS_OF)

    # the killed publish's leftovers are gone; Parquet is this run's, and the docs site
    # the baseline's: the same project and catalog, so no run since generated another
    assert not list(site.warehouse.glob(".*.partial*"))
    assert os.readlink(site.warehouse / "docs") == f".docs-{site.runs['baseline']}"
    parquet = json.loads((site.warehouse / "parquet" / "_published.json").read_text())
    assert (parquet["run_id"], parquet["data_as_of"]) == (final, data_as_of)


def test_readers_see_every_publish_in_order_without_errors(site, readers):
    publishing(site).touch()
    time.sleep(1)
    log = site.run(f"republish {PUBLISHES}", AS_OF)
    republished = [
        line.split("| run ", 1)[1].split()[0]
        for line in log.splitlines()
        if " for as-of date " in line
    ]
    assert len(republished) == PUBLISHES
    for i, run_id in enumerate(republished, 1):
        site.runs[f"republish_{i}"] = run_id
    time.sleep(1)
    results, holder = readers()
    published = [site.runs["baseline"], site.runs["after_kills"], *republished]
    orders = {
        run_id: site.scalar(
            site.warehouse / f"published-{run_id}.duckdb", "select count(*) from marts.fct_orders"
        )
        for run_id in published
    }
    assert orders[published[0]] < orders[published[1]]  # 2024 data, then 2024-2025
    # each republish removed one order from the build: every version differs
    assert [orders[r] for r in published[1:]] == [
        orders[published[1]] - i for i in range(PUBLISHES + 1)
    ]
    for result in results:
        assert result["errors"] == []
        assert result["rounds"] > PUBLISHES
        seen = [run_id for run_id, _ in result["seen"]]
        # versions in publish order, from the first to the last, each complete
        assert seen == sorted(seen, key=published.index)
        assert (seen[0], seen[-1]) == (published[0], published[-1])
        assert len(seen) >= PUBLISHES // 2
        assert all(count == orders[run_id] for run_id, count in result["seen"])
    # a connection kept open keeps its snapshot; a new one sees the latest version
    assert holder == {
        "first": published[0],
        "held": published[0],
        "reconnected": published[-1],
    }


def test_rollback_command_re_points_published(site):
    command = [sys.executable, "-m", "customer_marts", "rollback"]

    def rollback(*args: str) -> str:
        result = subprocess.run(
            [*command, *args], env=site.env(), capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    listing = rollback()
    assert f"* {site.runs[f'republish_{PUBLISHES}']}" in listing
    rollback("--previous")
    version = site.warehouse / f"published-{site.runs[f'republish_{PUBLISHES - 1}']}.duckdb"
    assert file_digest(site.published) == file_digest(version)
    rollback(site.runs["baseline"])
    baseline = site.warehouse / f"published-{site.runs['baseline']}.duckdb"
    assert file_digest(site.published) == file_digest(baseline)
    assert site.scalar(site.published, "select max(order_date) from marts.fct_orders") <= date(
        2024, 12, 31
    )
    parquet = json.loads((site.warehouse / "parquet" / "_published.json").read_text())
    assert parquet["run_id"] == site.runs["baseline"]
