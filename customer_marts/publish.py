"""Write-audit-publish: copy the validated `marts` and `audit` schemas into a new
DuckDB file and atomically re-point `published.duckdb` to it.

1. `published-<run_id>.duckdb` is written next to the build database (under a
   temporary name until it is complete, checkpointed and fsynced);
2. a hard link to it is renamed over `published.duckdb` (`rename(2)` is atomic:
   a reader opens either the old file or the new one, never a half-written one);
3. versions beyond the newest `KEEP_VERSIONS` are deleted.

Readers that opened the previous file keep reading it (the inode lives on until
they close it); new connections see the new file. A failed or killed run never
reaches step 2, so the published file is untouched.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from customer_marts.warehouse import connect

log = logging.getLogger(__name__)

PUBLISHED_SCHEMAS = ("marts", "audit")
VERSION_PREFIX = "published-"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def version_path(warehouse_dir: Path, run_id: str) -> Path:
    return warehouse_dir / f"{VERSION_PREFIX}{run_id}.duckdb"


def list_versions(warehouse_dir: Path) -> list[Path]:
    """Published versions, oldest first (run ids sort by start time)."""
    return sorted(warehouse_dir.glob(f"{VERSION_PREFIX}*.duckdb"))


def point_to(version: Path, published: Path) -> None:
    """Atomically make `published` the same file as `version`."""
    staging_link = published.with_name(f".{published.name}.swap")
    staging_link.unlink(missing_ok=True)
    os.link(version, staging_link)
    os.replace(staging_link, published)
    _fsync(published.parent)


def write_version(build_db: Path, target: Path) -> dict[str, int]:
    """Copy the published schemas of the build database into a new file."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    row_counts: dict[str, int] = {}
    with connect(build_db, read_only=False) as con:
        con.execute(f"attach '{partial}' as publish_target")
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
            con.execute("checkpoint publish_target")
        finally:
            con.execute("detach publish_target")
    _fsync(partial)
    os.replace(partial, target)
    return row_counts


def prune(warehouse_dir: Path, keep: int, published: Path) -> list[Path]:
    """Delete versions beyond the newest `keep`, never the one currently published."""
    current = published.stat().st_ino if published.exists() else None
    removed = []
    for version in list_versions(warehouse_dir)[: max(0, len(list_versions(warehouse_dir)) - keep)]:
        if version.stat().st_ino != current:
            version.unlink()
            removed.append(version)
    return removed


def publish(build_db: Path, published: Path, run_id: str, keep_versions: int) -> dict[str, int]:
    """Publish the build database's marts and audit schemas; return row counts."""
    version = version_path(published.parent, run_id)
    row_counts = write_version(build_db, version)
    point_to(version, published)
    removed = prune(published.parent, keep_versions, published)
    log.info(
        "published %s (%d tables); pruned %d old version(s)",
        version.name,
        len(row_counts),
        len(removed),
    )
    return row_counts
