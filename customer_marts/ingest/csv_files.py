"""CSV (plain or gzip): the header line read in Python, every record counted without
DuckDB (`records`), records too long to read replaced by a placeholder line, and the
files that share a dialect and header read by one `read_csv` with explicit VARCHAR
columns and no sniffing; only when that read fails are they read again keeping the
malformed records (`store_rejects`).
"""

from __future__ import annotations

import csv
import gzip
import zlib
from pathlib import Path

import duckdb

from customer_marts.ingest.line_numbers import REJECT_SCANS, REJECTS, number_lines_exactly
from customer_marts.ingest.reader import FileError, LandingFile, Reader, map_header
from customer_marts.ingest.records import (
    LongRecord,
    RecordCount,
    count_records,
    open_units,
    write_without_long_records,
)
from customer_marts.ingest.sources import DELIMITERS, SourceConfig
from customer_marts.ingest.sql import literal, path_literal

PYTHON_ENCODINGS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}

# The header line is read up to this many characters; a longer one fails the file.
HEADER_LIMIT = 1 << 20


def csv_header(config: SourceConfig, file: LandingFile, fmt: str) -> tuple[str, list[str], str]:
    """(delimiter, column names, line break: "\n" or a bare "\r") from the first line."""
    opener = gzip.open if fmt == "csv.gz" else open
    try:
        with opener(
            file.path, "rt", encoding=PYTHON_ENCODINGS[config.encoding], newline=""
        ) as handle:
            first = handle.readline(HEADER_LIMIT + 1)  # bounded: never the whole file
    except UnicodeDecodeError as exc:
        raise FileError(
            file.name,
            f"is not valid {config.encoding} ({exc.reason} at byte {exc.start} of the header). "
            "Export it as UTF-8, or set `encoding` for this source in sources.yml.",
        ) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise FileError(file.name, f"cannot be read as {fmt} ({type(exc).__name__})") from exc
    if len(first) > HEADER_LIMIT:
        raise FileError(
            file.name,
            f"line 1 (the header) is longer than {HEADER_LIMIT:,} characters; a header "
            "line names the columns",
        )
    newline = "\r" if first.endswith("\r") else "\n"
    first = first.rstrip("\r\n")
    delimiter = config.delimiter
    if delimiter is None:
        counts = {candidate: first.count(candidate) for candidate in DELIMITERS}
        delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    try:
        header = next(csv.reader([first], delimiter=delimiter), []) if first.strip() else []
    except csv.Error as exc:
        raise FileError(file.name, "line 1 (the header) cannot be split into columns") from exc
    return delimiter, header, newline


def count_file_records(
    config: SourceConfig, file: LandingFile, fmt: str, newline: str, delimiter: str
):
    """The file's records, counted without DuckDB (records.py), or FileError."""
    try:
        with open_units(file.path, fmt == "csv.gz", config.encoding) as handle:
            return count_records(handle, newline, delimiter)
    except UnicodeDecodeError as exc:
        raise FileError(
            file.name, f"is not valid {config.encoding} ({exc.reason} at offset {exc.start})"
        ) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise FileError(file.name, f"cannot be read as {fmt} ({type(exc).__name__})") from exc


def without_long_records(
    reader: Reader,
    config: SourceConfig,
    file: LandingFile,
    fmt: str,
    long: list[LongRecord],
    scratch: str,
) -> LandingFile:
    """A copy of the file (uncompressed) in which each record longer than RECORD_LIMIT
    is the line `<mark><size>:<line breaks>`: DuckDB rejects it (one field), and the
    rejected record is reported as too long, at its line, without its content."""
    copy = Path(scratch) / f"{file.seq}.csv"
    text_mode = config.encoding not in ("utf-8", "latin-1")

    def placeholder(record: LongRecord):
        line = f"{reader.mark}{record.size}:{record.breaks}" + ("\n" if record.terminated else "")
        return line if text_mode else line.encode()

    with open_units(file.path, fmt == "csv.gz", config.encoding) as handle:
        if text_mode:
            target = copy.open("w", encoding=config.encoding, newline="")
        else:
            target = copy.open("wb")
        with target:
            write_without_long_records(handle, target, long, placeholder)
    return LandingFile(file.seq, copy, file.name)


def land_csv(
    reader: Reader,
    fmt: str,
    delimiter: str,
    members: list[tuple[LandingFile, list[str]]],
    counts: dict[str, RecordCount] | None = None,
) -> None:
    """Read files that share a dialect and header into one part table. `counts`, the
    files' own record counts by name (`records.py`), spare a scan of the read rows
    for line feeds in fields and for the first row of each file."""
    con, config = reader.con, reader.config
    header = members[0][1]
    found, _ = map_header(config, members[0][0].name, header)
    paths = ", ".join(path_literal(file.path) for file, _ in members)
    columns = ", ".join(f"'c{position}': 'VARCHAR'" for position in range(len(header)))
    all_columns = [f"c{position}" for position in range(len(header))]
    part = reader.new_part([file for file, _ in members])
    table = reader.table("part", part)
    read = (
        f"create or replace temp table {table} as select filename, {', '.join(all_columns)} "
        f"from read_csv([{paths}], columns = {{{columns}}}, header = true, "
        f"delim = {literal(delimiter)}, quote = '\"', escape = '\"', auto_detect = false, "
        f"encoding = {literal(config.encoding)}, "
        f"compression = {literal('gzip' if fmt == 'csv.gz' else 'none')}, filename = true"
    )
    try:
        has_rejects = False
        try:
            con.execute(read + ")")
        except duckdb.Error:
            # A malformed record or another encoding: read again, keeping the bad records.
            con.execute(f"drop table if exists {REJECTS}; drop table if exists {REJECT_SCANS}")
            con.execute(
                f"{read}, store_rejects = true, rejects_table = '{REJECTS}', "
                f"rejects_scan = '{REJECT_SCANS}')"
            )
            _fail_on_encoding_errors(reader, part)
            has_rejects = con.execute(f"select count(*) > 0 from {REJECTS}").fetchone()[0]
        known = [counts.get(file.name) if counts else None for file, _ in members]
        if all(count is not None and count.newline == "\n" for count in known):
            # The counter saw every field: a field with a line feed is a quoted one.
            has_breaks = any(count.quoted_line_feeds for count in known)
        else:
            has_breaks = con.execute(
                f"select coalesce(bool_or(contains(concat({', '.join(all_columns)}), "
                f"chr(10))), false) from {table}"
            ).fetchone()[0]
        blanks = [
            (str(file.path), records_before, lines)
            for (file, _), count in zip(members, known, strict=True)
            for records_before, lines in (count.blanks_between_records() if count else [])
        ]
        exact = bool(has_rejects or has_breaks or blanks)
        if exact:
            number_lines_exactly(
                reader, part, all_columns, header, found, has_rejects, delimiter, blanks
            )
        # Without rejected records, each file's rows are its records, in file order (a
        # file whose rows differ from its count fails the run).
        rows = None if exact or None in known else [count.records for count in known]
        reader.add_part(part, found, first_line=2, exact=exact, rows=rows)
    except BaseException:
        reader.drop_part(part)
        raise


def _fail_on_encoding_errors(reader: Reader, part: int) -> None:
    encoding_errors = reader.con.execute(
        f"""
        select reading.file_name, rejects.line, rejects.error_message
        from {REJECTS} as rejects
        join {REJECT_SCANS} as scans using (scan_id, file_id)
        join {reader.reading} as reading
            on reading.part = {part} and reading.path = scans.file_path
        where rejects.error_type = 'INVALID ENCODING'
        order by 1, 2
        """
    ).fetchall()
    if encoding_errors:
        file_name, line, message = encoding_errors[0]
        raise FileError(
            file_name,
            f"is not valid {reader.config.encoding} (record {line}: {message}). Export it "
            "as UTF-8, or set `encoding` for this source in sources.yml.",
        )
