"""Reading the published build for the report: which marts it has, and rows as dicts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

log = logging.getLogger(__name__)

MAX_MONTHS = 36  # the trend charts show the newest months


class Unavailable(Exception):
    """A section's data is not in the published file."""


@dataclass(frozen=True)
class Source:
    """The published tables a build has, with their columns."""

    columns: dict[str, set[str]]

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> Source:
        columns: dict[str, set[str]] = {}
        for table, column in con.execute(
            "select schema_name || '.' || table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and schema_name in ('marts', 'audit')"
        ).fetchall():
            columns.setdefault(table, set()).add(column)
        return cls(columns)

    def require(self, table: str, *needed: str) -> None:
        if table not in self.columns:
            raise Unavailable(f"{table} is not in this build")
        missing = [column for column in needed if column not in self.columns[table]]
        if missing:
            raise Unavailable(f"{table} has no column {', '.join(missing)} in this build")


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    return con.sql(sql, params=list(params)).to_dicts()


def newest_months(con: duckdb.DuckDBPyConnection, monthly_sql: str) -> list[dict]:
    """The rows of a monthly query (one row per `period_start`) for its newest MAX_MONTHS
    months, one row per calendar month: a month the query has no row for comes back
    with its other columns null, so a chart leaves a gap instead of closing it up."""
    return rows(
        con,
        f"""
        with monthly as ({monthly_sql}),
        spine as (
            select unnest(generate_series(
                greatest(min(period_start), max(period_start) - interval {MAX_MONTHS - 1} month),
                max(period_start),
                interval 1 month
            ))::date as period_start
            from monthly
        )
        select spine.period_start, monthly.* exclude (period_start)
        from spine
        left join monthly on monthly.period_start = spine.period_start
        order by spine.period_start
        """,
    )
