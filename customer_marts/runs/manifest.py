"""The file manifest (`audit.ingested_files`) and the quarantine (`audit.quarantine`).

The ingest calls these with its own connection, inside its transaction, so that the
manifest, the quarantine and the raw rows commit (or roll back) together.
"""

from __future__ import annotations

import duckdb

MANIFEST_COLUMNS = (
    "source",
    "file_name",
    "sha256",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
    "status",
    "extra_columns",
    "message",
    "run_id",
)


def manifest_row(
    source: str,
    file_name: str,
    sha: str | None,
    run_id: str,
    status: str,
    rows: tuple[int, int, int, int] = (0, 0, 0, 0),
    extra: list[str] | None = None,
    message: str | None = None,
) -> dict[str, object]:
    """One file's manifest row; `rows` is (read, loaded, quarantined, duplicate)."""
    values = (source, file_name, sha, *rows, status, ", ".join(extra or []) or None, message)
    return dict(zip(MANIFEST_COLUMNS, (*values, run_id), strict=True))


def write_manifest(con: duckdb.DuckDBPyConnection, rows: list[dict[str, object]]) -> None:
    """Insert manifest rows in one statement (one INSERT per file is slow for 700 files)."""
    if not rows:
        return
    names = ", ".join(MANIFEST_COLUMNS)
    values = ", ".join(f"row.{name}" for name in MANIFEST_COLUMNS)
    con.execute(
        f"insert into audit.ingested_files ({names}, loaded_at) "
        f"select {values}, now() from (select unnest(?) as row)",
        [rows],
    )


def known_files(con: duckdb.DuckDBPyConnection, source: str) -> list[tuple]:
    """(file_name, sha256, status, message) of the source's loaded and skipped files."""
    return con.execute(
        "select file_name, sha256, status, message from audit.ingested_files "
        "where source = ? and status in ('loaded', 'skipped')",
        [source],
    ).fetchall()


def mark_replaced(con: duckdb.DuckDBPyConnection, source: str, file_names: list[str]) -> None:
    """Loaded files whose rows a new delivery under the same name replaces."""
    con.execute(
        "update audit.ingested_files set status = 'replaced' "
        "where source = ? and status = 'loaded' and file_name in (select unnest(?))",
        [source, file_names],
    )


def move_to_duplicates(
    con: duckdb.DuckDBPyConnection, source: str, superseded: dict[str, int]
) -> None:
    """Count rows of loaded files that a later file's rows superseded as duplicates."""
    for file_name, count in superseded.items():
        con.execute(
            "update audit.ingested_files set rows_loaded = rows_loaded - ?, "
            "rows_duplicate = rows_duplicate + ? "
            "where source = ? and file_name = ? and status = 'loaded'",
            [count, count, source, file_name],
        )


def note_gone(
    con: duckdb.DuckDBPyConnection,
    source: str,
    note: str,
    gone: list[str],
    back: list[str],
    run_id: str,
) -> None:
    """Add `note` (and the run that noticed it) to the manifest rows of loaded files that
    left LANDING_DIR, and take it off again for files that are back."""
    if gone:
        con.execute(
            "update audit.ingested_files set message = concat_ws('; ', message, ?) "
            "where source = ? and status = 'loaded' and file_name in (select unnest(?))",
            [f"{note}; noticed by run {run_id}", source, gone],
        )
    if back:
        con.execute(
            "update audit.ingested_files set message = nullif(regexp_replace(message, "
            "'(; )?' || regexp_escape(?) || '; noticed by run [^;]*', ''), '') "
            "where source = ? and status = 'loaded' and file_name in (select unnest(?))",
            [note, source, back],
        )


def write_quarantine(
    con: duckdb.DuckDBPyConnection, source: str, records_sql: str, run_id: str
) -> None:
    """Insert the rows of `records_sql` (columns file_seq, file_name, line_number, "column",
    reason, raw_record) into audit.quarantine, in file and line order."""
    con.execute(
        'insert into audit.quarantine (source, file_name, line_number, "column", reason, '
        "raw_record, run_id) "
        'select ?, file_name, line_number, "column", reason, raw_record, ? '
        f"from ({records_sql}) order by file_seq, line_number",
        [source, run_id],
    )
