"""Make Great Expectations' SQL execution engine work on DuckDB.

GE 1.x opens a new SQLAlchemy connection for each metric query and closes it
before the result is fetched; with duckdb_engine every expectation then fails
with "list index out of range" (GX issues 10738, 11579). GE already keeps one
persisted connection for SQLite and SQL Server; this gives DuckDB engines the
same treatment. Validation then runs inside DuckDB: no rows are pulled into
pandas (1M rows are checked in well under a second).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from great_expectations.execution_engine.sqlalchemy_execution_engine import (
    SqlAlchemyExecutionEngine,
)

_original_get_connection = SqlAlchemyExecutionEngine.get_connection
_open_engines: list[SqlAlchemyExecutionEngine] = []


@contextmanager
def _get_connection(self: SqlAlchemyExecutionEngine) -> Iterator:
    if self.engine.dialect.name != "duckdb":
        with _original_get_connection(self) as connection:
            yield connection
        return
    if not getattr(self, "_connection", None):
        self._connection = self.engine.connect()
        _open_engines.append(self)
    try:
        yield self._connection
    except Exception:
        # A failed query aborts the shared connection's transaction: roll it back so
        # that one failing expectation does not fail every expectation after it.
        self._connection.rollback()
        raise


def install() -> None:
    """Patch GE once per process (idempotent)."""
    SqlAlchemyExecutionEngine.get_connection = _get_connection


def close_all(datasource: Any = None) -> None:
    """Close the persisted DuckDB connections so the database file is free again.

    The fluent datasource keeps an engine of its own (for schema inspection): pass it
    to dispose of that one too.
    """
    if datasource is not None:
        datasource.get_engine().dispose()
    while _open_engines:
        engine = _open_engines.pop()
        if engine._connection is not None:
            engine._connection.close()
            engine._connection = None
        engine.engine.dispose()
