"""Ingest landed export files into the build database's `raw` tables.

For each source (see `contract.py`) ingestion:
1. lists the files in its landing folder and fingerprints them (SHA-256);
2. skips content it has already ingested, under any name, and treats a known
   name with new content as a correction that replaces that file's earlier rows;
3. reads every new file with DuckDB's own readers, all columns as text, and maps
   the header onto the canonical columns (a missing required column fails the
   run, naming the file and the columns found);
4. casts and checks every row in one set-based SQL pass: a row that breaks a
   rule goes to `audit.quarantine` with its line number, column and reason;
5. keeps one row per key (the latest file, then the latest line wins) and
   counts the others as duplicates;
6. writes one `audit.ingested_files` row per file, so that for every loaded
   file rows_read = rows_loaded + rows_quarantined + rows_duplicate, and the
   rows of `raw.<source>` are exactly the sum of rows_loaded.

Everything happens in one transaction: a failing run leaves the raw tables as
they were. Rows dated after the as-of date are loaded too; the dbt staging
models leave them out until a run whose as-of date covers them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from customer_marts.contract import DROPPED_COLUMNS, SOURCES, Column, Source
from customer_marts.warehouse import column_type, connect, ensure_schema

log = logging.getLogger(__name__)

FILE_PATTERNS = ("*.csv", "*.csv.gz", "*.parquet")
MISSING = "missing required value"
DELIMITERS = (",", ";", "\t", "|")


class IngestError(Exception):
    """A file the pipeline cannot read as the contract requires (the run fails)."""


@dataclass
class IngestSummary:
    files_loaded: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(landing_dir: Path, source: Source) -> list[Path]:
    folder = landing_dir / source.folder
    found = {path for pattern in FILE_PATTERNS for path in folder.glob(pattern)}
    return sorted(path for path in found if path.is_file())


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------- row rules (SQL)


def text_of(column: Column) -> str:
    """The landed text of a column, trimmed, with '' as NULL."""
    return f"nullif(trim({quote(column.name)}), '')"


def typed_value(column: Column) -> str:
    """SQL that casts the landed text to the column's contract type."""
    text = text_of(column)
    if column.lowercase or column.kind == "enum":
        text = f"lower({text})"
    if column.kind == "timestamp":
        # Offsets are honoured; a naive value is read in the session time zone (UTC).
        return f"(try_cast({text} as timestamptz) at time zone 'UTC')"
    if column.kind in ("decimal", "integer"):
        return f"try_cast({text} as {column_type(column)})"
    if column.default is not None:
        return f"coalesce({text}, {literal(column.default)})"
    return text


def row_rules(column: Column) -> list[tuple[str, str]]:
    """(condition that breaks the rule, reason) pairs for one column, in order."""
    text = text_of(column)
    rules: list[tuple[str, str]] = []
    if column.required:
        rules.append((f"{text} is null", MISSING))
    if column.kind == "timestamp":
        cast = f"try_cast({text} as timestamptz)"
        rules.append((f"{text} is not null and {cast} is null", "unparseable timestamp"))
    elif column.kind == "decimal":
        cast = f"try_cast({text} as {column_type(column)})"
        rules.append((f"{text} is not null and {cast} is null", "unparseable number"))
    elif column.kind == "integer":
        rules.append(
            (
                f"{text} is not null and not regexp_full_match({text}, '[+-]?[0-9]+')",
                "not an integer",
            )
        )
    if column.kind in ("decimal", "integer"):
        value = typed_value(column)
        if column.minimum is not None and column.maximum is not None:
            rules.append(
                (
                    f"{value} not between {column.minimum:g} and {column.maximum:g}",
                    f"outside {column.minimum:g}..{column.maximum:g}",
                )
            )
        elif column.minimum is not None:
            reason = "negative value" if column.minimum == 0 else f"below {column.minimum:g}"
            rules.append((f"{value} < {column.minimum:g}", reason))
    if column.kind == "enum":
        accepted = ", ".join(literal(value) for value in column.accepted)
        rules.append(
            (
                f"{text} is not null and lower({text}) not in ({accepted})",
                f"unknown value (accepted: {', '.join(column.accepted)})",
            )
        )
    return rules


def failure_case(source: Source, pick: str) -> str:
    """CASE expression giving the first broken rule's column (pick='column') or reason."""
    branches = [
        f"when {condition} then {literal(column.name if pick == 'column' else reason)}"
        for column in source.columns
        for condition, reason in row_rules(column)
    ]
    return "case " + " ".join(branches) + " end"


# ---------------------------------------------------------------- reading files


def _csv_header(path: Path, file_name: str) -> tuple[str, list[str]]:
    """(delimiter, column names) from a CSV's first line, read without DuckDB."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise IngestError(
            f"{file_name}: cannot be read as UTF-8 CSV ({exc}). Export it as UTF-8."
        ) from exc
    counts = {delimiter: first.count(delimiter) for delimiter in DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    header = next(csv.reader([first], delimiter=delimiter), [])
    return delimiter, header


def _map_header(
    source: Source, file_name: str, found: list[str]
) -> tuple[dict[str, str], list[str]]:
    """Map canonical names onto a file's header; return (mapping, extra columns)."""
    by_name: dict[str, str] = {}
    for original in found:
        by_name.setdefault(original.strip().lower(), original)
    missing = [name for name in source.required if name not in by_name]
    if missing:
        raise IngestError(
            f"{file_name}: missing required column(s) {', '.join(missing)}; "
            f"columns found: {', '.join(found) or '(none)'}. Rename the export's columns to "
            "the landing contract (README, 'Landing contract')."
        )
    known = set(source.column_names) | set(DROPPED_COLUMNS)
    return by_name, [original for name, original in by_name.items() if name not in known]


def _insert_landed(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    relation: str,
    by_name: dict[str, str],
    file_seq: dict[str, tuple[int, str]],
    header_lines: int,
) -> None:
    """Append rows of `relation` (with a `filename` column) to the temp table `landed`."""
    selected = [
        f"{quote(by_name[column.name])}::varchar as {quote(column.name)}"
        if column.name in by_name
        else f"null::varchar as {quote(column.name)}"
        for column in source.columns
    ]
    con.execute(
        f"create or replace temp table one_read as select filename, "
        f"{', '.join(selected)} from {relation}"
    )
    cases = " ".join(f"when {literal(path)} then {seq}" for path, (seq, _) in file_seq.items())
    names_case = " ".join(
        f"when {literal(path)} then {literal(name)}" for path, (_, name) in file_seq.items()
    )
    names = ", ".join(quote(column.name) for column in source.columns)
    newlines = " + ".join(
        f"coalesce(length({quote(c.name)}) - length(replace({quote(c.name)}, chr(10), '')), 0)"
        for c in source.columns
    )
    # Line numbers as a text editor shows them: the header is line 1 and a quoted
    # value with embedded newlines makes its record span several lines.
    con.execute(
        f"""
        insert into landed
        select
            case filename {cases} end,
            case filename {names_case} end,
            {header_lines + 1} + coalesce(sum(1 + {newlines}) over (
                partition by filename order by rowid
                rows between unbounded preceding and 1 preceding
            ), 0),
            {names}
        from one_read
        """
    )


def _land_files(
    con: duckdb.DuckDBPyConnection, source: Source, files: list[tuple[int, Path, str]]
) -> tuple[dict[str, list[str]], list[str]]:
    """Land files into `landed`; return (extra columns by file, file-level errors).

    CSV files that share a delimiter and header are read by one `read_csv` call.
    """
    extras: dict[str, list[str]] = {}
    errors: list[str] = []
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[int, Path, str]]] = {}
    for seq, path, file_name in files:
        if path.stat().st_size == 0:
            extras[file_name] = []  # an empty export: zero rows, nothing to check
            continue
        try:
            if path.name.endswith(".parquet"):
                relation = f"read_parquet({literal(str(path))}, filename = true)"
                found = [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]
                found.remove("filename")
                by_name, extras[file_name] = _map_header(source, file_name, found)
                _insert_landed(
                    con, source, relation, by_name, {str(path): (seq, file_name)}, header_lines=0
                )
                continue
            delimiter, header = _csv_header(path, file_name)
            by_name, extras[file_name] = _map_header(source, file_name, header)
        except (IngestError, duckdb.Error) as exc:
            errors.append(
                str(exc)
                if isinstance(exc, IngestError)
                else f"{file_name}: cannot be read ({exc})."
            )
            continue
        groups.setdefault((delimiter, tuple(header)), []).append((seq, path, file_name))
    for (delimiter, header), members in groups.items():
        paths = ", ".join(literal(str(path)) for _, path, _ in members)
        relation = (
            f"read_csv([{paths}], all_varchar = true, header = true, filename = true, "
            f"delim = {literal(delimiter)}, strict_mode = false)"
        )
        by_name, _ = _map_header(source, members[0][2], list(header))
        try:
            _insert_landed(
                con,
                source,
                relation,
                by_name,
                {str(path): (seq, name) for seq, path, name in members},
                header_lines=1,
            )
        except duckdb.Error as exc:
            names = ", ".join(name for _, _, name in members)
            errors.append(f"{members[0][2]}: cannot be read ({exc}); files in this read: {names}")
    return extras, errors


# ---------------------------------------------------------------- one source


def _ingest_source(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, source: Source, run_id: str
) -> dict[str, int]:
    key = quote(source.key)
    text_columns = ", ".join(f"{quote(column.name)} varchar" for column in source.columns)
    con.execute(
        f"create or replace temp table landed (file_seq integer, file_name varchar, "
        f"line_number bigint, {text_columns})"
    )
    manifest = {
        (row[0], row[1]): row[2]
        for row in con.execute(
            "select file_name, sha256, status from audit.ingested_files "
            "where source = ? and status in ('loaded', 'skipped')",
            [source.name],
        ).fetchall()
    }
    loaded_shas = {sha: name for (name, sha), status in manifest.items() if status == "loaded"}
    loaded_names = {name for (name, _), status in manifest.items() if status == "loaded"}

    to_land: list[tuple[int, Path, str]] = []
    shas: dict[str, str] = {}
    counts = {"files_loaded": 0, "files_skipped": 0}
    for seq, path in enumerate(list_files(landing_dir, source)):
        file_name = path.relative_to(landing_dir).as_posix()
        sha = sha256_of(path)
        if (file_name, sha) in manifest:
            continue  # ingested (or skipped) in an earlier run: nothing to do
        if sha in loaded_shas:
            _record(
                con,
                source,
                file_name,
                sha,
                run_id,
                status="skipped",
                message=f"same content as {loaded_shas[sha]}",
            )
            counts["files_skipped"] += 1
            continue
        to_land.append((seq, path, file_name))
        shas[file_name] = sha
    extras, errors = _land_files(con, source, to_land)
    if errors:
        raise IngestError("\n".join(errors))
    new_files = [(seq, name, shas[name], extras[name]) for seq, _, name in to_land]
    if not new_files:
        return counts

    # Corrections: a known name with new content replaces that file's rows.
    replaced = [name for _, name, _, _ in new_files if name in loaded_names]
    if replaced:
        names = ", ".join(literal(name) for name in replaced)
        con.execute(f"delete from raw.{source.name} where _file_name in ({names})")
        con.execute(
            f"update audit.ingested_files set status = 'replaced' "
            f"where source = ? and status = 'loaded' and file_name in ({names})",
            [source.name],
        )

    typed = ", ".join(f"{typed_value(column)} as {quote(column.name)}" for column in source.columns)
    record = ", ".join(f"{quote(column.name)} := {quote(column.name)}" for column in source.columns)
    con.execute(
        f"""
        create or replace temp table checked as
        with cased as (
            select
                file_seq, file_name, line_number,
                {failure_case(source, "column")} as failed_column,
                {failure_case(source, "reason")} as failed_reason,
                {typed},
                to_json(struct_pack({record}))::varchar as raw_record
            from landed
        )
        select
            *,
            failed_reason is null and row_number() over (
                partition by failed_reason is null, {key}
                order by file_seq desc, line_number desc
            ) > 1 as is_duplicate
        from cased
        """
    )
    con.execute(
        f"""
        insert into audit.quarantine
        select '{source.name}', file_name, line_number, failed_column, failed_reason,
            raw_record, ?
        from checked where failed_reason is not null
        order by file_seq, line_number
        """,
        [run_id],
    )
    # The latest file wins: rows of earlier files with the same key become duplicates.
    superseded = con.execute(
        f"""
        delete from raw.{source.name}
        where {key} in (
            select {key} from checked where failed_reason is null and not is_duplicate
        )
        returning _file_name
        """
    ).fetchall()
    superseded_by_file: dict[str, int] = {}
    for (name,) in superseded:
        superseded_by_file[name] = superseded_by_file.get(name, 0) + 1
    for name, count in superseded_by_file.items():
        con.execute(
            "update audit.ingested_files set rows_loaded = rows_loaded - ?, "
            "rows_duplicate = rows_duplicate + ? "
            "where source = ? and file_name = ? and status = 'loaded'",
            [count, count, source.name, name],
        )
    columns = ", ".join(quote(column.name) for column in source.columns)
    con.execute(
        f"""
        insert into raw.{source.name}
        select {columns}, file_name, line_number, ?
        from checked where failed_reason is null and not is_duplicate
        """,
        [run_id],
    )
    stats = {
        row[0]: row[1:]
        for row in con.execute(
            """
            select file_name, count(*),
                count(*) filter (failed_reason is null and not is_duplicate),
                count(*) filter (failed_reason is not null),
                count(*) filter (is_duplicate)
            from checked group by file_name
            """
        ).fetchall()
    }
    for _, file_name, sha, extra in new_files:
        read, loaded, quarantined, duplicate = stats.get(file_name, (0, 0, 0, 0))
        _record(
            con,
            source,
            file_name,
            sha,
            run_id,
            status="loaded",
            rows=(read, loaded, quarantined, duplicate),
            extra=extra,
            message="replaces an earlier delivery" if file_name in replaced else None,
        )
        counts["files_loaded"] += 1
        for name, value in zip(
            ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate"),
            (read, loaded, quarantined, duplicate),
            strict=True,
        ):
            counts[name] = counts.get(name, 0) + value
    return counts


def _record(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    file_name: str,
    sha: str | None,
    run_id: str,
    status: str,
    rows: tuple[int, int, int, int] = (0, 0, 0, 0),
    extra: list[str] | None = None,
    message: str | None = None,
) -> None:
    con.execute(
        "insert into audit.ingested_files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [
            source.name,
            file_name,
            sha,
            *rows,
            status,
            ", ".join(extra or []) or None,
            message,
            run_id,
        ],
    )


# ---------------------------------------------------------------- entry point


def ingest(
    build_db: Path, landing_dir: Path, run_id: str, sources: list[str] | None = None
) -> IngestSummary:
    """Ingest every new or changed file of the given sources (all by default)."""
    summary = IngestSummary()
    with connect(build_db) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        try:
            for name in sources or list(SOURCES):
                counts = _ingest_source(con, landing_dir, SOURCES[name], run_id)
                summary.by_source[name] = counts
                for attr, value in counts.items():
                    setattr(summary, attr, getattr(summary, attr) + value)
        except IngestError as exc:
            con.execute("rollback")
            _record_failure(con, run_id, str(exc))
            raise
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    log.info(
        "ingested %d file(s) (%d skipped): %d rows read, %d loaded, %d quarantined, %d duplicate",
        summary.files_loaded,
        summary.files_skipped,
        summary.rows_read,
        summary.rows_loaded,
        summary.rows_quarantined,
        summary.rows_duplicate,
    )
    return summary


def _record_failure(con: duckdb.DuckDBPyConnection, run_id: str, message: str) -> None:
    """Keep a manifest row for each file that failed, outside the rolled-back load."""
    for line in message.splitlines():
        file_name, _, reason = line.partition(": ")
        source = SOURCES.get(file_name.split("/", 1)[0])
        if source is not None:
            _record(con, source, file_name, None, run_id, status="failed", message=reason)
