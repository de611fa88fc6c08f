"""What the file readers share: the landing file, its error, the part tables a source's
files are read into (and the view `<source>__landed` over them), and the mapping of a
file's header onto the source's names.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import duckdb

from customer_marts.ingest.sources import SourceConfig, normalise
from customer_marts.ingest.sql import quote

# A column name as exports write them; a first line with anything else (an address,
# a date, a number) is data, and its fields are never quoted in messages.
HEADER_NAME = re.compile(r"[^\W\d][\w .,#/()&+'%?-]{0,63}|")


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


def looks_like_header(names: list[str]) -> bool:
    return all(HEADER_NAME.fullmatch(name.strip()) for name in names)


def shown_name(name: str, position: int) -> str:
    """A column name fit for a message or the manifest, else its position."""
    return name if HEADER_NAME.fullmatch(name.strip()) else f"(column {position + 1})"


class Reader:
    """Reads files into numbered part tables; `<source>__landed` is the view over them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: SourceConfig) -> None:
        self.con = con
        self.config = config
        self.prefix = f"{config.name}__"
        self.reading = f"{self.prefix}reading"
        self.rejected = f"{self.prefix}rejected"
        self.parts: list[str] = []  # one SELECT per part table, in landed's shape
        self.part_seqs: list[list[int]] = []  # each part's files (file_seq), in read order
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
        self.part_seqs.append([f.seq for f in files])
        return part

    def drop_part(self, part: int) -> None:
        self.con.execute(
            f"delete from {self.rejected} where file_name in "
            f"(select file_name from {self.reading} where part = {part})"
        )
        self.con.execute(f"delete from {self.reading} where part = {part}")
        self.con.execute(f"drop table if exists {self.table('part', part)}")

    def add_part(
        self,
        part: int,
        found: dict[str, int],
        first_line: int,
        exact: bool,
        rows: list[int] | None = None,
    ) -> None:
        """Register a part table in `landed`, numbering lines from rowids (or `lines_<n>`).

        `rows`, each file's rows in the order read (when known), give each file's first
        rowid without a scan of the table: a file's rows follow the previous file's."""
        table = self.table("part", part)
        if exact:
            pass  # lines_<n> numbers them
        elif rows is not None:
            firsts = [sum(rows[:index]) for index in range(len(rows))]
            self.con.execute(
                f"""
                update {self.reading} set first_rowid = firsts.first_rowid
                from (select unnest(?) as seq, unnest(?) as first_rowid) as firsts
                where {self.reading}.part = {part} and {self.reading}.file_seq = firsts.seq
                """,
                [self.part_seqs[part], firsts],
            )
        else:
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
            select reading.file_seq, reading.file_name, {line} as _line_number,
                {", ".join(values)}
            from {table} as part
            join {self.reading} as reading
                on reading.part = {part} and reading.path = part.filename
            {join if exact else ""}
        """

    def temp_tables(self) -> list[str]:
        """Every table this reader made (the view over them aside)."""
        parts = range(len(self.parts))
        return [
            self.reading,
            self.rejected,
            *(self.table(kind, part) for part in parts for kind in ("part", "lines")),
        ]

    def create_view(self) -> str:
        selects = [sql for sql in self.parts if sql]
        if not selects:
            columns = ", ".join(f"null::varchar as {quote(t)}" for t in self.config.targets)
            selects = [
                "select null::integer as file_seq, null::varchar as file_name, "
                f"null::bigint as _line_number, {columns} where false"
            ]
        view = f"{self.prefix}landed"
        self.con.execute(f"create or replace temp view {view} as {' union all '.join(selects)}")
        return view


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
