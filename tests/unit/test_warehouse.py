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
    monkeypatch.delenv("DUCKDB_TEMP_DIRECTORY", raising=False)
    path = tmp_path / "build.duckdb"
    with connect(path) as con:
        assert settings_of(con) == (limit_shown(DEFAULT_MEMORY_LIMIT), f"{path}.tmp")
    with connect(path, read_only=True) as con:  # a reader too
        assert settings_of(con) == (limit_shown(DEFAULT_MEMORY_LIMIT), f"{path}.tmp")


def test_the_environment_sets_the_limit_and_the_temp_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    with connect(tmp_path / "build.duckdb") as con:
        assert settings_of(con) == (limit_shown("1GB"), str(tmp_path / "spill"))
