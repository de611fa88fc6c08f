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
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
import secrets
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from customer_marts.ingest.contract import EMAIL, EMAIL_PATTERN
from customer_marts.ingest.records import (
    RECORD_LIMIT,
    LongRecord,
    count_records,
    open_units,
    write_without_long_records,
)
from customer_marts.ingest.sources import DELIMITERS, SourceConfig, normalise

log = logging.getLogger(__name__)

PYTHON_ENCODINGS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}
REJECTS = "cm_rejects"
REJECT_SCANS = "cm_reject_scans"
# The header line is read up to this many characters; a longer one fails the file.
HEADER_LIMIT = 1 << 20
# A column name as exports write them; a first line with anything else (an address,
# a date, a number) is data, and its fields are never quoted in messages.
HEADER_NAME = re.compile(r"[^\W\d][\w .,#/()&+'%?-]{0,63}|")
# Parquet types each contract kind accepts (values are then checked row by row).
NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)
PARQUET_TYPES = {
    "timestamp": ("VARCHAR", "DATE", "TIMESTAMP"),
    "decimal": ("VARCHAR", *NUMERIC_TYPES),
    "integer": ("VARCHAR", *NUMERIC_TYPES),
}


@dataclass(frozen=True)
class LandingFile:
    seq: int  # order of delivery: the later file wins duplicate keys
    path: Path
    name: str  # relative to LANDING_DIR, as recorded in the manifest


class FileError(Exception):
    """A file that cannot be read as the contract requires."""

    def __init__(self, file_name: str, reason: str) -> None:
        super().__init__(f"{file_name}: {reason}")
        self.file_name = file_name
        self.reason = reason


@dataclass
class Landed:
    landed: str  # the view of landed rows
    rejected: str  # the table of malformed records
    extras: dict[str, list[str]] = field(default_factory=dict)  # extra columns by file
    notes: dict[str, str] = field(default_factory=dict)  # manifest message by file
    errors: list[FileError] = field(default_factory=list)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def path_literal(path: Path) -> str:
    """A path as DuckDB's file readers take it literally: their glob characters
    (`*`, `?`, `[`) each escaped as a one-character class."""
    return literal(re.sub(r"([*?\[])", r"[\1]", str(path)))


def looks_like_header(names: list[str]) -> bool:
    return all(HEADER_NAME.fullmatch(name.strip()) for name in names)


def shown_name(name: str, position: int) -> str:
    """A column name fit for a message or the manifest, else its position."""
    return name if HEADER_NAME.fullmatch(name.strip()) else f"(column {position + 1})"


class _Reader:
    """Reads files into numbered part tables; `<source>__landed` is the view over them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: SourceConfig) -> None:
        self.con = con
        self.config = config
        self.prefix = f"{config.name}__"
        self.reading = f"{self.prefix}reading"
        self.rejected = f"{self.prefix}rejected"
        self.parts: list[str] = []  # one SELECT per part table, in landed's shape
        # Starts the placeholder line of a record too long to read (see records.py).
        self.mark = f"customer-marts-long-record-{secrets.token_hex(8)}:"
        con.execute(
            f"create or replace temp table {self.reading} (path varchar, part integer, "
            "file_seq integer, file_name varchar, first_rowid bigint)"
        )
        con.execute(
            f"create or replace temp table {self.rejected} (file_seq integer, "
            'file_name varchar, line_number bigint, "column" varchar, reason varchar, '
            "raw_record varchar)"
        )

    def table(self, kind: str, part: int) -> str:
        return f"{self.prefix}{kind}_{part}"

    def new_part(self, files: list[LandingFile]) -> int:
        part = len(self.parts)
        rows = [{"path": str(f.path), "seq": f.seq, "name": f.name} for f in files]
        self.con.execute(
            f"insert into {self.reading} select row.path, {part}, row.seq, row.name, null "
            "from (select unnest(?) as row)",
            [rows],
        )
        self.parts.append("")  # reserved; filled by add_part once the read succeeded
        return part

    def drop_part(self, part: int) -> None:
        self.con.execute(
            f"delete from {self.rejected} where file_name in "
            f"(select file_name from {self.reading} where part = {part})"
        )
        self.con.execute(f"delete from {self.reading} where part = {part}")
        self.con.execute(f"drop table if exists {self.table('part', part)}")

    def add_part(self, part: int, found: dict[str, int], first_line: int, exact: bool) -> None:
        """Register a part table in `landed`, numbering lines from rowids (or `lines_<n>`)."""
        table = self.table("part", part)
        self.con.execute(
            f"""
            update {self.reading} set first_rowid = firsts.first_rowid
            from (select filename, min(rowid) as first_rowid from {table} group by 1) as firsts
            where {self.reading}.part = {part} and {self.reading}.path = firsts.filename
            """
        )
        values = [
            f"part.c{found[target]} as {quote(target)}"
            if target in found
            else f"null::varchar as {quote(target)}"
            for target in self.config.targets
        ]
        line = "lines.line_number" if exact else f"part.rowid - reading.first_rowid + {first_line}"
        join = f"join {self.table('lines', part)} as lines on lines.rid = part.rowid"
        self.parts[part] = f"""
            select reading.file_seq, reading.file_name, {line} as line_number,
                {", ".join(values)}
            from {table} as part
            join {self.reading} as reading
                on reading.part = {part} and reading.path = part.filename
            {join if exact else ""}
        """

    def create_view(self) -> str:
        selects = [sql for sql in self.parts if sql]
        if not selects:
            columns = ", ".join(f"null::varchar as {quote(t)}" for t in self.config.targets)
            selects = [
                "select null::integer as file_seq, null::varchar as file_name, "
                f"null::bigint as line_number, {columns} where false"
            ]
        view = f"{self.prefix}landed"
        self.con.execute(f"create or replace temp view {view} as {' union all '.join(selects)}")
        return view


def land(con: duckdb.DuckDBPyConnection, config: SourceConfig, files: list[LandingFile]) -> Landed:
    """Read `files` into the view `<source>__landed` (malformed CSV records into
    `<source>__rejected`). Run it outside a transaction: a failed read aborts one.

    The view has file_seq, file_name, line_number and one text column per target
    name of the source (`SourceConfig.targets`), as read (NULL for an empty field).
    """
    reader = _Reader(con, config)
    groups: dict[tuple, list[tuple[LandingFile, list[str]]]] = {}
    extras: dict[str, list[str]] = {}
    notes: dict[str, str] = {}
    errors: list[FileError] = []
    expected: dict[str, int] = {}  # records by file, counted without DuckDB
    with tempfile.TemporaryDirectory(prefix="customer_marts_landing_") as scratch:
        for file in files:
            try:
                fmt = config.format_of(file.path)
                if file.path.stat().st_size == 0:
                    extras[file.name], notes[file.name] = [], "empty file"
                    continue
                if fmt == "parquet":
                    extras[file.name], expected[file.name] = _land_parquet(reader, file)
                    continue
                delimiter, header, newline = _csv_header(config, file, fmt)
                count = _count_records(config, file, fmt, newline, delimiter)
                if not header:
                    if count.records:
                        raise FileError(file.name, "line 1 is blank: the header must be line 1")
                    extras[file.name], notes[file.name] = [], "empty file"
                    continue
                extras[file.name] = map_header(config, file.name, header)[1]
                expected[file.name] = count.records
                key: tuple = (fmt, delimiter, tuple(header))
                if count.long:  # read alone, from a copy without the long records
                    file = _without_long_records(reader, config, file, fmt, count.long, scratch)
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
                _land_csv(reader, fmt, delimiter, members)
            except (FileError, duckdb.Error) as exc:
                if len(members) == 1:
                    errors.append(_as_file_error(members[0][0], exc))
                    continue
                for member in members:  # find the culprit(s): read one file at a time
                    try:
                        _land_csv(reader, fmt, delimiter, [member])
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
    return Landed(view, reader.rejected, extras, notes, errors)


def _as_file_error(file: LandingFile, exc: Exception) -> FileError:
    if isinstance(exc, FileError):
        return exc
    return FileError(file.name, f"cannot be read as CSV ({reader_error(exc)})")


def reader_error(exc: Exception) -> str:
    """The first line of a reader's error (DuckDB quotes the record on later lines)."""
    return str(exc).strip().splitlines()[0][:300]


# ---------------------------------------------------------------- header mapping


def map_header(
    config: SourceConfig, file_name: str, header: list[str]
) -> tuple[dict[str, int], list[str]]:
    """({target: column index}, extra columns) for a file's header, or FileError."""
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        index.setdefault(normalise(name), position)
    found: dict[str, int] = {}
    for target in config.targets:
        position = next(
            (index[c] for c in config.candidates(target) if c in index),
            None,
        )
        if position is not None:
            found[target] = position
    missing = [target for target in config.required_targets if target not in found]
    if missing:
        if looks_like_header(header):
            found_text = f"columns found: {', '.join(header) or '(none)'}"
        else:  # data, not names: never quoted
            found_text = (
                f"line 1 does not look like a header ({len(header)} field(s), not shown); "
                "the export needs a header line"
            )
        raise FileError(
            file_name,
            f"missing required column(s) {', '.join(config.describe_target(m) for m in missing)}"
            f"; {found_text}. Map the export's columns "
            "onto the landing contract in sources.yml (CUSTOMER_MARTS_CONFIG_DIR; "
            "docs/sources.md).",
        )
    used = set(found.values())
    candidates = {c for target in config.targets for c in config.candidates(target)}
    extras = [
        shown_name(name, position)
        for position, name in enumerate(header)
        if position not in used and normalise(name) not in candidates
    ]
    return found, extras


# ---------------------------------------------------------------- CSV


def _csv_header(config: SourceConfig, file: LandingFile, fmt: str) -> tuple[str, list[str], str]:
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


def _count_records(config: SourceConfig, file: LandingFile, fmt: str, newline: str, delimiter: str):
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


def _without_long_records(
    reader: _Reader,
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


def _land_csv(
    reader: _Reader, fmt: str, delimiter: str, members: list[tuple[LandingFile, list[str]]]
) -> None:
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
        has_breaks = con.execute(
            f"select coalesce(bool_or(contains(concat({', '.join(all_columns)}), chr(10))), "
            f"false) from {table}"
        ).fetchone()[0]
        exact = bool(has_rejects or has_breaks)
        if exact:
            _number_lines_exactly(reader, part, all_columns, header, found, has_rejects, delimiter)
        reader.add_part(part, found, first_line=2, exact=exact)
    except BaseException:
        reader.drop_part(part)
        raise


def _fail_on_encoding_errors(reader: _Reader, part: int) -> None:
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


def mask_emails(text: str) -> str:
    """SQL: `text` with every e-mail address replaced by <email>."""
    return f"regexp_replace({text}, {literal(EMAIL_PATTERN)}, '<email>', 'g')"


def masked_record(raw: str, delimiter: str, header: list[str], found: dict[str, int]) -> str:
    """SQL: a malformed CSV line as JSON, one key per field (the column it maps to, else
    field_<n>). Only fields that map to a contract column other than `email` keep their
    text (with addresses masked); `email`, unmapped and extra fields show as <masked>."""
    sep = re.escape(delimiter)
    field_pattern = f'(?:^|{sep})("(?:[^"]|"")*"|[^{sep}"]*)'
    by_position = {position: target for target, position in found.items()}
    names = [by_position.get(position) for position in range(len(header))]
    keys = ", ".join(literal(name) if name else "null" for name in names)
    kept = ", ".join("true" if name and name != EMAIL else "false" for name in names)
    text = (
        "case when starts_with(field, '\"') "
        "then replace(substr(field, 2, length(field) - 2), '\"\"', '\"') else field end"
    )
    value = (
        f"case when field = '' then null when coalesce(([{kept}])[i], false) "
        f"then {mask_emails(text)} else '<masked>' end"
    )
    entry = f"struct_pack(k := coalesce(([{keys}])[i], 'field_' || i), v := {value})"
    fields = f"regexp_extract_all(rtrim({raw}, chr(13) || chr(10)), {literal(field_pattern)}, 1)"
    return f"to_json(map_from_entries(list_transform({fields}, lambda field, i: {entry})))::varchar"


def _newline_count(expressions: list[str]) -> str:
    text = f"concat({', '.join(expressions)})"
    return f"(length({text}) - length(replace({text}, chr(10), '')))"


def _number_lines_exactly(
    reader: _Reader,
    part: int,
    all_columns: list[str],
    header: list[str],
    found: dict[str, int],
    has_rejects: bool,
    delimiter: str,
) -> None:
    """Line numbers of good and rejected records when records span lines or were rejected.

    DuckDB numbers a rejected record by its record number (header = 1); good rows
    come in file order. A rejected record's `slot` is how many good rows precede it,
    so ordering good rows and rejected records by (slot, rejected first) restores
    the file's order, and a running sum of each record's physical lines gives its
    first line.
    """
    by_position = {position: target for target, position in found.items()}
    column_case = " ".join(
        f"when 'c{position}' then {literal(by_position.get(position, shown_name(name, position)))}"
        for position, name in enumerate(header)
    )
    raw = "ltrim(rejects.csv_line, chr(13) || chr(10))"
    mark = literal(reader.mark)
    is_long = f"starts_with({raw}, {mark})"
    # the placeholder line <mark><size>:<line breaks> of a record too long to read
    size = f"split_part(substr({raw}, {len(reader.mark) + 1}), ':', 1)"
    breaks = f"try_cast(split_part(substr({raw}, {len(reader.mark) + 1}), ':', 2) as bigint)"
    too_long = (
        f"'record too long: ' || {size} || ' bytes, more than the limit of "
        f"{RECORD_LIMIT:,} (not read)'"
    )
    bad = f"""
        select
            null::bigint as rid,
            scans.file_path as filename,
            rejects.line - 2
                - (row_number() over (partition by scans.file_path order by rejects.line) - 1)
                as slot,
            0 as after_rejects,
            rejects.line as record,
            case when {is_long} then 1 + {breaks}
                else 1 + length({raw}) - length(replace({raw}, chr(10), '')) end
                as physical_lines,
            case when not {is_long} then case rejects.column_name {column_case} end end
                as "column",
            case when {is_long} then {too_long}
                else 'malformed CSV record (' || lower(replace(rejects.error_type, '_', ' '))
                    || '): ' || rejects.error_message end as reason,
            case when not {is_long} then {masked_record(raw, delimiter, header, found)} end
                as raw_record
        from {REJECTS} as rejects
        join {REJECT_SCANS} as scans using (scan_id, file_id)
        -- one row per record: a record missing two fields is reported twice
        qualify row_number() over (
            partition by rejects.scan_id, rejects.file_id, rejects.line
            order by rejects.column_idx
        ) = 1
    """
    lines = reader.table("lines", part)
    reader.con.execute(
        f"""
        create or replace temp table {lines} as
        with good as (
            select
                rowid as rid,
                filename,
                row_number() over (partition by filename order by rowid) - 1 as slot,
                1 as after_rejects,
                null::bigint as record,
                1 + {_newline_count(all_columns)} as physical_lines,
                null as "column", null as reason, null as raw_record
            from {reader.table("part", part)}
        ),
        merged as (
            select * from good
            {f"union all by name {bad}" if has_rejects else ""}
        )
        select
            *,
            2 + coalesce(sum(physical_lines) over (
                partition by filename order by slot, after_rejects, record
                rows between unbounded preceding and 1 preceding
            ), 0) as line_number
        from merged
        """
    )
    reader.con.execute(
        f"""
        insert into {reader.rejected}
        select reading.file_seq, reading.file_name, lines.line_number, lines."column",
            lines.reason, lines.raw_record
        from {lines} as lines
        join {reader.reading} as reading
            on reading.part = {part} and reading.path = lines.filename
        where lines.rid is null
        """
    )


# ---------------------------------------------------------------- Parquet


def _land_parquet(reader: _Reader, file: LandingFile) -> tuple[list[str], int]:
    """(extra columns, rows in the file's metadata, read by pyarrow: not by DuckDB)."""
    import pyarrow.lib
    import pyarrow.parquet

    con, config = reader.con, reader.config
    try:
        rows = pyarrow.parquet.ParquetFile(file.path).metadata.num_rows
    except (OSError, pyarrow.lib.ArrowException) as exc:
        raise FileError(file.name, f"cannot be read as Parquet ({type(exc).__name__})") from exc
    relation = f"read_parquet({path_literal(file.path)}, filename = true)"
    described = con.execute(f"describe select * from {relation}").fetchall()
    types = {row[0]: str(row[1]) for row in described if row[0] != "filename"}
    header = list(types)
    found, extras = map_header(config, file.name, header)
    wrong = []
    for target, position in found.items():
        kind = (
            config.contract.column(target).kind
            if target in config.contract.column_names
            else "text"
        )
        actual = types[header[position]]
        accepted = PARQUET_TYPES.get(kind)
        nested = any(mark in actual for mark in ("[]", "STRUCT", "MAP", "UNION"))
        if nested or (accepted and not actual.startswith(accepted)):
            wrong.append(f"{header[position]} is {actual} (for {target}, a {kind})")
    if wrong:
        raise FileError(
            file.name,
            f"column type(s) cannot hold the contract's values: {'; '.join(wrong)}. "
            "Write these columns as text or as the contract's type.",
        )
    selected = ", ".join(
        f"cast({quote(name)} as varchar) as c{position}" for position, name in enumerate(header)
    )
    part = reader.new_part([file])
    try:
        con.execute(
            f"create or replace temp table {reader.table('part', part)} as "
            f"select filename, {selected} from {relation}"
        )
        reader.add_part(part, found, first_line=1, exact=False)
    except BaseException:
        reader.drop_part(part)
        raise
    return extras, rows
