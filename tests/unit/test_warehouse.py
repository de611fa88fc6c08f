"""customer_marts.warehouse.connect: DuckDB's memory settings on a real database file."""

from __future__ import annotations

import duckdb

from customer_marts.warehouse import DEFAULT_MEMORY_LIMIT, connect


def settings_of(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    return con.execute(
        "select current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchone()


def limit_shown(limit: str) -> str:
    """How DuckDB itself shows `limit` once set (a second connection, set by hand)."""
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{limit}'")
        return con.execute("select current_setting('memory_limit')").fetchone()[0]


def test_connect_limits_memory_and_spills_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("DUCKDB_MEMORY_LIMIT", raising=False)
    path = tmp_path / "build.duckdb"
    with connect(path) as con:
        assert settings_of(con) == (limit_shown(DEFAULT_MEMORY_LIMIT), f"{path}.tmp")
    with connect(path, read_only=True) as con:  # a reader too
        assert settings_of(con) == (limit_shown(DEFAULT_MEMORY_LIMIT), f"{path}.tmp")


def test_the_environment_sets_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("DUCKDB_MEMORY_LIMIT", "1GB")
    with connect(tmp_path / "build.duckdb") as con:
        assert settings_of(con)[0] == limit_shown("1GB")


def test_a_second_connection_to_a_file_that_spilled_opens(tmp_path, monkeypatch):
    # dbt opens a connection per node on one database: a setting DuckDB cannot change
    # once used (temp_directory, after a spill) would fail every node after the first.
    monkeypatch.setenv("DUCKDB_MEMORY_LIMIT", "64MB")
    path = tmp_path / "build.duckdb"
    with connect(path) as first:
        first.execute(
            "create table spilled as select md5(i::varchar) as s from range(1000000) t(i) "
            "order by s"
        )
        with connect(path) as second:
            assert second.execute("select count(*) from spilled").fetchone() == (1000000,)
