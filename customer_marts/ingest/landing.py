"""Read export files into temporary tables, as text, with line numbers.

One job: turn files into rows, with DuckDB's own readers and no Python row loops.
For a source `s`, `land()` fills the view `s__landed` (one text column per name
the source's mapping knows) and the table `s__rejected` (malformed CSV records).
- CSV (plain or gzip): the header line is read in Python and mapped onto the
  source's names (`sources.SourceConfig`); files that share a dialect and header
  are read by one `read_csv` with explicit VARCHAR columns and no sniffing.
  (Sniffing is off on purpose: with DuckDB 2.0.1 and explicit columns, a
  multi-file read sniffed on its first file silently dropped the rows of a later
  file with other line endings; it could also pick a comment character or rows
  to skip.) Only when that read fails (a malformed record, a wrong encoding) are
  the files read again with `store_rejects`: malformed records then land in
  `s__rejected`, to be quarantined, never dropped; a wrong encoding fails the file.
- Parquet: one file at a time; a column whose type cannot hold the contract's
  kind (e.g. an integer `ordered_at`) fails the file by name.

DuckDB aborts a transaction at the first error, so files are landed before the
load transaction starts (temporary tables only; nothing durable is written).

Line numbers are those an editor shows: the header is line 1 and a record with
quoted line breaks spans several lines. Parquet rows are numbered from 1.
File-level problems (unreadable, wrong encoding, missing required columns, a
header line longer than HEADER_LIMIT, a count of records read that differs from
the file's own) come back as `FileError`s naming the file, and never quoting its
values; the caller fails the run with them.

Every CSV file's records are also counted without DuckDB (`records.py`), and the
rows read (landed plus rejected) must match that count. A record longer than
RECORD_LIMIT is not given to DuckDB: the file is read from a copy in which that
record is one short placeholder line, quarantined as too long with its line.
Paths are handed to DuckDB's readers as literals (glob characters escaped).

The readers: `csv_files`, `parquet_files`; line numbering: `line_numbers`;
what they share: `reader`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import duckdb

from customer_marts.ingest.csv_files import (
    count_file_records,
    csv_header,
    land_csv,
    without_long_records,
)
from customer_marts.ingest.parquet_files import land_parquet
from customer_marts.ingest.reader import FileError, LandingFile, Reader, map_header
from customer_marts.ingest.records import RecordCount
from customer_marts.ingest.sources import SourceConfig
from customer_marts.ingest.sql import reader_error


@dataclass
class Landed:
    landed: str  # the view of landed rows
    rejected: str  # the table of malformed records
    extras: dict[str, list[str]] = field(default_factory=dict)  # extra columns by file
    notes: dict[str, str] = field(default_factory=dict)  # manifest message by file
    errors: list[FileError] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # the temp tables behind them

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the view and the tables (the landed text), once checked."""
        con.execute(f"drop view if exists {self.landed}")
        for table in self.tables:
            con.execute(f"drop table if exists {table}")


def land(con: duckdb.DuckDBPyConnection, config: SourceConfig, files: list[LandingFile]) -> Landed:
    """Read `files` into the view `<source>__landed` (malformed CSV records into
    `<source>__rejected`). Run it outside a transaction: a failed read aborts one.

    The view has file_seq, file_name, _line_number (the line in the file: a name no
    canonical column has; `line_number` is one of order_lines) and one text column per target
    name of the source (`SourceConfig.targets`), as read (NULL for an empty field).
    """
    reader = Reader(con, config)
    groups: dict[tuple, list[tuple[LandingFile, list[str]]]] = {}
    extras: dict[str, list[str]] = {}
    notes: dict[str, str] = {}
    errors: list[FileError] = []
    expected: dict[str, int] = {}  # records by file, counted without DuckDB
    counts: dict[str, RecordCount] = {}  # the same, with line feeds in fields
    with tempfile.TemporaryDirectory(prefix="customer_marts_landing_") as scratch:
        for file in files:
            try:
                fmt = config.format_of(file.path)
                if file.path.stat().st_size == 0:
                    extras[file.name], notes[file.name] = [], "empty file"
                    continue
                if fmt == "parquet":
                    extras[file.name], expected[file.name] = land_parquet(reader, file)
                    continue
                delimiter, header, newline = csv_header(config, file, fmt)
                count = count_file_records(config, file, fmt, newline, delimiter)
                if not header:
                    if count.records:
                        raise FileError(file.name, "line 1 is blank: the header must be line 1")
                    extras[file.name], notes[file.name] = [], "empty file"
                    continue
                extras[file.name] = map_header(config, file.name, header)[1]
                expected[file.name] = count.records
                counts[file.name] = count
                key: tuple = (fmt, delimiter, tuple(header))
                if count.long:  # read alone, from a copy without the long records
                    file = without_long_records(reader, config, file, fmt, count.long, scratch)
                    key = ("csv", delimiter, tuple(header), file.path)
            except FileError as exc:
                errors.append(exc)
                continue
            except duckdb.Error as exc:
                errors.append(FileError(file.name, f"cannot be read ({reader_error(exc)})"))
                continue
            groups.setdefault(key, []).append((file, header))
        for (fmt, delimiter, *_), members in groups.items():
            try:
                land_csv(reader, fmt, delimiter, members, counts)
            except (FileError, duckdb.Error) as exc:
                if len(members) == 1:
                    errors.append(_as_file_error(members[0][0], exc))
                    continue
                for member in members:  # find the culprit(s): read one file at a time
                    try:
                        land_csv(reader, fmt, delimiter, [member], counts)
                    except (FileError, duckdb.Error) as single:
                        errors.append(_as_file_error(member[0], single))
    view = reader.create_view()
    failed = {error.file_name for error in errors}
    read = dict(
        con.execute(
            f"select file_name, count(*) from (select file_name from {view} "
            f"union all select file_name from {reader.rejected}) group by 1"
        ).fetchall()
    )
    for name, records in expected.items():
        if name not in failed and read.get(name, 0) != records:
            errors.append(
                FileError(
                    name,
                    f"{read.get(name, 0)} record(s) were read but the file has {records} "
                    "(counted independently of DuckDB's reader); the file was not loaded. "
                    "Check it for stray quotes or unusual line endings.",
                )
            )
    return Landed(view, reader.rejected, extras, notes, errors, reader.temp_tables())


def _as_file_error(file: LandingFile, exc: Exception) -> FileError:
    if isinstance(exc, FileError):
        return exc
    return FileError(file.name, f"cannot be read as CSV ({reader_error(exc)})")
