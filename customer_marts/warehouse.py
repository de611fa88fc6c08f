"""DuckDB files: connections that say when a file is damaged or the disk is full,
SQL literals, a failed check's first rows, and adding the columns an older table lacks.

`build.duckdb` holds four kinds of schema:
- `raw`: rows as ingested (typed, checked, deduplicated), created from the contract;
- `audit`: the run record, the file manifest, the quarantine and check results;
- `staging`, `intermediate`, `marts`: built by dbt.
The pipeline's own tables (raw and audit) are defined in customer_marts/runs/schema.py.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


def fsync(path: Path) -> None:
    """Flush a file or a folder (a rename in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sql_literal(value: object) -> str:
    """`value` (a path, a name) as a SQL string literal: quotes doubled, so a folder
    such as `/data/o'brien` cannot break (or change) the statement it is put in."""
    return "'" + str(value).replace("'", "''") + "'"


class DatabaseDamaged(duckdb.IOException):
    """A DuckDB file that cannot be read: truncated, overwritten or not a DuckDB file.

    A retry cannot repair it: the pipeline fails at once and says what to do. A
    duckdb.IOException still, so code that copes with an unreadable file (listing
    versions, a failed check's rows) catches it as before.
    """


class DiskFull(Exception):
    """No space left on the warehouse's disk. Not retried: nothing in a nightly run
    frees space by itself, so a retry only fails again later and hides the cause."""


# What DuckDB 2.0 says about a file it cannot read (truncated, overwritten, not DuckDB).
DAMAGE_SIGNS = (
    "could not read enough bytes",
    "not a valid duckdb database file",
    "corrupt database file",
    "does not match stored checksum",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_damage(exc: BaseException) -> bool:
    return any(
        isinstance(e, duckdb.SerializationException)
        or any(sign in str(e).lower() for sign in DAMAGE_SIGNS)
        for e in _chain(exc)
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or its cause) is ENOSPC/EDQUOT, from Python, DuckDB or dbt's output."""
    return any(
        (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT))
        or "no space left on device" in str(e).lower()
        or "disk quota exceeded" in str(e).lower()
        for e in _chain(exc)
    )


def free_mb(path: Path) -> float | None:
    """Free space of the disk holding `path` (or its nearest existing parent), in MB."""
    for folder in (path, *path.parents):
        if folder.exists():
            stats = os.statvfs(folder)
            return round(stats.f_bavail * stats.f_frsize / 1e6, 1)
    return None


def damage_message(path: Path, exc: BaseException) -> str:
    """What is wrong with a damaged file and what to do, without any of its contents."""
    reason = str(exc).splitlines()[0][:300]
    if path.name == "build.duckdb":
        todo = (
            "rebuild it from the archive of every ingested file with `make recover` "
            "(docs/publishing.md, 'Recovery'), then run again; published.duckdb is untouched"
        )
    elif path.name.startswith("published"):
        todo = "roll back to a kept version: customer-marts rollback --previous (docs/publishing.md, 'Rollback')"
    else:
        todo = "restore it from a backup or delete it"
    return f"{path} is damaged and cannot be read ({reason}): {todo}"


# DuckDB's three header blocks before the data blocks of a database file.
FILE_HEADER_BYTES = 3 * 4096


def _check_length(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise if the file is shorter than the blocks in use need (it was truncated).

    DuckDB opens a truncated file without complaint and fails only when a query
    reaches a missing block, possibly after the run has written into it. Skipped while
    a write-ahead log is pending (its blocks are not in the file yet).
    """
    if path.with_name(path.name + ".wal").exists():
        return
    _, _, block_size, _, used_blocks, *_ = con.execute("pragma database_size").fetchone()
    expected = FILE_HEADER_BYTES + block_size * used_blocks  # free blocks may be unwritten
    actual = path.stat().st_size
    if actual < expected:
        raise duckdb.IOException(
            f"Could not read enough bytes from file: it is {actual} bytes long, but "
            f"{used_blocks} blocks of {block_size} bytes are in use ({expected} bytes)"
        )


# DuckDB's memory: by default it may take 80 % of the machine, and a 25M-row ingest took
# 15 GB. With a limit, big sorts, joins and temporary tables spill to the temp directory
# instead: DuckDB's own `<database file>.tmp` beside the file, in WAREHOUSE_DIR, for
# these connections and dbt's alike (it is not set here: DuckDB refuses to switch it
# once a connection to the same file has spilled). docs/configuration.md, "Memory".
DEFAULT_MEMORY_LIMIT = "4GB"


def memory_limit() -> str:
    """DuckDB's memory_limit: DUCKDB_MEMORY_LIMIT, default DEFAULT_MEMORY_LIMIT."""
    return os.environ.get("DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection in UTC that is always closed (and so checkpointed), with a
    memory limit (`memory_limit`) beyond which DuckDB spills to `<file>.tmp`.

    A damaged file (truncated, overwritten, failed checksum) raises DatabaseDamaged
    naming the file and what to do, whether DuckDB notices it on opening or later.
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        if is_damage(exc):
            raise DatabaseDamaged(damage_message(path, exc)) from exc
        raise
    try:
        _check_length(con, path)
        con.execute("set TimeZone = 'UTC'")
        # SET, not connect(config=...): a second connection to the same file in this
        # process, opened without that config, would be refused.
        con.execute(f"set memory_limit = {sql_literal(memory_limit())}")
        yield con
    except duckdb.Error as exc:
        if is_damage(exc) and not isinstance(exc, DatabaseDamaged):  # else: another file
            raise DatabaseDamaged(damage_message(path, exc)) from exc
        raise
    finally:
        con.close()


def split_columns(definition: str) -> list[tuple[str, str]]:
    """(name, type) pairs of a column list such as AUDIT_TABLES' values.

    Commas inside parentheses (`decimal(18, 2)`) do not split; constraints such as
    `primary key` are dropped from the type.
    """
    parts, depth, current = [], 0, ""
    for char in definition:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    columns = []
    for part in filter(None, (part.strip() for part in parts)):
        name, _, kind = part.partition(" ")
        columns.append((name, kind.lower().replace("primary key", "").strip()))
    return columns


def add_missing_columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, columns: str
) -> None:
    """Add the columns a table created by an older version lacks (new ones come last)."""
    existing = {
        row[0].lower()
        for row in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    for name, kind in split_columns(columns):
        if name.strip('"').lower() not in existing:
            con.execute(f"alter table {schema}.{table} add column if not exists {name} {kind}")


FAILING_ROWS_SHOWN = 5


def failing_rows(path: Path, sql: str) -> str:
    """The first rows a failed check's query returns, for its error message:
    `failing rows: [{...}, ...]` (JSON), or why they could not be read."""
    try:
        with connect(path, read_only=True) as con:
            rows = con.sql(f"select * from ({sql}) limit {FAILING_ROWS_SHOWN}").to_dicts()
    except duckdb.Error as exc:
        return f"failing rows not available: {exc}"
    return f"failing rows: {json.dumps(rows, default=str)}"
