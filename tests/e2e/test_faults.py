"""Faults on a real warehouse, with real processes: a full disk during ingest, dbt
build and publish, and a damaged build.duckdb rebuilt from the archive.

The full disk is a size-limited tmpfs mounted as WAREHOUSE_DIR (the landing folder
stays on the ordinary disk), filled with a filler file up to a few hundred kB
before the step; each test then removes the filler and checks that the next run
succeeds. Mounting needs root (or CAP_SYS_ADMIN); without it those tests skip and
say so.

Expected row counts are counted from the landing CSV files with the csv module.
"""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DBT_TESTS_LEFT_OUT, airflow_env, file_digest
from tests.e2e import test_publish_safety as safety

pytestmark = pytest.mark.slow

BASELINE_AS_OF = "2024-12-31"
AS_OF = "2025-12-31"
RUN_TIMEOUT = 600

# A pipeline run in a child process. "all": every step; "publish": a new run that
# publishes the current build; "prepare": start_run, ingest and validate_raw, the run
# saved to argv[3]; "finish": dbt_build, validate_marts and publish of that run.
RUNNER = r"""
import json, logging, sys
from datetime import date
from customer_marts.runs import pipeline
from customer_marts.config import Settings
from customer_marts.logs import quiet_noisy_loggers

mode, as_of = sys.argv[1], date.fromisoformat(sys.argv[2])
logging.basicConfig(level=logging.INFO, format="%(name)s | %(message)s", stream=sys.stdout)
quiet_noisy_loggers()
settings = Settings.from_env()
if mode == "all":
    pipeline.run_all(settings, as_of)
elif mode == "publish":
    pipeline.publish(settings, pipeline.start_run(settings, as_of))
elif mode == "prepare":
    run = pipeline.start_run(settings, as_of)
    pipeline.ingest(settings, run)
    pipeline.validate(settings, run, "raw")
    open(sys.argv[3], "w").write(json.dumps(run.to_dict()))
else:
    run = pipeline.RunInfo.from_dict(json.load(open(sys.argv[3])))
    pipeline.build(settings, run)
    pipeline.validate(settings, run, "marts")
    pipeline.publish(settings, run)
"""


class Site(safety.Site):
    """The publish-safety site (a landing folder with the 2025 files held back, a
    warehouse), with this module's runner and the run's outcome checked either way. A
    run that only has to succeed after a fault (the fault is in an earlier run) leaves
    dbt's data and unit tests out (`env=DBT_TESTS_LEFT_OUT`); the runs that meet a fault
    keep them."""

    def run(
        self, mode: str, as_of: str, *args: str, ok: bool = True, env: dict | None = None
    ) -> str:
        child = subprocess.run(
            [sys.executable, "-c", RUNNER, mode, as_of, *args],
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        log = child.stdout + child.stderr
        assert (child.returncode == 0) == ok, log[-6000:]
        return log

    def latest_run(self) -> tuple:
        """(run_id, status, failed_step, message) of the build database's latest run."""
        return self.query(
            self.build_db,
            "select run_id, status, failed_step, message from audit.pipeline_runs "
            "order by started_at desc limit 1",
        )[0]

    def raw_counts(self) -> dict[str, int]:
        tables = ("orders", "surveys", "survey_sends")
        return {t: self.query(self.build_db, f"select count(*) from raw.{t}")[0][0] for t in tables}


def csv_rows(paths) -> int:
    """Data rows of CSV files (one record per line in the demo data, no quoted newlines)."""
    return sum(len(path.read_text(encoding="utf-8").splitlines()) - 1 for path in paths)


def leftovers(warehouse: Path) -> list[str]:
    return sorted(p.name for p in warehouse.glob(".*") if p.name.endswith((".partial", ".swap")))


# ---------------------------------------------------------------- a full disk


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory) -> Path:
    """A 160 MB tmpfs: the demo warehouse needs about 60 MB, so it can be filled."""
    mount = tmp_path_factory.mktemp("small_disk")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(
            "the full-disk tests mount a size-limited tmpfs as WAREHOUSE_DIR, which needs "
            f"root or CAP_SYS_ADMIN: `mount -t tmpfs` said {result.stderr.strip()!r}"
        )
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=False)


class Filler:
    """Fills a disk up to `leave` free bytes, and frees it again."""

    def __init__(self, disk: Path):
        self.path = disk / "filler"

    def fill(self, leave: int) -> None:
        stats = os.statvfs(self.path.parent)
        to_write = stats.f_bavail * stats.f_frsize - leave
        chunk = b"\0" * (1 << 20)
        with self.path.open("ab") as handle:
            while to_write > 0:
                try:
                    handle.write(chunk[: min(len(chunk), to_write)])
                    handle.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
                to_write -= len(chunk)

    def free(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def disk_site(small_demo, small_disk, baseline_2024, tmp_path_factory) -> Site:
    site = Site(tmp_path_factory.mktemp("full_disk"), small_demo, small_disk / "warehouse")
    site.start_from(baseline_2024)  # the 2024 run, copied onto the small disk
    return site


def failure_of(site: Site, run_id: str) -> tuple:
    """The run's (status, failed_step, message): from the build database, else from
    its fallback file (the failure could not be written into the full database)."""
    status, step, message = site.query(
        site.build_db,
        "select status, failed_step, message from audit.pipeline_runs where run_id = ?",
        run_id,
    )[0]
    fallback = site.warehouse / f".outcome-{run_id}.json"
    if status == "running" and fallback.exists():
        outcome = json.loads(fallback.read_text())
        status, step, message = outcome["status"], outcome["failed_step"], outcome["message"]
    return status, step, message


def assert_recorded_by_next_run(site: Site, run_id: str, step: str) -> None:
    """After the next successful run, the published run record holds the failure."""
    status, failed_step, message = site.query(
        site.published,
        "select status, failed_step, message from audit.pipeline_runs where run_id = ?",
        run_id,
    )[0]
    assert (status, failed_step) == ("failed", step)
    assert f"{step}: no space left on the disk of {site.warehouse}" in message
    assert not list(site.warehouse.glob(".outcome-*.json"))  # every outcome recorded


def test_full_disk_during_publish(disk_site):
    site, filler = disk_site, Filler(disk_site.warehouse.parent)
    digest = file_digest(site.published)
    filler.fill(leave=512 * 1024)  # the published copy of the marts is several MB
    try:
        log = site.run("publish", BASELINE_AS_OF, ok=False)
        run_id, *_ = site.latest_run()
        assert f"publish: no space left on the disk of {site.warehouse}" in log
        assert f".published-{run_id}.duckdb.partial" in log  # the file it was writing
        assert file_digest(site.published) == digest
        assert leftovers(site.warehouse) == []  # removed at once, not by the next publish
        assert not (site.warehouse / f"published-{run_id}.duckdb").exists()
        status, step, message = failure_of(site, run_id)
        assert (status, step) == ("failed", "publish")
        assert "no space left" in message
    finally:
        filler.free()
    site.run("publish", BASELINE_AS_OF)
    assert file_digest(site.published) != digest
    assert_recorded_by_next_run(site, run_id, "publish")


def test_full_disk_during_ingest(disk_site):
    site, filler = disk_site, Filler(disk_site.warehouse.parent)
    digest = file_digest(site.published)
    before = site.raw_counts()
    site.land_held_back_files()
    filler.fill(leave=512 * 1024)  # the new files alone are about 2.5 MB
    try:
        log = site.run("all", AS_OF, ok=False)
        run_id, *_ = site.latest_run()
        assert f"ingest: no space left on the disk of {site.warehouse}" in log
        status, step, message = failure_of(site, run_id)
        assert (status, step) == ("failed", "ingest")
        assert "no space left" in message
        assert file_digest(site.published) == digest
        assert site.raw_counts() == before  # the ingest transaction left nothing behind
    finally:
        filler.free()
    site.run("all", AS_OF, env=DBT_TESTS_LEFT_OUT)
    assert_recorded_by_next_run(site, run_id, "ingest")
    # every 2025 row loaded once: neither lost nor counted twice after the failure
    new_orders = csv_rows(site.landing.glob("orders/*2025-*.csv"))
    assert site.raw_counts()["orders"] == before["orders"] + new_orders
    manifest = [
        json.loads(line)
        for line in (site.warehouse / "archive" / "manifest.jsonl").read_text().splitlines()
    ]
    landed = sorted(p.relative_to(site.landing).as_posix() for p in site.landing.rglob("*.*"))
    assert sorted(entry["path"] for entry in manifest) == landed  # each file archived once


def test_full_disk_during_dbt_build(disk_site, tmp_path):
    site, filler = disk_site, Filler(disk_site.warehouse.parent)
    digest = file_digest(site.published)
    run_file = tmp_path / "run.json"
    site.run("prepare", AS_OF, str(run_file))
    run_id = json.loads(run_file.read_text())["run_id"]
    filler.fill(leave=256 * 1024)
    try:
        log = site.run("finish", AS_OF, str(run_file), ok=False)
        assert f"dbt_build: no space left on the disk of {site.warehouse}" in log
        status, step, message = failure_of(site, run_id)
        assert (status, step) == ("failed", "dbt_build")
        assert file_digest(site.published) == digest
    finally:
        filler.free()
    site.run("all", AS_OF, env=DBT_TESTS_LEFT_OUT)
    assert_recorded_by_next_run(site, run_id, "dbt_build")
    assert file_digest(site.published) != digest


# ---------------------------------------------------------------- a damaged build.duckdb


# Wall-clock times of the run itself, not data: they differ between any two runs.
RUN_TIME_COLUMNS = ("fitted_at",)


def marts_of(database: Path) -> dict[str, list[tuple]]:
    """Every row of every mart, sorted; floats to 12 significant digits; without the
    RUN_TIME_COLUMNS."""

    def norm(value):
        if isinstance(value, float) and math.isfinite(value):
            return float(f"{value:.12g}")
        return value

    marts = {}
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' order by 1"
        ).fetchall()
        for (table,) in tables:
            exclude = [
                name
                for (name,) in con.execute(
                    "select column_name from duckdb_columns() "
                    "where schema_name = 'marts' and table_name = ?",
                    [table],
                ).fetchall()
                if name in RUN_TIME_COLUMNS
            ]
            columns = f"* exclude ({', '.join(exclude)})" if exclude else "*"
            rows = con.execute(f"select {columns} from marts.{table}").fetchall()
            marts[table] = sorted((tuple(norm(v) for v in row) for row in rows), key=repr)
    return marts


def test_damaged_build_database_fails_at_once_and_recover_restores_identical_marts(
    small_demo, baseline_2024, tmp_path, airflow_home
):
    site = Site(tmp_path, small_demo, tmp_path / "warehouse")
    site.start_from(baseline_2024)  # the 2024 run, published: the marts to restore
    marts, raw = marts_of(site.published), site.raw_counts()
    digest = file_digest(site.published)
    assert raw["orders"] == csv_rows(site.landing.glob("orders/*.csv"))
    # the 2024 files leave the landing folder: their rows are only in build.duckdb now
    landed = list(site.landing.glob("*/*2024-*"))
    assert landed
    for path in landed:
        path.unlink()
    os.truncate(site.build_db, site.build_db.stat().st_size // 2)

    # a real Airflow run with the default retries: start_run fails once, at once
    started = time.monotonic()
    env = airflow_env(
        airflow_home,
        LANDING_DIR=str(site.landing),
        WAREHOUSE_DIR=str(site.warehouse),
        CUSTOMER_MARTS_RETRIES="2",
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test"]
        + ["customer_marts_nightly", "2026-01-05"],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert elapsed < 240, f"took {elapsed:.0f} s: retried?"  # a retry waits 5 minutes
    assert f"{site.build_db} is damaged" in output and "make recover" in output
    assert "up_for_retry" not in output.lower()
    assert file_digest(site.published) == digest

    recover = subprocess.run(
        [sys.executable, "-m", "customer_marts", "recover"],
        env=site.env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert recover.returncode == 0, recover.stdout + recover.stderr
    assert list(site.warehouse.glob("build.duckdb.damaged-*"))  # kept for inspection
    assert site.raw_counts() == raw  # the 2024 rows came back from the archive
    site.run("all", BASELINE_AS_OF, env=DBT_TESTS_LEFT_OUT)
    assert marts_of(site.published) == marts
    assert site.raw_counts() == raw
