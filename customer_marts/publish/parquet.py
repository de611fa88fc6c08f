"""The Parquet export of a published version: one file per mart and a manifest, all or
nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from customer_marts.publish.versions import RECORD_DATES, run_record, version_path
from customer_marts.warehouse import connect, fsync, sql_literal

PARQUET_MANIFEST = "_published.json"


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
