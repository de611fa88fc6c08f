"""Read, shape and check a source's new files batch by batch, before the load transaction.

The files are taken in batches of about BATCH_BYTES: each batch is landed (`landing`),
shaped (`shaping`) and checked (`rules`) into the source's temp table
`<source>__checked`, its failed and malformed records are kept with their record for
the quarantine in `<source>__failed`, and its landed text is dropped. So the text of
only one batch is held at a time, whatever the run delivers; the checked rows (typed)
of all batches stay until the load. Then the duplicates are marked over all of them
(the latest file, then the latest line wins) and each file's counts are taken.

Nothing here is durable (temporary tables only), so it runs outside the transaction,
where a failed read cannot abort it; every file that cannot be read is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from customer_marts.ingest.landing import land
from customer_marts.ingest.reader import FileError, LandingFile
from customer_marts.ingest.rules import RowOptions, create_checked_table, mark_duplicates
from customer_marts.ingest.shaping import create_shaped_view, raw_record_sql
from customer_marts.ingest.sources import SourceConfig
from customer_marts.ingest.sql import literal

# Input read per batch. A batch's landed text takes about as much memory as its
# files' size; 25M order lines (2.1 GB of CSV) go in 9 batches.
BATCH_BYTES = 256 << 20


@dataclass
class Checked:
    """A source's new rows, checked, with what the manifest says of each file."""

    checked: str  # the temp table of checked rows (is_duplicate marked)
    failed: str  # the temp table of quarantine records
    failures: int = 0  # rows in `failed`
    stats: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    extras: dict[str, list[str]] = field(default_factory=dict)  # extra columns by file
    notes: dict[str, str] = field(default_factory=dict)  # manifest message by file
    errors: list[FileError] = field(default_factory=list)


def batches(files: list[LandingFile], limit: int = BATCH_BYTES) -> list[list[LandingFile]]:
    """Consecutive runs of `files` (in delivery order) of about `limit` bytes each."""
    result: list[list[LandingFile]] = []
    size = 0
    for file in files:
        file_size = file.path.stat().st_size if file.path.is_file() else 0
        if not result or (result[-1] and size + file_size > limit):
            result.append([])
            size = 0
        result[-1].append(file)
        size += file_size
    return result


def check_files(
    con: duckdb.DuckDBPyConnection,
    config: SourceConfig,
    files: list[LandingFile],
    options: RowOptions,
) -> Checked:
    """Land, shape and check `files` batch by batch (module docstring)."""
    source = config.name
    result = Checked(f"{source}__checked", f"{source}__failed")
    rejected_by_file: dict[str, int] = {}
    filled = False
    for batch in batches(files):
        landed = land(con, config, batch)
        result.extras.update(landed.extras)
        result.notes.update(landed.notes)
        result.errors.extend(landed.errors)
        try:
            if result.errors:
                continue  # the run fails: only the remaining files' errors are wanted
            create_shaped_view(con, config, landed.landed)
            con.execute(f"set TimeZone = {literal(config.timezone)}")
            try:
                create_checked_table(con, config, options, result.checked, append=filled)
            finally:
                con.execute("set TimeZone = 'UTC'")
            seqs = ", ".join(str(file.seq) for file in batch)
            in_batch = f"file_seq in ({seqs})"
            _keep_failures(con, config, result, landed.rejected, in_batch, append=filled)
            filled = True
            rejected_by_file.update(
                con.execute(
                    f"select file_name, count(*) from {landed.rejected} group by 1"
                ).fetchall()
            )
            if config.collapse:
                _note_collapsed(con, config, result, landed.landed, in_batch)
        finally:
            con.execute("drop view if exists shaped")
            landed.drop(con)
    if result.errors:
        return result
    mark_duplicates(con, config, result.checked)
    result.stats = _file_stats(con, result.checked, rejected_by_file)
    return result


def _keep_failures(
    con: duckdb.DuckDBPyConnection,
    config: SourceConfig,
    result: Checked,
    rejected: str,
    in_batch: str,
    append: bool,
) -> None:
    """The batch's failed rows (with their shaped record) and malformed CSV records, as
    quarantine records in `result.failed`."""
    if not append:
        con.execute(
            f"create or replace temp table {result.failed} (file_seq integer, "
            'file_name varchar, line_number bigint, "column" varchar, reason varchar, '
            "raw_record varchar)"
        )
    (count,) = con.execute(
        f"select (select count(*) from {result.checked} where failed_reason is not null "
        f"and {in_batch}) + (select count(*) from {rejected})"
    ).fetchone()
    if not count:
        return
    result.failures += count
    con.execute(
        f"""
        insert into {result.failed}
        with failed as (
            select file_seq, file_name, _line_number, failed_column, failed_reason
            from {result.checked} where failed_reason is not null and {in_batch}
        )
        select failed.*, {raw_record_sql(config)} as raw_record
        from failed join shaped using (file_seq, file_name, _line_number)
        union all
        select file_seq, file_name, line_number, "column", reason, raw_record
        from {rejected}
        """
    )


def _note_collapsed(
    con: duckdb.DuckDBPyConnection,
    config: SourceConfig,
    result: Checked,
    landed: str,
    in_batch: str,
) -> None:
    """Manifest messages: how a batch's line items were collapsed into records."""
    lines = dict(con.execute(f"select file_name, count(*) from {landed} group by 1").fetchall())
    records = dict(
        con.execute(
            f"select file_name, count(*) from {result.checked} where {in_batch} group by 1"
        ).fetchall()
    )
    for file_name, count in lines.items():
        result.notes[file_name] = (
            f"{count} line(s) collapsed into {records.get(file_name, 0)} record(s), one per "
            f"{', '.join(config.contract.key)}; rows_* count records"
        )


def _file_stats(
    con: duckdb.DuckDBPyConnection, checked: str, rejected_by_file: dict[str, int]
) -> dict[str, tuple[int, int, int, int]]:
    """(read, loaded, quarantined, duplicate) per file; a malformed record is a row read
    and quarantined."""
    stats = {
        row[0]: row[1:]
        for row in con.execute(
            f"""
            select file_name, count(*),
                count(*) filter (failed_reason is null and not is_duplicate),
                count(*) filter (failed_reason is not null), count(*) filter (is_duplicate)
            from {checked} group by file_name
            """
        ).fetchall()
    }
    for file_name, count in rejected_by_file.items():
        read, loaded, quarantined, duplicate = stats.get(file_name, (0, 0, 0, 0))
        stats[file_name] = (read + count, loaded, quarantined + count, duplicate)
    return stats
