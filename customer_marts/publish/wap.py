"""Write-audit-publish: copy the validated `marts` and `audit` schemas into a new
DuckDB file and atomically re-point `published.duckdb` to it.

1. the published schemas are copied from the build database into
   `.published-<run_id>.duckdb.partial` (checkpointed, fsynced);
2. with EXPORT_PARQUET on, every mart is exported from that file to
   `.parquet-<run_id>/<table>.parquet`;
3. the file is renamed `published-<run_id>.duckdb` and a hard link to it is
   renamed over `published.duckdb` — the commit point: `rename(2)` is atomic, so
   a reader opens either the old file or the new one, never a half-written one;
4. `parquet` and `docs` (symbolic links to the run's complete folders) are
   re-pointed the same way, and versions beyond the newest `KEEP_VERSIONS` are
   deleted, never the one currently published.

A failed or killed run never reaches step 3, so what is published stays
byte-identical. A publish that fails (a full disk, say) removes its unfinished
files itself and raises DiskFull naming the disk and the file it was writing; what
a killed one leaves behind (`*.partial`, `*.swap`) is removed by the next publish.

Each published file has `audit.published_tables`: one row per table it holds, with
its row count and the run that published it, so a reader can check in one
transaction that the marts it reads are the version the run record describes.
Readers that opened the previous file keep reading it (the inode lives on until they
close it); new connections see the new file. Rollback (publish/rollback.py) re-points
`published.duckdb` to a kept version with the same rename.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from customer_marts.config import Settings
from customer_marts.publish.files import (
    DOCS_DIR,
    PARQUET_DIR,
    is_target_of,
    point_to,
    remove_directory_link,
    staged_dir,
    swap_directory,
)
from customer_marts.publish.parquet import export_parquet
from customer_marts.publish.versions import (
    VERSION_PREFIX,
    current_version,
    prune,
    run_id_of,
    version_path,
)
from customer_marts.runs import record
from customer_marts.warehouse import DiskFull, connect, free_mb, fsync, is_disk_full, sql_literal

log = logging.getLogger(__name__)


PUBLISHED_SCHEMAS = ("marts", "audit")
# Runs on the copy before it is published, with the copy as the default database.
Finalize = Callable[[duckdb.DuckDBPyConnection], None]


def clean_leftovers(warehouse_dir: Path, published: Path) -> list[Path]:
    """Delete what a killed publish leaves behind: partial files and swap links."""
    patterns = (
        f".{VERSION_PREFIX}*.duckdb.partial*",
        f".{published.name}.*.swap",
        f".{PARQUET_DIR}.*.swap",
        f".{DOCS_DIR}.*.swap",
        f".{PARQUET_DIR}-*.partial",
        f".{DOCS_DIR}-*.partial",
    )
    removed = []
    for pattern in patterns:
        for path in warehouse_dir.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d leftover(s) of an interrupted publish", len(removed))
    return removed


def write_partial(
    build_db: Path, target: Path, finalize: Finalize | None = None
) -> tuple[Path, dict[str, int]]:
    """Copy the published schemas of the build database into `.<target>.partial`.

    `finalize(con)` then runs on the copy (as the default database), e.g. to
    record the run's success in the copied `audit.pipeline_runs`, and every table is
    stamped in audit.published_tables with the run id of `target`. Returns the complete,
    checkpointed and fsynced partial file and its row counts.
    """
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    row_counts: dict[str, int] = {}
    with connect(build_db, read_only=False) as con:
        con.execute(f"attach {sql_literal(partial)} as publish_target")
        log.info("copying %s into %s", " and ".join(PUBLISHED_SCHEMAS), partial.name)
        try:
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = current_database() and schema_name in ('marts', 'audit') "
                "order by schema_name, table_name"
            ).fetchall()
            for schema in PUBLISHED_SCHEMAS:
                con.execute(f"create schema publish_target.{schema}")
            for schema, table in tables:
                con.execute(
                    f"create table publish_target.{schema}.{table} as "
                    f"select * from {schema}.{table}"
                )
                row_counts[f"{schema}.{table}"] = con.execute(
                    f"select count(*) from publish_target.{schema}.{table}"
                ).fetchone()[0]
            if finalize is not None:
                build_catalog = con.execute("select current_database()").fetchone()[0]
                con.execute("use publish_target")
                try:
                    finalize(con)
                finally:
                    con.execute(f"use {build_catalog}")
            record.stamp_published_tables(con, "publish_target", row_counts, run_id_of(target))
            con.execute("checkpoint publish_target")
        finally:
            con.execute("detach publish_target")
    fsync(partial)
    return partial, row_counts


def publish(settings: Settings, run_id: str, finalize: Finalize | None = None) -> dict[str, int]:
    """Publish the build database's marts and audit schemas; return row counts.

    `finalize(con)` runs on the copy before it is published (see write_partial).
    """
    warehouse, published = settings.warehouse_dir, settings.published_db
    clean_leftovers(warehouse, published)
    version = version_path(warehouse, run_id)
    partial = version.with_name(f".{version.name}.partial")
    parquet = staged_dir(warehouse, PARQUET_DIR, run_id)
    if is_target_of(parquet, warehouse / PARQUET_DIR):  # a retried publish: keep it readable
        parquet = parquet.with_name(f"{parquet.name}-retry-{os.getpid()}")
    writing = partial
    try:
        partial, row_counts = write_partial(settings.build_db, version, finalize)
        if settings.export_parquet:
            writing = parquet
            export_parquet(partial, parquet, run_id)
        writing = version
        os.replace(partial, version)
        point_to(version, published)  # the commit point
    except BaseException as exc:
        removed = _remove_unpublished(warehouse, published, version, parquet)
        if is_disk_full(exc):
            raise DiskFull(
                f"publish: no space left on the disk of {warehouse} "
                f"({free_mb(warehouse)} MB free) while writing {writing}. "
                f"{published.name} is unchanged and the unfinished files were removed "
                f"({', '.join(sorted(p.name for p in removed)) or 'none'}). Free space "
                "(or point WAREHOUSE_DIR to a larger disk), then rerun the run."
            ) from exc
        raise
    if settings.export_parquet:
        swap_directory(parquet, warehouse / PARQUET_DIR)
    else:
        remove_directory_link(warehouse / PARQUET_DIR)
    docs = staged_dir(warehouse, DOCS_DIR, run_id)
    if docs.is_dir():
        swap_directory(docs, warehouse / DOCS_DIR)
    removed = prune(warehouse, settings.keep_versions, published)
    log.info(
        "published %s (%d tables); pruned %d old version(s)",
        version.name,
        len(row_counts),
        len(removed),
    )
    return row_counts


def _remove_unpublished(
    warehouse: Path, published: Path, version: Path, parquet: Path
) -> list[Path]:
    """Remove what a publish that failed before its commit point wrote."""
    removed = clean_leftovers(warehouse, published)
    if version.exists() and current_version(warehouse, published) != version:
        version.unlink()
        removed.append(version)
    for folder in (parquet, parquet.with_name(parquet.name + ".partial")):
        if folder.exists() and not is_target_of(folder, warehouse / PARQUET_DIR):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
