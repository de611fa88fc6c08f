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
transaction that the marts it reads are the version the run record describes. Readers that opened the previous file keep reading it (the inode lives
on until they close it); new connections see the new file. `rollback` re-points
`published.duckdb` to a kept version with the same rename.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from customer_marts.config import Settings
from customer_marts.runs import record
from customer_marts.warehouse import (
    DiskFull,
    connect,
    free_mb,
    fsync,
    is_disk_full,
    sql_literal,
)

log = logging.getLogger(__name__)

PUBLISHED_SCHEMAS = ("marts", "audit")
VERSION_PREFIX = "published-"
PARQUET_DIR = "parquet"
DOCS_DIR = "docs"
PARQUET_MANIFEST = "_published.json"
# Runs on the copy before it is published, with the copy as the default database.
Finalize = Callable[[duckdb.DuckDBPyConnection], None]
RECORD_DATES = ("logical_date", "data_as_of")  # data_as_of is absent in versions before it


# ---------------------------------------------------------------- atomic file operations


def _swap_name(path: Path) -> Path:
    """A temporary name next to `path`, unique to this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.swap")


def point_to(version: Path, published: Path) -> None:
    """Atomically make `published` the same file (inode) as `version`."""
    swap = _swap_name(published)
    swap.unlink(missing_ok=True)
    os.link(version, swap)
    os.replace(swap, published)
    fsync(published.parent)


def staged_dir(warehouse_dir: Path, kind: str, run_id: str) -> Path:
    """Where a run prepares its `parquet` or `docs` folder before it is swapped in."""
    return warehouse_dir / f".{kind}-{run_id}"


def swap_directory(staged: Path, link: Path) -> None:
    """Atomically re-point the symbolic link `link` to the complete folder `staged`.

    The link is relative (it survives moving or mounting the warehouse folder).
    The folder it pointed to before is kept, so a reader that resolved the old
    link a moment ago can still open its files; older folders are deleted.
    """
    previous = Path(os.readlink(link)).name if link.is_symlink() else None
    if link.exists() and not link.is_symlink():  # a real folder (made by hand): set it aside
        link.rename(link.with_name(f".{link.name}-replaced"))
    swap = _swap_name(link)
    swap.unlink(missing_ok=True)
    swap.symlink_to(staged.name)
    os.replace(swap, link)
    fsync(link.parent)
    for entry in link.parent.glob(f".{link.name}-*"):
        if entry.name not in (staged.name, previous):
            shutil.rmtree(entry, ignore_errors=True)


def _is_target_of(folder: Path, link: Path) -> bool:
    return link.is_symlink() and Path(os.readlink(link)).name == folder.name


def remove_directory_link(link: Path) -> None:
    """Remove the `parquet` link and its folders (the export was switched off)."""
    if link.is_symlink():
        link.unlink()
        for entry in link.parent.glob(f".{link.name}-*"):
            shutil.rmtree(entry, ignore_errors=True)
        log.info("EXPORT_PARQUET is off: removed %s so no tool reads a stale export", link)


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


# ---------------------------------------------------------------- versions


def run_record(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """A run's row of audit.pipeline_runs as a dict ({} if absent); any schema version."""
    cursor = con.execute("select * from audit.pipeline_runs where run_id = ?", [run_id])
    names = [column[0] for column in cursor.description]
    return dict(zip(names, cursor.fetchone() or (), strict=False))


def version_path(warehouse_dir: Path, run_id: str) -> Path:
    return warehouse_dir / f"{VERSION_PREFIX}{run_id}.duckdb"


def run_id_of(version: Path) -> str:
    return version.name.removeprefix(VERSION_PREFIX).removesuffix(".duckdb")


def list_versions(warehouse_dir: Path) -> list[Path]:
    """Published versions, oldest first (run ids sort by start time)."""
    return sorted(warehouse_dir.glob(f"{VERSION_PREFIX}*.duckdb"))


def current_version(warehouse_dir: Path, published: Path) -> Path | None:
    """The version `published` currently is (same inode), if any."""
    if not published.exists():
        return None
    inode = published.stat().st_ino
    return next((v for v in list_versions(warehouse_dir) if v.stat().st_ino == inode), None)


def prune(warehouse_dir: Path, keep: int, published: Path) -> list[Path]:
    """Delete versions beyond the newest `keep`, never the one currently published."""
    current = published.stat().st_ino if published.exists() else None
    versions = list_versions(warehouse_dir)
    removed = []
    for version in versions[: max(0, len(versions) - keep)]:
        if version.stat().st_ino != current:
            version.unlink()
            removed.append(version)
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


# ---------------------------------------------------------------- Parquet export


def export_parquet(database: Path, destination: Path, run_id: str) -> dict[str, int]:
    """Export every mart of `database` to `destination/<table>.parquet`, all or nothing.

    The files are written to `<destination>.partial`, fsynced, and the folder is
    renamed to `destination` once complete. `_published.json` names the version,
    its as-of dates and each file's row count.
    """
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(destination, ignore_errors=True)
    partial.mkdir(parents=True)
    with connect(database, read_only=True) as con:
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from duckdb_tables() where database_name = current_database() "
                "and schema_name = 'marts' order by 1"
            ).fetchall()
        ]
        counts = {}
        for table in tables:
            path = partial / f"{table}.parquet"
            con.execute(
                f"copy marts.{table} to {sql_literal(path)} (format parquet, compression zstd)"
            )
            counts[table] = con.execute(f"select count(*) from marts.{table}").fetchone()[0]
        record = run_record(con, run_id)
    manifest = {
        "published_version": version_path(Path(), run_id).name,
        "run_id": run_id,
        **{key: str(record[key]) if record.get(key) else None for key in RECORD_DATES},
        "row_counts": counts,
    }
    (partial / PARQUET_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    for path in partial.iterdir():
        fsync(path)
    fsync(partial)
    partial.rename(destination)
    return counts


# ---------------------------------------------------------------- publish and rollback


def publish(settings: Settings, run_id: str, finalize: Finalize | None = None) -> dict[str, int]:
    """Publish the build database's marts and audit schemas; return row counts.

    `finalize(con)` runs on the copy before it is published (see write_partial).
    """
    warehouse, published = settings.warehouse_dir, settings.published_db
    clean_leftovers(warehouse, published)
    version = version_path(warehouse, run_id)
    partial = version.with_name(f".{version.name}.partial")
    parquet = staged_dir(warehouse, PARQUET_DIR, run_id)
    if _is_target_of(parquet, warehouse / PARQUET_DIR):  # a retried publish: keep it readable
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
        if folder.exists() and not _is_target_of(folder, warehouse / PARQUET_DIR):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def resolve_version(warehouse_dir: Path, ref: str) -> Path:
    """A kept version from a run id, a file name or a path; raise naming the choices."""
    name = Path(ref).name
    candidates = [warehouse_dir / name, version_path(warehouse_dir, name)]
    for candidate in candidates:
        if candidate.name.startswith(VERSION_PREFIX) and candidate.is_file():
            return candidate
    kept = ", ".join(run_id_of(v) for v in list_versions(warehouse_dir)) or "none"
    raise FileNotFoundError(f"no published version {ref!r} in {warehouse_dir}; kept: {kept}")


def previous_version(warehouse_dir: Path, published: Path) -> Path:
    """The kept version just before the one currently published."""
    versions = list_versions(warehouse_dir)
    current = current_version(warehouse_dir, published)
    index = versions.index(current) if current in versions else len(versions)
    if index == 0:
        raise FileNotFoundError(f"no version older than the published one in {warehouse_dir}")
    return versions[index - 1]


def rollback(settings: Settings, version: Path) -> None:
    """Re-point published.duckdb (and the Parquet export) to a kept version, atomically.

    The version's Parquet set is reused if it is still kept, else exported again
    before anything is re-pointed.
    """
    warehouse = settings.warehouse_dir
    staged = staged_dir(warehouse, PARQUET_DIR, run_id_of(version))
    if settings.export_parquet and not (staged / PARQUET_MANIFEST).exists():
        export_parquet(version, staged, run_id_of(version))
    point_to(version, settings.published_db)
    log.info("published.duckdb now points to %s", version.name)
    if settings.export_parquet:
        swap_directory(staged, warehouse / PARQUET_DIR)
        log.info("%s now holds the marts of %s", warehouse / PARQUET_DIR, version.name)


def describe_versions(settings: Settings) -> list[dict]:
    """Every kept version with its run's dates, oldest first, marking the published one."""
    current = current_version(settings.warehouse_dir, settings.published_db)
    rows = []
    for version in list_versions(settings.warehouse_dir):
        info = {
            "version": version.name,
            "run_id": run_id_of(version),
            "is_published": version == current,
            "size_mb": round(version.stat().st_size / 1e6, 1),
        }
        try:
            with connect(version, read_only=True) as con:
                record = run_record(con, info["run_id"])
        except duckdb.Error as exc:  # an unreadable version is still listed
            log.warning("cannot read the run record of %s: %s", version.name, exc)
            record = {}
        for key in RECORD_DATES:
            info[key] = str(record[key]) if record.get(key) else None
        rows.append(info)
    return rows
