"""The tables of a warehouse file as comparable values, and their differences: what the
end-to-end tests use to say that two builds publish the same marts."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

# What names a run rather than the data: its id (a raw row's `_run_id`), its clock times, its published
# version, Airflow's id for it, when a file was loaded, when ingest noted a customer's
# change and when the CLV models were fitted (a rerun fits the same parameters again,
# at another time).
RUN_IDENTITY_COLUMNS = {
    "run_id",
    "_run_id",
    "started_at",
    "finished_at",
    "published_version",
    "airflow_run_id",
    "loaded_at",
    "noted_at",
    "fitted_at",
}


def table_rows(
    con: duckdb.DuckDBPyConnection, database: str, stored_order: bool, schema: str | None = None
) -> dict:
    """Every table of an attached database (of `schema` only, if given): its columns and
    types, and its rows without the run identity columns, sorted or in the order they
    are stored (what `select *` and the Parquet export return)."""
    columns = con.execute(
        "select schema_name || '.' || table_name, list((column_name, data_type) "
        "order by column_index) from duckdb_columns() where database_name = ? "
        "and coalesce(schema_name = ?, true) group by all order by 1",
        [database, schema],
    ).fetchall()
    tables = {}
    for table, typed in columns:
        kept = ", ".join(f'"{name}"' for name, _ in typed if name not in RUN_IDENTITY_COLUMNS)
        order = "" if stored_order else " order by all"
        rows = con.execute(f"select {kept} from {database}.{table}{order}").fetchall()
        # repr tells apart what == does not: -0.0 and 0.0, Decimal('1.0') and 1.0
        tables[table] = (typed, [tuple(map(repr, row)) for row in rows])
    return tables


def compared_names(typed: list[tuple[str, str]]) -> list[str]:
    """The names of the columns table_rows keeps."""
    return [name for name, _ in typed if name not in RUN_IDENTITY_COLUMNS]


def differing_columns(first: tuple, second: tuple) -> list[str]:
    """The columns of a table whose values differ (or why the tables cannot be lined up)."""
    (typed, rows), (other_typed, other_rows) = first, second
    if typed != other_typed:
        return [f"columns/types: {typed} != {other_typed}"]
    if len(rows) != len(other_rows):
        return [f"row count: {len(rows)} != {len(other_rows)}"]
    names = compared_names(typed)
    differing = set()
    for row, other in zip(rows, other_rows, strict=True):
        differing |= {
            name
            for name, value, other_value in zip(names, row, other, strict=True)
            if value != other_value
        }
    return sorted(differing)


def schema_models(manifest: Path, schema: str = "marts") -> set[str]:
    """ "<schema>.<model>" of every model dbt builds in `schema` (dbt's manifest.json)."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {
        f"{schema}.{node['alias'] or node['name']}"
        for node in nodes
        if node["resource_type"] == "model" and node["schema"] == schema
    }


def declared_keys(manifest: Path, schema: str = "marts") -> dict[str, list[str]]:
    """{"<schema>.<model>": its key columns} of the models of `schema` whose key the dbt
    project declares with a `unique` or `unique_combination` test (dbt's manifest.json)."""
    nodes = json.loads(manifest.read_text())["nodes"]
    keys = {}
    for node in nodes.values():
        test = node.get("test_metadata") or {}
        model = nodes.get(node.get("attached_node") or "")
        if node["resource_type"] != "test" or model is None or model["schema"] != schema:
            continue
        if test.get("name") == "unique":
            columns = [test["kwargs"]["column_name"]]
        elif test.get("name") == "unique_combination":
            columns = list(test["kwargs"]["columns"])
        else:
            continue
        keys[f"{schema}.{model['alias'] or model['name']}"] = columns
    return keys


def keyed_differences(
    first: tuple, second: tuple, key: list[str] | None, names: tuple[str, str], limit: int = 8
) -> list[str]:
    """How two versions of a table (table_rows values) differ, row by row, in words: for
    each key (`key`'s columns; without one, the whole row) the columns whose values
    differ with both values, or the side (`names`) that lacks the row; at most `limit`
    lines and a count of the rest. [] when they are equal."""
    (typed, rows), (other_typed, other_rows) = first, second
    if typed != other_typed:
        return [f"columns/types: {typed} ({names[0]}) != {other_typed} ({names[1]})"]
    columns = compared_names(typed)
    positions = [columns.index(name) for name in key or columns]

    def by_key(table_rows: list[tuple]) -> dict[tuple, list[tuple]]:
        keyed: dict[tuple, list[tuple]] = {}
        for row in table_rows:
            keyed.setdefault(tuple(row[i] for i in positions), []).append(row)
        return keyed

    mine, theirs = by_key(rows), by_key(other_rows)
    lines = []
    for value in sorted(set(mine) | set(theirs)):
        here, there = mine.get(value, []), theirs.get(value, [])
        if sorted(here) == sorted(there):
            continue
        where = ", ".join(f"{name}={v}" for name, v in zip(key or columns, value, strict=True))
        if len(here) == len(there) == 1:
            changed = [
                f"{name}: {a} ({names[0]}) != {b} ({names[1]})"
                for name, a, b in zip(columns, here[0], there[0], strict=True)
                if a != b
            ]
            lines.append(f"{where}: {'; '.join(changed)}")
        else:
            lines.append(f"{where}: {len(here)} row(s) in {names[0]}, {len(there)} in {names[1]}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more key(s)"]
    return lines
