"""The load, inside the run's one transaction: raw rows, quarantine and manifest together.

For one source's plan: earlier rows of corrected files go, the landed rows are shaped
and checked, failed rows (and malformed CSV records) go to audit.quarantine with their
line number, column and reason, one row per key is kept (the latest file, then the
latest line wins; the others count as duplicates), and one audit.ingested_files row per
file says rows_read = rows_loaded + rows_quarantined + rows_duplicate.
"""

from __future__ import annotations

import duckdb

from customer_marts.ingest.landing import Landed
from customer_marts.ingest.plan import GONE, Plan
from customer_marts.ingest.rules import RowOptions, create_checked_table
from customer_marts.ingest.shaping import create_shaped_view, raw_record_sql
from customer_marts.ingest.sources import SourceConfig
from customer_marts.ingest.sql import key_in, literal, names_list, quote
from customer_marts.runs import manifest


def load_source(
    con: duckdb.DuckDBPyConnection, plan: Plan, options: RowOptions, run_id: str
) -> dict[str, int]:
    """Check the landed rows and write raw, quarantine and manifest (in the transaction)."""
    config, landed, counts = plan.config, plan.landed, plan.counts
    source = config.name
    manifest.note_gone(con, source, GONE, plan.gone, plan.back, run_id)
    if landed is None:
        manifest.write_manifest(con, plan.manifest_rows)
        return counts
    if plan.replaced:
        names = ", ".join(literal(name) for name in plan.replaced)
        con.execute(f"delete from raw.{source} where _file_name in ({names})")
        manifest.mark_replaced(con, source, plan.replaced)

    create_shaped_view(con, config, landed.landed)
    con.execute(f"set TimeZone = {literal(config.timezone)}")
    try:
        create_checked_table(con, config, options)
    finally:
        con.execute("set TimeZone = 'UTC'")
    _quarantine(con, config, landed.rejected, run_id)
    unit = config.contract.unit
    # The latest file wins: rows of earlier files with the same key (or, for order lines,
    # of the same order: a later delivery replaces all its lines) become duplicates.
    kept = (
        f"select {names_list(unit)} from checked where failed_reason is null and not is_duplicate"
    )
    superseded = con.execute(
        f"""
        delete from raw.{source} as earlier
        where {key_in(unit, "earlier", kept)}
        returning _file_name
        """
    ).fetchall()
    superseded_by_file: dict[str, int] = {}
    for (name,) in superseded:
        superseded_by_file[name] = superseded_by_file.get(name, 0) + 1
    manifest.move_to_duplicates(con, source, superseded_by_file)
    columns = ", ".join(quote(column) for column in config.contract.column_names)
    con.execute(
        f"""
        insert into raw.{source} ({columns}, _file_name, _line_number, _run_id)
        select {columns}, file_name, _line_number, ?
        from checked where failed_reason is null and not is_duplicate
        """,
        [run_id],
    )
    stats = _file_stats(con, landed.rejected)
    notes = _notes(con, config, landed)
    for file in plan.files:
        read, loaded, quarantined, duplicate = stats.get(file.name, (0, 0, 0, 0))
        message = "; ".join(
            part
            for part in (
                notes.get(file.name),
                "replaces an earlier delivery" if file.name in plan.replaced else None,
                plan.notes.get(file.name),
            )
            if part
        )
        plan.manifest_rows.append(
            manifest.manifest_row(
                source,
                file.name,
                plan.shas[file.name],
                run_id,
                status="loaded",
                rows=(read, loaded, quarantined, duplicate),
                extra=landed.extras.get(file.name),
                message=message or None,
            )
        )
        counts["files_loaded"] += 1
        for name, value in zip(
            ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate"),
            (read, loaded, quarantined, duplicate),
            strict=True,
        ):
            counts[name] = counts.get(name, 0) + value
    manifest.write_manifest(con, plan.manifest_rows)
    return counts


def _quarantine(
    con: duckdb.DuckDBPyConnection, config: SourceConfig, rejected: str, run_id: str
) -> None:
    """Failed rows (with their shaped record) and malformed CSV records to audit.quarantine."""
    counts = con.execute(
        "select (select count(*) from checked where failed_reason is not null) "
        f"+ (select count(*) from {rejected})"
    ).fetchone()
    if not counts[0]:
        return
    records = f"""
        with failed as (
            select file_seq, file_name, _line_number, failed_column, failed_reason
            from checked where failed_reason is not null
        ),
        records as (
            select failed.*, {raw_record_sql(config)} as raw_record
            from failed join shaped using (file_seq, file_name, _line_number)
            union all
            select file_seq, file_name, line_number, "column", reason, raw_record
            from {rejected}
        )
        select file_seq, file_name, _line_number as line_number, failed_column as "column",
            failed_reason as reason, raw_record
        from records
    """
    manifest.write_quarantine(con, config.name, records, run_id)


def _file_stats(
    con: duckdb.DuckDBPyConnection, rejected: str
) -> dict[str, tuple[int, int, int, int]]:
    """(read, loaded, quarantined, duplicate) per file; a malformed record is a row read."""
    return {
        row[0]: row[1:]
        for row in con.execute(
            f"""
            with rows as (
                select file_name,
                    failed_reason is null and not is_duplicate as is_loaded,
                    failed_reason is not null as is_quarantined,
                    is_duplicate
                from checked
                union all
                select file_name, false, true, false from {rejected}
            )
            select file_name, count(*), count(*) filter (is_loaded),
                count(*) filter (is_quarantined), count(*) filter (is_duplicate)
            from rows group by file_name
            """
        ).fetchall()
    }


def _notes(con: duckdb.DuckDBPyConnection, config: SourceConfig, landed: Landed) -> dict[str, str]:
    """Manifest messages: empty files, and how line items were collapsed into records."""
    notes = dict(landed.notes)
    if config.collapse:
        lines = dict(
            con.execute(f"select file_name, count(*) from {landed.landed} group by 1").fetchall()
        )
        records = dict(con.execute("select file_name, count(*) from checked group by 1").fetchall())
        for file_name, count in lines.items():
            notes[file_name] = (
                f"{count} line(s) collapsed into {records.get(file_name, 0)} record(s), one per "
                f"{', '.join(config.contract.key)}; rows_* count records"
            )
    return notes
