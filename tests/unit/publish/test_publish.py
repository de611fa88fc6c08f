"""Write-audit-publish on real DuckDB files, without dbt: the run record (upgrade of
an older build.duckdb, counts, interrupted runs), versioned publish with pruning,
rollback, the Parquet export and the swap of folders. Build databases are made by
hand, so every expected value below is worked out from what the test wrote."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import duckdb
import pytest

from customer_marts.config import Settings
from customer_marts.ingest import archive
from customer_marts.publish.files import staged_dir, swap_directory
from customer_marts.publish.rollback import rollback
from customer_marts.publish.versions import (
    current_version,
    describe_versions,
    list_versions,
    previous_version,
    prune,
    run_id_of,
    version_path,
)
from customer_marts.publish.wap import publish
from customer_marts.runs import pipeline, record
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import DatabaseDamaged, connect, sql_literal
from tests.conftest import file_digest, make_settings
from tools.demo.generator import DemoSpec, write_landing

AS_OF = date(2025, 6, 30)

# The pipeline_runs table as the first version of the pipeline created it.
OLD_PIPELINE_RUNS = """
    create table audit.pipeline_runs (
        run_id varchar primary key, airflow_run_id varchar, logical_date date,
        started_at timestamp, finished_at timestamp, status varchar,
        failed_step varchar, message varchar
    )
"""


def build_marts(settings: Settings, orders: int) -> None:
    """A build database with `orders` orders on consecutive days from 2025-06-01."""
    with connect(settings.build_db) as con:
        ensure_schema(con)
        con.execute("create schema if not exists marts")
        con.execute(
            "create or replace table marts.fct_orders as select 'O' || i as order_id, "
            "'C' || (i % 3) as customer_id, date '2025-06-01' + i::int as order_date "
            f"from range({orders}) as r(i)"
        )
        con.execute(
            "create or replace table marts.dim_customers as "
            "select distinct customer_id from marts.fct_orders"
        )


def full_run(settings: Settings, orders: int) -> pipeline.RunInfo:
    """start_run, a build of `orders` orders, publish: the run record as the DAG keeps it."""
    run = pipeline.start_run(settings, AS_OF)
    build_marts(settings, orders)
    pipeline.record_data_as_of(settings, run)  # as the dbt_build step does after dbt build
    pipeline.publish(settings, run)
    return run


def table_rows(path: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query).fetchall()


def test_ensure_schema_adds_missing_columns_to_an_older_run_record(settings):
    with connect(settings.build_db) as con:
        con.execute("create schema audit")
        con.execute(OLD_PIPELINE_RUNS)
        con.execute(
            "insert into audit.pipeline_runs (run_id, logical_date, status) "
            "values ('old', '2025-01-31', 'success')"
        )
        ensure_schema(con)
        ensure_schema(con)  # idempotent
        columns = [row[0] for row in con.execute("describe audit.pipeline_runs").fetchall()]
        old_row = con.execute(
            "select run_id, logical_date::varchar, status, data_as_of, checks_passed "
            "from audit.pipeline_runs"
        ).fetchall()
    assert columns[:8] == [
        "run_id",
        "airflow_run_id",
        "logical_date",
        "started_at",
        "finished_at",
        "status",
        "failed_step",
        "message",
    ]
    assert sorted(columns[8:]) == sorted(
        [
            "data_as_of",
            "rows_ingested",
            "rows_quarantined",
            "checks_passed",
            "checks_warned",
            "checks_failed",
            "published_version",
            "completed_steps",
        ]
    )
    assert old_row == [("old", "2025-01-31", "success", None, None)]
    run = full_run(settings, orders=3)  # the upgraded database works end to end
    assert table_rows(
        settings.published_db, "select run_id, status from audit.pipeline_runs order by run_id"
    ) == sorted([("old", "success"), (run.run_id, "success")])


def test_counts_come_from_the_audit_tables_of_the_run(settings):
    run = pipeline.start_run(settings, AS_OF)
    with connect(settings.build_db) as con:
        con.executemany(
            "insert into audit.ingested_files (run_id, file_name, rows_loaded, rows_quarantined) "
            "values (?, ?, ?, ?)",
            [[run.run_id, "a.csv", 10, 2], [run.run_id, "b.csv", 5, 1], ["other", "c.csv", 7, 4]],
        )
        con.executemany(
            "insert into audit.check_results (run_id, status) values (?, ?)",
            [[run.run_id, s] for s in ("passed", "passed", "warned", "failed")]
            + [["other", "failed"]],
        )
    with pytest.raises(ValueError), pipeline.step(settings, run, "validate_raw"):
        raise ValueError("expect_column_values_to_not_be_null(order_id) failed")
    record = table_rows(
        settings.build_db,
        "select status, failed_step, message, rows_ingested, rows_quarantined, "
        "checks_passed, checks_warned, checks_failed, published_version, finished_at is not null "
        "from audit.pipeline_runs",
    )
    # 10 + 5 rows loaded, 2 + 1 quarantined, 2/1/1 checks: the other run's rows do not count
    assert record == [
        (
            "failed",
            "validate_raw",
            "expect_column_values_to_not_be_null(order_id) failed",
            15,
            3,
            2,
            1,
            1,
            None,
            True,
        )
    ]


def killed_in_step(settings: Settings, run: pipeline.RunInfo, name: str) -> None:
    """What a kill -9 inside step `name` leaves behind: the step recorded as in progress
    (as step() does before its work), and no lock (the kernel releases it)."""
    with connect(settings.build_db) as con:
        con.execute(
            "update audit.pipeline_runs set status = 'running', failed_step = ? where run_id = ?",
            [name, run.run_id],
        )


def test_interrupted_run_is_recorded_failed_in_its_step_by_the_next_run(settings):
    killed = pipeline.start_run(settings, AS_OF)
    killed_in_step(settings, killed, "dbt_build")
    assert table_rows(settings.build_db, "select status, failed_step from audit.pipeline_runs") == [
        ("running", "dbt_build")
    ]
    time.sleep(0.001)  # run ids are start times in microseconds
    next_run = pipeline.start_run(settings, AS_OF)
    rows = table_rows(
        settings.build_db,
        "select run_id, status, failed_step, message, finished_at is not null "
        "from audit.pipeline_runs order by started_at",
    )
    assert [row[:3] for row in rows] == [
        (killed.run_id, "failed", "dbt_build"),
        (next_run.run_id, "running", None),
    ]
    assert rows[0][3].startswith("interrupted in step dbt_build")
    assert next_run.run_id in rows[0][3] and rows[0][4]


def test_run_interrupted_during_publish_is_success_only_if_its_publish_committed(settings):
    full_run(settings, orders=2)
    committed = pipeline.start_run(settings, AS_OF)
    killed_in_step(settings, committed, "publish")
    publish(settings, committed.run_id)  # live, then killed before finish_run
    time.sleep(0.001)
    lost = pipeline.start_run(settings, AS_OF)  # records `committed`
    killed_in_step(settings, lost, "publish")
    # killed between renaming its version and re-pointing published.duckdb
    shutil.copy(settings.published_db, version_path(settings.warehouse_dir, lost.run_id))
    time.sleep(0.001)
    pipeline.start_run(settings, AS_OF)  # records `lost`
    rows = dict(
        (row[0], row[1:])
        for row in table_rows(
            settings.build_db,
            "select run_id, status, failed_step, published_version, message "
            "from audit.pipeline_runs",
        )
    )
    assert rows[committed.run_id][:3] == ("success", None, f"published-{committed.run_id}.duckdb")
    assert rows[committed.run_id][3].startswith("interrupted after its publish committed")
    assert rows[lost.run_id][:3] == ("failed", "publish", None)
    assert not version_path(settings.warehouse_dir, lost.run_id).exists()
    assert current_version(settings.warehouse_dir, settings.published_db) == (
        version_path(settings.warehouse_dir, committed.run_id)
    )


def test_data_as_of_is_the_newest_event_date_in_the_marts(settings):
    build_marts(settings, orders=10)  # order dates 2025-06-01 .. 2025-06-10
    with connect(settings.build_db) as con:
        assert record.data_as_of(con) == date(2025, 6, 10)
        con.execute(
            "create table marts.fct_survey_responses as select date '2025-06-12' as response_date"
        )
        assert record.data_as_of(con) == date(2025, 6, 12)


def test_publish_keeps_versions_never_prunes_the_published_one_and_rolls_back(settings):
    settings = dataclasses.replace(settings, keep_versions=2)
    runs = [full_run(settings, orders) for orders in (1, 2, 3)]
    versions = list_versions(settings.warehouse_dir)
    assert [run_id_of(v) for v in versions] == [r.run_id for r in runs[1:]]
    assert os.path.samefile(settings.published_db, versions[-1])
    assert table_rows(settings.published_db, "select count(*) from marts.fct_orders") == [(3,)]
    # each version holds its own success record, with its file name, and the earlier runs;
    # the build database says the same
    query = (
        "select run_id, status, published_version, finished_at from audit.pipeline_runs "
        "order by run_id"
    )
    published_record = table_rows(settings.published_db, query)
    assert [row[:3] for row in published_record] == [
        (r.run_id, "success", f"published-{r.run_id}.duckdb") for r in runs
    ]
    assert published_record == table_rows(settings.build_db, query)

    previous = previous_version(settings.warehouse_dir, settings.published_db)
    assert previous == versions[0]
    rollback(settings, previous)
    assert file_digest(settings.published_db) == file_digest(versions[0])
    assert table_rows(settings.published_db, "select count(*) from marts.fct_orders") == [(2,)]
    # pruning to one version keeps the newest and the published (older) one
    assert prune(settings.warehouse_dir, 1, settings.published_db) == []
    assert list_versions(settings.warehouse_dir) == versions
    assert current_version(settings.warehouse_dir, settings.published_db) == versions[0]


def test_parquet_export_holds_the_published_marts_and_is_swapped_whole(settings):
    first = full_run(settings, orders=4)
    parquet = settings.warehouse_dir / "parquet"
    assert parquet.is_symlink() and os.readlink(parquet) == f".parquet-{first.run_id}"
    second = full_run(settings, orders=6)
    assert os.readlink(parquet) == f".parquet-{second.run_id}"
    manifest = json.loads((parquet / "_published.json").read_text())
    assert manifest["run_id"] == second.run_id
    assert manifest["published_version"] == f"published-{second.run_id}.duckdb"
    assert manifest["row_counts"] == {"dim_customers": 3, "fct_orders": 6}
    assert manifest["data_as_of"] == "2025-06-06"  # 2025-06-01 + 5 days
    for table in ("fct_orders", "dim_customers"):
        from_parquet = table_rows(
            settings.published_db, f"select * from '{parquet / table}.parquet' order by all"
        )
        assert from_parquet == table_rows(
            settings.published_db, f"select * from marts.{table} order by all"
        )
    # the previous set stays for readers that resolved the link a moment ago; no others
    sets = sorted(p.name for p in settings.warehouse_dir.glob(".parquet-*"))
    assert sets == [f".parquet-{first.run_id}", f".parquet-{second.run_id}"]
    third = full_run(settings, orders=7)
    sets = sorted(p.name for p in settings.warehouse_dir.glob(".parquet-*"))
    assert sets == [f".parquet-{second.run_id}", f".parquet-{third.run_id}"]

    # a retried publish of the same run never deletes the set tools are reading
    live = os.readlink(parquet)
    publish(settings, third.run_id)
    assert os.readlink(parquet) != live and (settings.warehouse_dir / live).is_dir()
    assert json.loads((parquet / "_published.json").read_text())["run_id"] == third.run_id

    # switched off: the export is removed, so no tool reads a stale one
    full_run(dataclasses.replace(settings, export_parquet=False), orders=8)
    assert not parquet.exists() and not list(settings.warehouse_dir.glob(".parquet-*"))


def test_publish_removes_the_leftovers_of_a_killed_publish(settings):
    full_run(settings, orders=2)
    warehouse = settings.warehouse_dir
    leftovers = [
        warehouse / ".published-20250101T000000000000Z.duckdb.partial",
        warehouse / ".published-20250101T000000000000Z.duckdb.partial.wal",
        warehouse / ".published.duckdb.12345.swap",
        warehouse / ".parquet.12345.swap",
    ]
    for path in leftovers:
        path.write_bytes(b"half")
    (warehouse / ".parquet-20250101T000000000000Z.partial").mkdir()
    before = set(warehouse.iterdir())
    run = full_run(settings, orders=3)
    assert not any(path.exists() for path in leftovers)
    assert not (warehouse / ".parquet-20250101T000000000000Z.partial").exists()
    assert table_rows(settings.published_db, "select count(*) from marts.fct_orders") == [(3,)]
    assert version_path(warehouse, run.run_id) in set(warehouse.iterdir()) - before


def script_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "LANDING_DIR": str(settings.landing_dir),
        "WAREHOUSE_DIR": str(settings.warehouse_dir),
    }


def test_rollback_command_lists_versions_and_re_points_published(settings):
    runs = [full_run(settings, orders) for orders in (2, 5)]
    command = [sys.executable, "-m", "customer_marts", "rollback"]
    listing = subprocess.run(
        command, env=script_env(settings), capture_output=True, text=True, check=True
    ).stdout
    assert f"  * {runs[1].run_id}" in listing and f"    {runs[0].run_id}" in listing
    assert "2025-06-30" in listing and "2025-06-05" in listing  # as-of date, data as of

    result = subprocess.run(
        [*command, "--previous"], env=script_env(settings), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"published.duckdb -> published-{runs[0].run_id}.duckdb" in result.stdout
    # the run report is rendered again: it describes the rolled-back-to run, not the newer one
    report = (settings.warehouse_dir / "report" / "index.html").read_text()
    assert f"run report: {settings.warehouse_dir / 'report' / 'index.html'}" in result.stdout
    assert runs[0].run_id in report and runs[1].run_id not in report
    first = version_path(settings.warehouse_dir, runs[0].run_id)
    assert file_digest(settings.published_db) == file_digest(first)
    parquet = settings.warehouse_dir / "parquet"
    assert json.loads((parquet / "_published.json").read_text())["run_id"] == runs[0].run_id

    unknown = subprocess.run(
        [*command, "nope"], env=script_env(settings), capture_output=True, text=True
    )
    assert unknown.returncode == 2
    assert "no published version 'nope'" in unknown.stderr and runs[1].run_id in unknown.stderr
    assert file_digest(settings.published_db) == file_digest(first)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_docs_serves_the_current_docs_folder_and_the_run_report(settings):
    warehouse = settings.warehouse_dir

    def publish_docs(run_id: str, title: str) -> None:
        staged = staged_dir(warehouse, "docs", run_id)
        staged.mkdir(parents=True)
        (staged / "index.html").write_text(f"<title>{title}</title>")
        swap_directory(staged, warehouse / "docs")

    publish_docs("r1", "first")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "customer_marts", "docs", "--port", str(port)],
        env=script_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "http://127.0.0.1:" in server.stdout.readline()

        def page() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
                return r.read().decode()

        assert page() == "<title>first</title>"
        publish_docs("r2", "second")  # a run publishes while the server runs
        assert page() == "<title>second</title>"
        # the run report beside it, at the URL of its dbt exposure
        (warehouse / "report").mkdir()
        (warehouse / "report" / "index.html").write_text("<title>report</title>")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/report", timeout=10) as r:
            assert r.read().decode() == "<title>report</title>"  # redirected to /report/
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_sqlalchemy_recipe_and_snapshot_semantics_in_one_process(settings):
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    full_run(settings, orders=2)
    url = f"duckdb:///{settings.published_db}?access_mode=read_only"  # the recipe of docs/publishing.md
    fresh, pooled = sa.create_engine(url, poolclass=NullPool), sa.create_engine(url)

    def orders(engine: sa.Engine) -> int:
        with engine.connect() as con:
            return con.execute(sa.text("select count(*) from marts.fct_orders")).scalar()

    assert orders(fresh) == 2
    assert orders(pooled) == 2  # its connection stays open in the pool
    full_run(settings, orders=5)
    assert orders(pooled) == 2  # the pooled connection keeps its snapshot
    assert orders(fresh) == 2  # and holds the process's instance of the file open
    pooled.dispose()
    assert orders(fresh) == 5  # once every connection is closed, the new version


def test_publish_works_in_a_warehouse_path_with_a_quote_a_space_and_unicode(tmp_path):
    # every path put into SQL (attach, copy ... to) must be escaped, not pasted in
    settings = dataclasses.replace(
        make_settings(tmp_path), warehouse_dir=tmp_path / "o'brien's wärehouse"
    )
    runs = [full_run(settings, orders) for orders in (2, 4)]
    assert table_rows(settings.published_db, "select count(*) from marts.fct_orders") == [(4,)]
    parquet = settings.warehouse_dir / "parquet" / "fct_orders.parquet"
    with duckdb.connect() as con:
        assert con.execute(
            f"select count(*) from read_parquet({sql_literal(parquet)})"
        ).fetchall() == [(4,)]
    rollback(settings, version_path(settings.warehouse_dir, runs[0].run_id))
    assert table_rows(settings.published_db, "select count(*) from marts.fct_orders") == [(2,)]


def test_each_published_table_is_stamped_with_the_run_that_published_it(settings):
    runs = [full_run(settings, orders) for orders in (2, 5)]
    stamps = table_rows(
        settings.published_db,
        "select schema_name, table_name, row_count, run_id from audit.published_tables "
        "where schema_name = 'marts' order by table_name",
    )
    # 5 orders of customers C0..C2 (i % 3): 3 customers
    assert stamps == [
        ("marts", "dim_customers", 3, runs[1].run_id),
        ("marts", "fct_orders", 5, runs[1].run_id),
    ]
    # the audit tables are stamped too; the stamp table itself is not copied from the build
    names = {
        row[1] for row in table_rows(settings.published_db, "select * from audit.published_tables")
    }
    assert {"pipeline_runs", "ingested_files", "quarantine", "check_results"} <= names
    assert "published_tables" not in names


def truncate_to_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(truncate_to_half, id="truncated"),
        pytest.param(lambda path: path.write_bytes(b"not a database\n" * 1000), id="overwritten"),
    ],
)
def test_a_damaged_build_database_fails_the_run_at_once_naming_the_file_and_the_fix(
    settings, damage
):
    full_run(settings, orders=3)
    damage(settings.build_db)
    before = file_digest(settings.build_db)
    started = time.monotonic()
    with pytest.raises(pipeline.DATA_ERRORS) as caught:  # a data error: never retried
        pipeline.start_run(settings, AS_OF)
    assert time.monotonic() - started < 10
    assert isinstance(caught.value, DatabaseDamaged)
    message = str(caught.value)
    assert str(settings.build_db) in message and "make recover" in message
    assert "not a database" not in message  # never the file's contents
    assert file_digest(settings.build_db) == before  # nothing was written into it


def test_a_damaged_block_found_later_is_named_too(settings):
    full_run(settings, orders=3)
    with connect(settings.build_db) as con:  # a table large enough to span many blocks
        con.execute(
            "create table raw.filler as select range as i, md5(range::varchar) as s "
            "from range(300000)"
        )
    size = settings.build_db.stat().st_size
    with settings.build_db.open("r+b") as handle:  # garbage in the middle: a bad checksum
        handle.seek(size // 2)
        handle.write(os.urandom(size // 4))
    with pytest.raises(DatabaseDamaged, match="build.duckdb is damaged"):
        with connect(settings.build_db, read_only=True) as con:
            con.execute("select sum(length(s)) from raw.filler").fetchone()


def test_a_failure_kept_in_the_fallback_file_is_shown_then_recorded_by_the_next_run(settings):
    from customer_marts.runs import fallback, summary

    run = pipeline.start_run(settings, AS_OF, airflow_run_id="manual__full")
    reserved = fallback.path_of(settings.warehouse_dir, run.run_id)
    assert reserved.stat().st_size == fallback.RESERVED_BYTES  # set aside while there is room
    assert summary.describe_run(settings, "manual__full")[:2] == [
        f"this run: {run.run_id} (as of 2025-06-30; Airflow run manual__full): RUNNING",
        "quality verdict: NOT REACHED (0 passed, 0 warned, 0 failed checks)",
    ]
    # what step() does when the build database cannot take the failure
    message = "ingest: no space left on the disk of /somewhere (0.1 MB free)"
    assert fallback.write(settings.warehouse_dir, run.run_id, "ingest", message) == reserved
    assert reserved.stat().st_size == fallback.RESERVED_BYTES  # written over, not grown
    lines = summary.describe_run(settings, "manual__full")
    assert lines[0].endswith("): FAILED") and lines[1].startswith("quality verdict: FAILED")
    assert lines[-1] == f"failed step: ingest\n{message}"
    next_run = pipeline.start_run(settings, AS_OF)
    assert table_rows(
        settings.build_db,
        "select run_id, status, failed_step, message from audit.pipeline_runs order by run_id",
    ) == [
        (
            run.run_id,
            "failed",
            "ingest",
            f"{message} (recorded from .outcome-{run.run_id}.json by the next run)",
        ),
        (next_run.run_id, "running", None, None),
    ]
    assert not reserved.exists()
    pipeline.finish_run(settings, next_run, "failed", "ingest", "x")
    assert not fallback.path_of(settings.warehouse_dir, next_run.run_id).exists()


# ---------------------------------------------------------------- the archive and recover


def archived(settings: Settings) -> list[dict]:
    return archive.read_manifest(settings.warehouse_dir / "archive")


def ingested(settings: Settings) -> list[tuple]:
    return table_rows(
        settings.build_db,
        "select file_name, sha256, status, rows_loaded, run_id from audit.ingested_files "
        "order by file_name, run_id",
    )


def test_every_landed_file_is_archived_once_and_recover_rebuilds_raw(settings):
    write_landing(settings.landing_dir, DemoSpec(customers=20, seed=3, end=date(2024, 3, 31)))
    first = pipeline.start_run(settings, AS_OF)
    pipeline.ingest(settings, first)
    landed = sorted(
        p.relative_to(settings.landing_dir).as_posix()
        for p in settings.landing_dir.rglob("*")
        if p.is_file()
    )
    entries = archived(settings)
    assert sorted(entry["path"] for entry in entries) == landed
    for entry in entries:  # each blob is the file's bytes, named by their SHA-256
        blob = archive.blob_path(settings.warehouse_dir / "archive", entry["sha256"])
        assert file_digest(blob) == entry["sha256"]
        assert blob.read_bytes() == (settings.landing_dir / entry["path"]).read_bytes()
        assert entry["run_id"] == first.run_id
    # unchanged, touched (same bytes) or not: nothing archived again; a change is
    orders = sorted(settings.landing_dir.glob("orders/*.csv"))
    os.utime(orders[0])
    with orders[1].open("a", encoding="utf-8") as handle:  # a correction: one more order
        handle.write("O99999999,2024-01-20T10:00:00Z,C0000001,12.50,completed,USD,organic,NL\n")
    second = pipeline.start_run(settings, AS_OF)
    pipeline.ingest(settings, second)
    added = archived(settings)[len(entries) :]
    assert [(e["path"], e["run_id"]) for e in added] == [
        (orders[1].relative_to(settings.landing_dir).as_posix(), second.run_id)
    ]
    raw_before = table_rows(settings.build_db, "select * from raw.orders order by all")
    files_before = ingested(settings)

    command = [sys.executable, "-m", "customer_marts", "recover"]
    healthy = subprocess.run(command, env=script_env(settings), capture_output=True, text=True)
    assert healthy.returncode == 2 and "--force" in healthy.stderr  # a healthy file stays
    for path in orders:  # the files leave the landing folder
        path.unlink()
    os.truncate(settings.build_db, settings.build_db.stat().st_size // 2)
    result = subprocess.run(command, env=script_env(settings), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(entries) + 1} file(s) of 2 run(s) ingested again" in result.stdout
    # the same rows, from the same files with the same run ids, in the same order
    assert table_rows(settings.build_db, "select * from raw.orders order by all") == raw_before
    assert ingested(settings) == files_before
    assert len(list(settings.warehouse_dir.glob("build.duckdb.damaged-*"))) == 1


def test_a_damaged_kept_version_is_still_listed(settings):
    runs = [full_run(settings, orders) for orders in (2, 3)]
    old = version_path(settings.warehouse_dir, runs[0].run_id)
    old.write_bytes(b"\0" * 10000)
    listed = describe_versions(settings)
    assert [(v["run_id"], v["is_published"], v["logical_date"]) for v in listed] == [
        (runs[0].run_id, False, None),
        (runs[1].run_id, True, "2025-06-30"),
    ]
