"""Parquet: one file at a time; a column whose type cannot hold the contract's kind
(e.g. an integer `ordered_at`) fails the file by name.
"""

from __future__ import annotations

from customer_marts.ingest.reader import FileError, LandingFile, Reader, map_header
from customer_marts.ingest.sql import path_literal, quote

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
    "date": ("VARCHAR", "DATE", "TIMESTAMP"),
    "decimal": ("VARCHAR", *NUMERIC_TYPES),
    "integer": ("VARCHAR", *NUMERIC_TYPES),
}


def land_parquet(reader: Reader, file: LandingFile) -> tuple[list[str], int]:
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
        reader.add_part(part, found, first_line=1, exact=False, rows=[rows])
    except BaseException:
        reader.drop_part(part)
        raise
    return extras, rows
