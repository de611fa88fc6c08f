"""Line numbers as an editor shows them, when records span lines or were rejected, and
the rejected records (with their masked fields) in `<source>__rejected`.
"""

from __future__ import annotations

import re

from customer_marts.ingest.contract import EMAIL
from customer_marts.ingest.reader import Reader, shown_name
from customer_marts.ingest.records import RECORD_LIMIT
from customer_marts.ingest.sql import literal, mask_emails

REJECTS = "cm_rejects"

REJECT_SCANS = "cm_reject_scans"


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


def number_lines_exactly(
    reader: Reader,
    part: int,
    all_columns: list[str],
    header: list[str],
    found: dict[str, int],
    has_rejects: bool,
    delimiter: str,
    blanks: list[tuple[str, int, int]],
) -> None:
    """Line numbers of good and rejected records when records span lines, were rejected
    or follow blank lines (`blanks`: path, records before them with the header, lines).

    DuckDB numbers a rejected record by its record number (header = 1, each blank line
    counted as one); good rows come in file order. A rejected record's `slot` is how
    many good rows precede it, so ordering good rows and rejected records by (slot,
    rejected first) restores the file's order, and a running sum of each record's
    physical lines gives its first line, plus the blank lines before it: a blank run
    after k records (the header included) comes before the k-th record of the merged
    order.
    """
    lines = reader.table("lines", part)
    runs = f"{lines}_blank"
    # with the number DuckDB gives a run's first blank line (as it numbers rejected records)
    reader.con.execute(
        f"""
        create or replace temp table {runs} as
        with given as (
            select unnest(?) as filename, unnest(?)::bigint as records_before,
                unnest(?)::bigint as blank_lines
        )
        select *, records_before + 1 + coalesce(sum(blank_lines) over (
            partition by filename order by records_before
            rows between unbounded preceding and 1 preceding
        ), 0) as first_read_line
        from given
        """,
        [list(column) for column in zip(*blanks, strict=True)] if blanks else [[], [], []],
    )
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
                - coalesce((
                    select sum(runs.blank_lines) from {runs} as runs
                    where runs.filename = scans.file_path and runs.first_read_line < rejects.line
                ), 0)
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
        ),
        ordered as (
            select *, row_number() over (
                partition by filename order by slot, after_rejects, record
            ) as records_before
            from merged
        )
        select
            ordered.*,
            2 + coalesce(sum(physical_lines) over (
                    file_order rows between unbounded preceding and 1 preceding
                ), 0)
                + coalesce(sum(runs.blank_lines) over (
                    file_order rows between unbounded preceding and current row
                ), 0) as line_number
        from ordered
        left join {runs} as runs using (filename, records_before)
        window file_order as (partition by filename order by records_before)
        """
    )
    reader.con.execute(f"drop table {runs}")
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
